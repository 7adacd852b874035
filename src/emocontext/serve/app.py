"""The FastAPI application: :func:`create_app` wires the routers, the error answers and the job manager.

Routes (:mod:`.routes`): ``/v1/predict`` and ``/v1/jobs`` uploads (:mod:`.routes.predict`); the jobs,
their outputs, the list and cancel (:mod:`.routes.jobs`); the page, ``/v1/models``, ``/healthz``,
``/readyz``, ``/metrics`` (:mod:`.routes.meta`); ``/docs`` (Swagger UI) and ``/redoc`` with their scripts
served by the app (``fastapi-offline``: no CDN). Every error is ``{"error": kind, "detail": message}``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .auth import Auth
from .capabilities import check_capabilities
from .errors import ApiError
from .jobs import JobManager
from .metrics import Metrics, MetricsMiddleware
from .routes import jobs, meta, predict
from .schemas import SCHEMA_HEADER, SCHEMA_VERSION
from .settings import ServeSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

DESCRIPTION = f"""Context-aware emotion recognition of a video or image.

Prediction JSON schema version {SCHEMA_VERSION} (header `{SCHEMA_HEADER}`). When the server has API keys, every
`/v1` request and `/metrics` needs `Authorization: Bearer KEY` (the *Authorize* button here)."""


def _error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        if not e.counted:
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


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The service as an ASGI app; its lifespan opens the job store, checks what can run here, starts the
    worker pool (which runs again the jobs a previous server left unfinished) and stops it at the end.

    Args:
        settings: see :class:`~.settings.ServeSettings` (default: all defaults).
    """
    from fastapi_offline import FastAPIOffline

    settings = settings or ServeSettings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        manager = JobManager(settings, metrics)
        app.state.jobs = manager
        await run_in_threadpool(manager.start)  # the workers load their models meanwhile
        app.state.capabilities = await run_in_threadpool(check_capabilities)
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPIOffline(
        title="emocontext",
        version=__version__,
        summary="Context-aware video emotion recognition as a web service.",
        description=DESCRIPTION,
        lifespan=lifespan,
        favicon_url="/favicon.ico",
        static_url="/docs/assets",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.auth = Auth(settings.api_keys, settings.requests_per_minute)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _error_handlers(app, metrics)
    for router in (predict.router, jobs.router, meta.open_router, meta.keyed_router):
        app.include_router(router)
    predict.describe_uploads(app, settings.options)
    return app
