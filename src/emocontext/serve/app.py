"""The FastAPI application: :func:`create_app`.

Endpoints (every error is ``{"error": kind, "detail": message}`` with a 4xx status, or 503 with
``Retry-After`` when the queue is full):

* ``GET /`` -- the page (one self-contained HTML file, :mod:`.page`).
* ``POST /v1/predict`` -- multipart upload (``file`` + option fields), answers the prediction JSON.
* ``POST /v1/jobs`` -- the same upload, answers 202 with the job at once; ``GET /v1/jobs/{id}``
  gives its progress and then its result; ``/result``, ``/report``, ``/annotated`` and
  ``/keyframes/{n}`` its outputs.
* ``GET /v1/models``, ``GET /healthz``, ``GET /readyz`` (every worker has its models loaded),
  ``GET /metrics`` (Prometheus).
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .errors import ApiError
from .jobs import Job, JobManager
from .media import inspect_media
from .metrics import CONTENT_TYPE_LATEST, Metrics, MetricsMiddleware
from .options import FIELDS, MAX_FPS, parse_options
from .page import page_html
from .schemas import SCHEMA_HEADER, SCHEMA_VERSION, ErrorV1, JobV1, ModelsV1, PredictionV1, upload_body
from .settings import ServeSettings
from .uploads import discard_body, receive_upload

__all__ = ["create_app"]

log = logging.getLogger(__name__)

#: HTTP status of a failed job by its kind: the file's fault is 422, the server's 500.
JOB_ERROR_STATUS = {"decode": 422, "bad_option": 422, "time_limit": 422}
ERRORS = {
    400: {"model": ErrorV1, "description": "empty file, bad file name, malformed form"},
    413: {"model": ErrorV1, "description": "over the upload limit"},
    415: {"model": ErrorV1, "description": "not multipart, or the content is not a video or image"},
    422: {"model": ErrorV1, "description": "missing file, unknown field, bad option, undecodable or too long"},
    503: {"model": ErrorV1, "description": "queue full (see Retry-After)"},
}


def _job_json(job: Job) -> dict:
    base = f"/v1/jobs/{job.id}"
    links = {"self": base}
    if job.status == "done":
        links["result"] = f"{base}/result"
        if "report" in job.outputs:
            links["report"] = f"{base}/report"
        if "annotated" in job.outputs:
            links["annotated"] = f"{base}/annotated"
    return {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "filename": job.filename,
        "options": job.options,
        "progress": {"frames_done": job.frames_done, "frames_total": job.frames_total},
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "error": job.error,
        "result": job.result,
        "key_frames": [
            {"index": k["index"], "timestamp": k["timestamp"], "url": f"{base}/keyframes/{n}"}
            for n, k in enumerate(job.key_frames)
        ],
        "links": links,
    }


def _job_error(job: Job) -> ApiError:
    e = job.error or {"error": "internal", "detail": "the job failed"}
    return ApiError(JOB_ERROR_STATUS.get(e["error"], 500), e["error"], e["detail"])


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The service as an ASGI app; its lifespan starts the worker pool and removes every temporary file at the end.

    Args:
        settings: see :class:`~.settings.ServeSettings` (default: all defaults).
    """
    from ..options import MODELS, PERSON_MODES, default_model
    from ..video.faces import list_detectors

    settings = settings or ServeSettings()
    metrics = Metrics()
    model_default = settings.model or default_model()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        manager = JobManager(settings, metrics)
        app.state.jobs = manager
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPI(
        title="emocontext",
        version=__version__,
        summary="Context-aware video emotion recognition as a web service.",
        description=f"Prediction JSON schema version {SCHEMA_VERSION} (header `{SCHEMA_HEADER}`).",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's Swagger and ReDoc pages load scripts from a CDN: the service stays self-contained
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        metrics.failure(e.kind)
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http")
        metrics.failure(kind)
        return JSONResponse({"error": kind, "detail": str(e.detail)}, status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError):
        metrics.failure("bad_request")
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": "bad_request", "detail": f"{where}: {first.get('msg', 'invalid')}"}, 422)

    async def accept(request: Request, *, keep: bool) -> Job:
        """Slot, upload, content check, options, then the job; on any failure nothing is left behind."""
        manager: JobManager = request.app.state.jobs
        try:
            slot = manager.reserve()
        except ApiError:
            await discard_body(request)
            raise
        upload = None
        try:
            upload = await receive_upload(
                request, manager.uploads_dir, max_bytes=settings.max_upload_bytes, fields=FIELDS
            )
            options = parse_options(upload.fields, default_model=model_default, default_detector=settings.detector)
            media = await run_in_threadpool(inspect_media, upload.path)
            typed = upload.path.with_suffix(media.suffix)
            os.replace(upload.path, typed)
            upload.path = typed
            return manager.submit(slot, upload, media, options, keep=keep, outputs=keep)
        except BaseException:
            if upload is not None:
                upload.remove()
            slot.release()
            raise

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(page_html())

    @app.post(
        "/v1/predict",
        response_model=PredictionV1,
        responses=ERRORS,
        openapi_extra=upload_body(jobs=False),
        summary="Predict one uploaded video or image",
    )
    async def predict(request: Request):
        """The same JSON as `emocontext predict --json`, `path` being the uploaded file's name."""
        job = await accept(request, keep=False)
        await job.waiter
        if job.status != "done":
            raise _job_error(job)
        return JSONResponse(job.result, headers={SCHEMA_HEADER: SCHEMA_VERSION})

    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobV1,
        responses=ERRORS,
        openapi_extra=upload_body(jobs=True),
        summary="Start a job on one uploaded video or image",
    )
    async def create_job(request: Request):
        """Answers at once with the job; poll `GET /v1/jobs/{id}`."""
        job = await accept(request, keep=True)
        return JSONResponse(_job_json(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs/{job_id}", response_model=JobV1, responses={404: {"model": ErrorV1}})
    async def get_job(request: Request, job_id: str):
        """Status, progress (sampled frames done / expected) and, when done, the result."""
        job = request.app.state.jobs.get(job_id)
        return JSONResponse(_job_json(job), headers={SCHEMA_HEADER: SCHEMA_VERSION})

    def finished(request: Request, job_id: str) -> Job:
        job = request.app.state.jobs.get(job_id)
        if job.status == "failed":
            raise _job_error(job)
        if job.status != "done":
            raise ApiError(409, "not_ready", f"job {job_id} is {job.status}; poll /v1/jobs/{job_id}")
        return job

    def output(job: Job, name: str):
        if name not in job.outputs or job.out_dir is None:
            raise ApiError(404, "not_found", f"job {job.id} has no {name}")
        return job.out_dir

    @app.get("/v1/jobs/{job_id}/result", response_model=PredictionV1, responses={404: {"model": ErrorV1}})
    async def job_result(request: Request, job_id: str):
        """The prediction JSON, as a download."""
        job = finished(request, job_id)
        stem = os.path.splitext(job.filename)[0] or "result"
        headers = {SCHEMA_HEADER: SCHEMA_VERSION, "Content-Disposition": f'attachment; filename="{_ascii(stem)}.json"'}
        return JSONResponse(job.result, headers=headers)

    @app.get("/v1/jobs/{job_id}/report", response_class=HTMLResponse, responses={404: {"model": ErrorV1}})
    async def job_report(request: Request, job_id: str):
        """The self-contained HTML report."""
        job = finished(request, job_id)
        return FileResponse(output(job, "report") / "report.html", media_type="text/html; charset=utf-8")

    @app.get("/v1/jobs/{job_id}/annotated", responses={200: {"content": {"video/mp4": {}}}, 404: {"model": ErrorV1}})
    async def job_annotated(request: Request, job_id: str):
        """The video with the face box and probability bars drawn (MP4, H.264)."""
        job = finished(request, job_id)
        stem = os.path.splitext(job.filename)[0] or "video"
        return FileResponse(
            output(job, "annotated") / "annotated.mp4",
            media_type="video/mp4",
            filename=f"{_ascii(stem)}_annotated.mp4",
        )

    @app.get("/v1/jobs/{job_id}/keyframes/{n}", responses={200: {"content": {"image/png": {}}}})
    async def job_key_frame(request: Request, job_id: str, n: int):
        """Key frame `n` (PNG): the face box, or the context attention overlaid."""
        job = finished(request, job_id)
        if not 0 <= n < len(job.key_frames) or job.out_dir is None:
            raise ApiError(404, "not_found", f"job {job_id} has {len(job.key_frames)} key frames")
        return FileResponse(job.out_dir / job.key_frames[n]["file"], media_type="image/png")

    @app.get("/v1/models", response_model=ModelsV1)
    async def models(request: Request):
        """Models, detectors and options accepted by the upload endpoints."""
        loaded = {d["model"]: d for d in request.app.state.jobs.live_ready().values()}  # one entry per model
        return {
            "models": list(MODELS),
            "default_model": model_default,
            "detectors": list_detectors(),
            "default_detector": settings.detector,
            "person": list(PERSON_MODES),
            "loaded": list(loaded.values()),
            "max_upload_mb": settings.max_upload_mb,
            "max_fps": MAX_FPS,
        }

    @app.get("/healthz")
    async def healthz():
        """The server answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "models still loading"}})
    async def readyz(request: Request):
        """200 when every worker has its models loaded, else 503."""
        manager: JobManager = request.app.state.jobs
        ready = len(manager.live_ready())
        body = {"ready": ready >= settings.workers, "workers": settings.workers, "workers_ready": ready}
        if manager.worker_errors:
            body["errors"] = manager.worker_errors[-3:]
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics", response_class=Response)
    async def prometheus():
        """Prometheus text format."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


def _ascii(name: str) -> str:
    """A file name safe inside a Content-Disposition header."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in name)[:100] or "file"
