"""The web service: ``emocontext serve`` (FastAPI + uvicorn), its page and its worker pool.

Needs the ``serve`` extra (``pip install -e ".[serve]"``). :func:`create_app` builds the ASGI app
(:mod:`.app`, which only wires the routers of :mod:`.routes`); :func:`run` serves it with uvicorn.
Modules: :mod:`.settings` (options, data folder, API keys), :mod:`.auth` (keys and the per-key request
limit), :mod:`.uploads` (streaming multipart with the size limit), :mod:`.media` (what an upload is, by
decoding), :mod:`.options` (form fields), :mod:`.capabilities` (what can run here), :mod:`.jobs` (worker
pool, admission, durable jobs), :mod:`.store` (the SQLite job store), :mod:`.worker` and
:mod:`.explain` (code run in the worker processes), :mod:`.errors` (:class:`~.errors.ApiError`,
:class:`~.errors.JobError`), :mod:`.metrics` (Prometheus), :mod:`.schemas` (OpenAPI), :mod:`.page`
(the page at ``/``).
"""

from __future__ import annotations

import ipaddress

from ..errors import ConfigError
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "run", "check_bind"]


def create_app(settings: ServeSettings | None = None):
    """The FastAPI app (see :func:`emocontext.serve.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(settings)


def is_loopback(host: str) -> bool:
    """``host`` reaches this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: ServeSettings, *, insecure: bool = False) -> None:
    """Refuse to listen beyond this machine without API keys.

    Raises:
        ConfigError: ``host`` is not a loopback address, ``settings.api_keys`` is empty and ``insecure`` is False.
    """
    if not is_loopback(host) and not settings.api_keys and not insecure:
        raise ConfigError(
            f"refusing to listen on {host} without API keys: anyone who reaches the port could use the service. "
            "Give --api-key-file FILE (or set EMOCONTEXT_API_KEYS), or --insecure to serve without keys anyway"
        )


def run(
    settings: ServeSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    insecure: bool = False,
) -> None:
    """Serve the app with uvicorn until interrupted (one server process; the work runs in ``settings.workers``).

    Raises:
        ConfigError: see :func:`check_bind`.
    """
    import uvicorn

    check_bind(host, settings, insecure=insecure)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)
