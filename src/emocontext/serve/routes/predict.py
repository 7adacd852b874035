"""The uploads: ``POST /v1/predict`` (answers the prediction JSON) and ``POST /v1/jobs`` (answers a job at once).

Both take one multipart upload (``file`` + option fields) through the same steps (:func:`accept`): a slot
(503 or 429 when none), the streamed upload with its size limit, the options, the content check by
decoding, then the job. On any failure nothing is left behind.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...options import PredictOptions
from ..auth import caller
from ..errors import ApiError
from ..jobs import JobManager
from ..media import inspect_media
from ..options import FIELDS, read_options
from ..schemas import SCHEMA_HEADER, SCHEMA_VERSION, ErrorV1, JobV1, PredictionV1, upload_body
from ..store import Job
from ..uploads import discard_body, receive_upload
from .jobs import job_json

__all__ = ["router", "accept", "describe_uploads"]

router = APIRouter(prefix="/v1", tags=["predict"], dependencies=[Depends(caller)])
ERRORS = {
    400: {"model": ErrorV1, "description": "empty file, bad file name, malformed form"},
    401: {"model": ErrorV1, "description": "no valid API key (when the server has keys)"},
    413: {"model": ErrorV1, "description": "over the upload limit"},
    415: {"model": ErrorV1, "description": "not multipart, or the content is not a video or image"},
    422: {"model": ErrorV1, "description": "missing file, unknown field, bad or unavailable option, undecodable"},
    429: {"model": ErrorV1, "description": "over the key's requests a minute or jobs at once (see Retry-After)"},
    503: {"model": ErrorV1, "description": "queue full (see Retry-After)"},
}


async def accept(request: Request, owner: str, *, durable: bool) -> Job:
    """Slot, upload, options, content check, then the job; on any failure nothing is left behind."""
    manager: JobManager = request.app.state.jobs
    settings = request.app.state.settings
    try:
        slot = manager.reserve(owner)
    except ApiError:
        await discard_body(request)
        raise
    upload = None
    try:
        upload = await receive_upload(request, manager.uploads_dir, max_bytes=settings.max_upload_bytes, fields=FIELDS)
        options = read_options(upload.fields, base=settings.options, capabilities=request.app.state.capabilities)
        media = await run_in_threadpool(inspect_media, upload.path)
        return manager.submit(slot, upload, media, options, durable=durable)
    except BaseException:
        if upload is not None:
            upload.remove()
        slot.release()
        raise


@router.post(
    "/predict",
    response_model=PredictionV1,
    responses=ERRORS,
    summary="Predict one uploaded video or image",
)
async def predict(request: Request, owner: str = Depends(caller)):
    """The same JSON as `emocontext predict --json`, `path` being the uploaded file's name."""
    manager: JobManager = request.app.state.jobs
    job = await accept(request, owner, durable=False)
    await manager.wait(job)
    if job.error is not None:
        raise job.error.to_api()
    return JSONResponse(job.result, headers={SCHEMA_HEADER: SCHEMA_VERSION})


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobV1,
    responses=ERRORS,
    summary="Start a job on one uploaded video or image",
)
async def create_job(request: Request, owner: str = Depends(caller)):
    """Answers at once with the job; poll `GET /v1/jobs/{id}`. The job survives a server restart."""
    job = await accept(request, owner, durable=True)
    return JSONResponse(job_json(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


#: The upload routes: does the route write the job's files?
_UPLOADS = {predict: False, create_job: True}


def describe_uploads(app: FastAPI, defaults: PredictOptions) -> None:
    """Put the upload body (:func:`~..schemas.upload_body`, ``defaults`` the server's options) into ``app``'s
    OpenAPI document: :func:`accept` reads the body by streaming, so FastAPI cannot derive it."""
    bodies = {r.path: upload_body(jobs=_UPLOADS[r.endpoint], defaults=defaults) for r in router.routes}
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            for path, body in bodies.items():
                plain()["paths"][path]["post"].update(body)
        return app.openapi_schema

    app.openapi = openapi
