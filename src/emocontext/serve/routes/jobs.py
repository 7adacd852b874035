"""``/v1/jobs``: the caller's jobs (newest first, paginated), one job, its outputs, cancel or remove.

A job belongs to the key that made it: another key gets 404, as for a job that never was.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from ...labels import emotion_hex
from ..auth import caller
from ..errors import ApiError
from ..jobs import JobManager
from ..schemas import SCHEMA_HEADER, SCHEMA_VERSION, ErrorV1, JobListV1, JobV1, PredictionV1
from ..store import Job

__all__ = ["router", "job_json"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(caller)])
NOT_FOUND = {404: {"model": ErrorV1, "description": "no such job for this key"}}


def _labels(result: dict | None) -> list[str]:
    if not result:
        return []
    names = list(result.get("probabilities") or {})
    for f in result.get("frames") or []:
        names += [k for k in f.get("probabilities") or {} if k not in names]
    return names


def job_json(job: Job) -> dict:
    """The JSON of a job (:class:`~..schemas.JobV1`)."""
    base = f"/v1/jobs/{job.id}"
    links = {"self": base}
    if job.status == "done":
        links["result"] = f"{base}/result"
        links.update({name: f"{base}/{name}" for name in ("report", "annotated") if name in job.outputs})
    return {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "filename": job.filename,
        "options": job.options,
        "media": {k: job.media.get(k) for k in ("kind", "width", "height", "duration")},
        "progress": {"frames_done": job.frames_done, "frames_total": job.frames_total},
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "error": None if job.error is None else job.error.to_dict(),
        "result": job.result,
        "key_frames": [
            {"frame": k["frame"], "timestamp": k["timestamp"], "url": f"{base}/keyframes/{n}", "persons": k["persons"]}
            for n, k in enumerate(job.key_frames)
        ],
        "persons": [
            {"id": p["id"], "subject": p["subject"], "thumbnail": f"{base}/persons/{p['id']}"} for p in job.persons
        ],
        "colors": {name: emotion_hex(name) for name in _labels(job.result)},
        "resumed": job.resumed,
        "links": links,
    }


def _manager(request: Request) -> JobManager:
    return request.app.state.jobs


def _finished(request: Request, job_id: str, owner: str) -> Job:
    job = _manager(request).get(job_id, owner)
    if job.error is not None:
        raise job.error.to_api()
    if job.status != "done":
        raise ApiError(409, "not_ready", f"job {job_id} is {job.status}; poll /v1/jobs/{job_id}")
    return job


def _file(request: Request, job: Job, name: str):
    path = _manager(request).jobs_dir / job.id / name
    if not path.is_file():
        raise ApiError(404, "not_found", f"job {job.id} has no {name}")
    return path


def _ascii(name: str) -> str:
    """A file name safe inside a Content-Disposition header."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in name)[:100] or "file"


@router.get("", response_model=JobListV1, summary="The caller's jobs, newest first")
async def list_jobs(
    request: Request,
    owner: str = Depends(caller),
    limit: int = Query(20, ge=1, le=100, description="jobs per page"),
    offset: int = Query(0, ge=0, description="jobs to skip"),
):
    """The jobs of the caller's key (without keys: every job), newest first, with their status and links."""
    jobs, total = _manager(request).owned(owner, limit=limit, offset=offset)
    return JSONResponse({"jobs": [job_json(j) for j in jobs], "total": total, "limit": limit, "offset": offset})


@router.get("/{job_id}", response_model=JobV1, responses=NOT_FOUND)
async def get_job(request: Request, job_id: str, owner: str = Depends(caller)):
    """Status, progress (sampled frames done / expected) and, when done, the result."""
    job = _manager(request).get(job_id, owner)
    return JSONResponse(job_json(job), headers={SCHEMA_HEADER: SCHEMA_VERSION})


@router.delete(
    "/{job_id}",
    response_model=JobV1,
    responses={**NOT_FOUND, 204: {"description": "the ended job and its files were removed"}},
    summary="Cancel a queued or running job; remove an ended one",
)
async def delete_job(request: Request, job_id: str, owner: str = Depends(caller)):
    """A queued or running job is cancelled (200, the job, status `cancelled`); an ended one is removed with
    its files (204)."""
    job = _manager(request).cancel_or_remove(job_id, owner)
    if job is None:
        return Response(status_code=204)
    return JSONResponse(job_json(job))


@router.get("/{job_id}/result", response_model=PredictionV1, responses=NOT_FOUND)
async def job_result(request: Request, job_id: str, owner: str = Depends(caller)):
    """The prediction JSON, as a download."""
    job = _finished(request, job_id, owner)
    stem = os.path.splitext(job.filename)[0] or "result"
    headers = {SCHEMA_HEADER: SCHEMA_VERSION, "Content-Disposition": f'attachment; filename="{_ascii(stem)}.json"'}
    return JSONResponse(job.result, headers=headers)


@router.get("/{job_id}/report", response_class=HTMLResponse, responses=NOT_FOUND)
async def job_report(request: Request, job_id: str, owner: str = Depends(caller)):
    """The self-contained HTML report."""
    job = _finished(request, job_id, owner)
    return FileResponse(_file(request, job, job.outputs.get("report", "report.html")), media_type="text/html")


@router.get(
    "/{job_id}/annotated",
    responses={200: {"content": {"video/mp4": {}, "image/png": {}}}, **NOT_FOUND},
)
async def job_annotated(request: Request, job_id: str, owner: str = Depends(caller)):
    """The video (MP4, H.264) or, for a still image, the picture (PNG) with the boxes and probability bars drawn."""
    job = _finished(request, job_id, owner)
    name = job.outputs.get("annotated", "annotated.mp4")
    stem = os.path.splitext(job.filename)[0] or "file"
    suffix = os.path.splitext(name)[1]
    media = "image/png" if suffix == ".png" else "video/mp4"
    return FileResponse(_file(request, job, name), media_type=media, filename=f"{_ascii(stem)}_annotated{suffix}")


@router.get("/{job_id}/keyframes/{n}", responses={200: {"content": {"image/png": {}}}, **NOT_FOUND})
async def job_key_frame(request: Request, job_id: str, n: int, owner: str = Depends(caller)):
    """Key frame `n` (PNG): every person's box numbered, or the context attention overlaid."""
    job = _finished(request, job_id, owner)
    if not 0 <= n < len(job.key_frames):
        raise ApiError(404, "not_found", f"job {job_id} has {len(job.key_frames)} key frames")
    return FileResponse(_file(request, job, job.key_frames[n]["file"]), media_type="image/png")


@router.get("/{job_id}/persons/{person_id}", responses={200: {"content": {"image/png": {}}}, **NOT_FOUND})
async def job_person(request: Request, job_id: str, person_id: int, owner: str = Depends(caller)):
    """A person's face thumbnail (PNG)."""
    job = _finished(request, job_id, owner)
    person = next((p for p in job.persons if p["id"] == person_id), None)
    if person is None:
        raise ApiError(404, "not_found", f"job {job_id} has no thumbnail of person {person_id}")
    return FileResponse(_file(request, job, person["file"]), media_type="image/png")
