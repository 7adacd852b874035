"""Everything but the jobs: the page (``/``), its icon, ``/v1/models``, ``/healthz``, ``/readyz``, ``/metrics``.

``/``, ``/favicon.ico``, ``/healthz`` and ``/readyz`` are open; ``/v1/models`` and ``/metrics`` follow
the API keys. (The API docs, ``/docs`` and ``/redoc``, are served offline by ``fastapi-offline``:
see :func:`~emocontext.serve.app.create_app`.)
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ...labels import emotion_hex
from ...options import PERSON_MODES, PredictOptions
from ..auth import caller
from ..jobs import JobManager
from ..metrics import CONTENT_TYPE_LATEST
from ..page import favicon_svg, page_html
from ..schemas import ModelsV1

__all__ = ["open_router", "keyed_router"]

open_router = APIRouter(tags=["service"])
keyed_router = APIRouter(tags=["service"], dependencies=[Depends(caller)])


@open_router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page():
    return HTMLResponse(page_html())


@open_router.get("/favicon.ico", include_in_schema=False)
async def favicon():
    return Response(favicon_svg(), media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@open_router.get("/healthz")
async def healthz():
    """The server answers."""
    return {"status": "ok"}


@open_router.get("/readyz", responses={503: {"description": "models still loading"}})
async def readyz(request: Request):
    """200 when every worker has its models loaded, else 503."""
    manager: JobManager = request.app.state.jobs
    workers = request.app.state.settings.workers
    ready = len(manager.live_ready())
    body = {"ready": ready >= workers, "workers": workers, "workers_ready": ready}
    if manager.worker_errors:
        body["errors"] = manager.worker_errors[-3:]
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@keyed_router.get("/v1/models", response_model=ModelsV1)
async def models(request: Request):
    """Models, detectors and options this server accepts; the ones the library has but this server lacks, with
    the reason and the operator's fix; the colour of each emotion."""
    state = request.app.state
    defaults = state.settings.options
    caps = state.capabilities
    loaded = {d["model"]: d for d in state.jobs.live_ready().values()}  # one entry per model
    labels = [name for d in loaded.values() for name in d.get("labels", [])]
    return {
        "models": list(caps.models),
        "default_model": defaults.model,
        "detectors": list(caps.detectors),
        "default_detector": defaults.detector,
        "unavailable": [m.to_dict() for m in caps.missing],
        "person": list(PERSON_MODES),
        "loaded": list(loaded.values()),
        "max_upload_mb": state.settings.max_upload_mb,
        "max_fps": PredictOptions.MAX_FPS,
        "colors": {name: emotion_hex(name) for name in dict.fromkeys(labels)},
        "auth": state.auth.required,
    }


@keyed_router.get("/metrics", response_class=Response)
async def prometheus(request: Request):
    """Prometheus text format."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
