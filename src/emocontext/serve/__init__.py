"""The web service: ``emocontext serve`` (FastAPI + uvicorn), its page and its worker pool.

Needs the ``serve`` extra (``pip install -e ".[serve]"``). :func:`create_app` builds the ASGI app
(:mod:`.app`); :func:`run` serves it with uvicorn. Modules: :mod:`.settings` (options),
:mod:`.uploads` (streaming multipart with the size limit), :mod:`.media` (what an upload is, by
decoding), :mod:`.options` (form fields), :mod:`.jobs` (worker pool, admission, job store),
:mod:`.worker` (code run in the worker processes), :mod:`.metrics` (Prometheus), :mod:`.schemas`
(OpenAPI), :mod:`.page` (the page at ``/``).
"""

from __future__ import annotations

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "run"]


def create_app(settings: ServeSettings | None = None):
    """The FastAPI app (see :func:`emocontext.serve.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(settings)


def run(settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve the app with uvicorn until interrupted (one server process; the work runs in ``settings.workers``)."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)
