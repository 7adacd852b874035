"""``emocontext serve``: the HTTP service and its page (:mod:`emocontext.serve`)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import EmoContextError
from ..options import ModelName
from .common import USAGE, Detector, fail

__all__ = ["serve"]


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes; each loads the models once.", min=1)] = 1,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload (MiB).", min=0.001)] = 200.0,
    queue: Annotated[int, typer.Option(help="Jobs that may wait for a worker; beyond, 503 + Retry-After.", min=0)] = 8,
    job_timeout: Annotated[float, typer.Option(help="Seconds one job may run before it is stopped.", min=1)] = 600.0,
    model: Annotated[
        ModelName | None,
        typer.Option(help="Model the workers load at start (default: as predict).", case_sensitive=False),
    ] = None,
    detector: Detector = "mtcnn",
    threads: Annotated[
        int | None, typer.Option(help="Torch threads per worker (default: the cores divided among the workers).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve predictions over HTTP and a page to drop a file on (needs the serve extra).

    Open http://HOST:PORT/ in a browser; the API is described at /openapi.json. POST /v1/predict and
    POST /v1/jobs take a multipart upload (field `file`, options model, detector, fps,
    max_duration); GET /v1/models, /healthz, /readyz, /metrics.

    Examples:

    \b
      emocontext serve --port 8000 --workers 2
      emocontext serve --host 0.0.0.0 --model context --max-upload-mb 50
    """
    try:
        from ..serve import ServeSettings, run
        from ..serve.app import create_app  # noqa: F401  (fails here, with a clear message, without the extra)
    except ImportError as e:
        missing = f"the serve command needs the serve extra ({e.name} is missing): pip install 'emocontext[serve]'"
        raise fail(missing) from None
    try:
        settings = ServeSettings(
            workers=workers,
            queue=queue,
            max_upload_mb=max_upload_mb,
            job_timeout=job_timeout,
            model=model,
            detector=detector,
            threads=threads,
        )
    except EmoContextError as e:
        raise fail(str(e), USAGE) from None
    run(settings, host=host, port=port, log_level=log_level)
