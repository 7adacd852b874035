"""The service's settings: one frozen dataclass, checked once."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ServeSettings"]


@dataclass(frozen=True)
class ServeSettings:
    """How ``emocontext serve`` runs.

    Attributes:
        workers: worker processes; each loads the models once and runs one job at a time.
        queue: jobs that may wait for a worker beyond the ``workers`` running ones; one more
            upload is answered 503 with ``Retry-After``.
        max_upload_mb: largest accepted upload in MiB (enforced while the upload is read).
        job_timeout: seconds one job may run in its worker before the worker is stopped and the job
            fails (``time_limit``); the worker is then replaced.
        keep_jobs: finished ``/v1/jobs`` results kept (oldest removed first).
        job_ttl: seconds a finished job's result, report and annotated video are kept.
        threads: torch threads per worker (None: the cores divided among the workers).
        model: the model every worker loads at start (None: the library default).
        detector: the face detector every worker loads at start.
        work_dir: folder for uploads and job outputs (None: a new folder under the system temp dir,
            removed at shutdown).
    """

    workers: int = 1
    queue: int = 8
    max_upload_mb: float = 200.0
    job_timeout: float = 600.0
    keep_jobs: int = 100
    job_ttl: float = 3600.0
    threads: int | None = None
    model: str | None = None
    detector: str = "mtcnn"
    work_dir: str | None = None

    def __post_init__(self):
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.queue < 0:
            raise ConfigError(f"queue must be >= 0, got {self.queue}")
        if not self.max_upload_mb > 0:
            raise ConfigError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if not self.job_timeout > 0:
            raise ConfigError(f"job_timeout must be > 0 seconds, got {self.job_timeout}")
        if self.keep_jobs < 1 or not self.job_ttl > 0:
            raise ConfigError("keep_jobs must be >= 1 and job_ttl > 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def capacity(self) -> int:
        """Jobs accepted at once: running plus waiting."""
        return self.workers + self.queue

    @property
    def worker_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)
