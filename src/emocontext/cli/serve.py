"""``emocontext serve``: the HTTP service and its page (:mod:`emocontext.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import EmoContextError
from ..options import ModelName, PredictOptions
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
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Job store (SQLite), uploads and job outputs; jobs survive restarts. [default: the "
            "user's data folder, e.g. ~/.local/share/emocontext/serve]"
        ),
    ] = None,
    keep_hours: Annotated[float, typer.Option(help="Hours a finished job and its files are kept.", min=0.001)] = 24.0,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="File of API keys, one a line (also $EMOCONTEXT_API_KEYS): /v1/* and /metrics then "
            "need Authorization: Bearer KEY."
        ),
    ] = None,
    requests_per_minute: Annotated[
        int,
        typer.Option(
            help="Requests to /v1/* a key (or, without keys, an address) may make a minute; 0: no "
            "limit. Beyond: 429 + Retry-After.",
            min=0,
        ),
    ] = 600,
    jobs_per_key: Annotated[
        int | None, typer.Option(help="Jobs one key may have queued or running. [default: workers + queue]", min=1)
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow listening beyond 127.0.0.1 without API keys.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve predictions over HTTP and a page to drop a file on (needs the serve extra).

    Open http://HOST:PORT/ in a browser; the API is described at /docs (offline) and /openapi.json.
    POST /v1/predict and POST /v1/jobs take a multipart upload (field `file`, options model, detector,
    fps, max_duration, person, detect_every; --model and --detector set their defaults); GET /v1/jobs
    lists your jobs, DELETE /v1/jobs/ID cancels or removes one; GET /v1/models, /healthz, /readyz,
    /metrics. Jobs are kept in --data-dir: after a restart a finished job answers as before and an
    unfinished one runs again. Listening beyond this machine
    (--host 0.0.0.0) needs API keys or --insecure.

    Examples:

    \b
      emocontext serve --port 8000 --workers 2
      emocontext serve --host 0.0.0.0 --api-key-file keys.txt --data-dir /srv/emocontext
    """
    try:
        from ..serve import ServeSettings, check_bind, run
        from ..serve.app import create_app  # noqa: F401  (fails here, with a clear message, without the extra)
        from ..serve.settings import load_api_keys
    except ImportError as e:
        missing = f"the serve command needs the serve extra ({e.name} is missing): pip install 'emocontext[serve]'"
        raise fail(missing) from None
    try:
        settings = ServeSettings(
            workers=workers,
            queue=queue,
            max_upload_mb=max_upload_mb,
            job_timeout=job_timeout,
            options=PredictOptions(model=model, detector=detector),
            threads=threads,
            data_dir=data_dir,
            keep_hours=keep_hours,
            api_keys=load_api_keys(api_key_file),
            requests_per_minute=requests_per_minute,
            jobs_per_key=jobs_per_key,
        )
        check_bind(host, settings, insecure=insecure)
    except EmoContextError as e:
        raise fail(str(e), USAGE) from None
    run(settings, host=host, port=port, log_level=log_level, insecure=insecure)
