"""The service's settings: one frozen dataclass, checked once; where its data lives; its API keys."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..options import PredictOptions

__all__ = ["ServeSettings", "default_data_dir", "load_api_keys", "API_KEYS_ENV"]

#: Environment variable holding API keys (separated by commas, spaces or new lines).
API_KEYS_ENV = "EMOCONTEXT_API_KEYS"
#: Shortest accepted key (a guessable key is no key).
MIN_KEY_LENGTH = 16


def default_data_dir() -> Path:
    """The user's data folder for the service (``platformdirs``): ``~/.local/share/emocontext/serve`` on Linux."""
    import platformdirs

    return Path(platformdirs.user_data_dir("emocontext", appauthor=False)) / "serve"


def _keys_of(text: str, where: str) -> list[str]:
    keys = []
    for raw in text.replace(",", "\n").split():
        if raw.startswith("#"):
            continue
        if len(raw) < MIN_KEY_LENGTH:
            raise ConfigError(f"{where}: an API key is shorter than {MIN_KEY_LENGTH} characters")
        keys.append(raw)
    return keys


def load_api_keys(path: str | Path | None = None, environ: dict | None = None) -> tuple[str, ...]:
    """The API keys of ``path`` (one key a line; ``#`` starts a comment line) and of ``$EMOCONTEXT_API_KEYS``.

    Returns:
        the keys (empty: no key is needed). Keys are never printed: errors name the file, not the key.

    Raises:
        ConfigError: the file cannot be read or holds no key; a key shorter than 16 characters.
    """
    environ = os.environ if environ is None else environ
    keys = _keys_of(environ.get(API_KEYS_ENV, ""), f"${API_KEYS_ENV}")
    if path is not None:
        try:
            lines = Path(path).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read the API key file {path}: {e}") from None
        found = _keys_of("\n".join(ln for ln in lines if not ln.strip().startswith("#")), str(path))
        if not found:
            raise ConfigError(f"the API key file {path} holds no key (one key a line)")
        keys += found
    return tuple(dict.fromkeys(keys))


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
        keep_hours: hours a finished job (its record, report, annotated video, key frames) is kept.
        threads: network threads per worker (ONNX Runtime and torch; None: the cores divided among the workers).
        options: the server's default prediction options: what an upload's empty or missing fields take
            (:meth:`PredictOptions.from_mapping <emocontext.options.PredictOptions.from_mapping>`), and the
            model and detector every worker loads at start (default: the library's defaults).
        data_dir: the job store (SQLite), the uploads and the job outputs (None: :func:`default_data_dir`).
        api_keys: keys accepted as ``Authorization: Bearer KEY`` on ``/v1/*`` and ``/metrics``
            (empty: open). Left out of ``repr``.
        requests_per_minute: requests to ``/v1/*`` one key (or, without keys, one client address) may
            make in any minute; beyond, 429 with ``Retry-After``. 0: no limit.
        jobs_per_key: jobs one key may have queued or running at once; beyond, 429 (None: ``workers + queue``).
    """

    workers: int = 1
    queue: int = 8
    max_upload_mb: float = 200.0
    job_timeout: float = 600.0
    keep_hours: float = 24.0
    threads: int | None = None
    options: PredictOptions = field(default_factory=PredictOptions)
    data_dir: str | Path | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    requests_per_minute: int = 600
    jobs_per_key: int | None = None

    def __post_init__(self):
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.queue < 0:
            raise ConfigError(f"queue must be >= 0, got {self.queue}")
        if not self.max_upload_mb > 0:
            raise ConfigError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if not self.job_timeout > 0:
            raise ConfigError(f"job_timeout must be > 0 seconds, got {self.job_timeout}")
        if not self.keep_hours > 0:
            raise ConfigError(f"keep_hours must be > 0, got {self.keep_hours}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.requests_per_minute < 0:
            raise ConfigError(f"requests_per_minute must be >= 0, got {self.requests_per_minute}")
        if self.jobs_per_key is not None and self.jobs_per_key < 1:
            raise ConfigError(f"jobs_per_key must be >= 1, got {self.jobs_per_key}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def capacity(self) -> int:
        """Jobs accepted at once: running plus waiting."""
        return self.workers + self.queue

    @property
    def key_capacity(self) -> int:
        """Jobs one key may have queued or running at once."""
        return self.jobs_per_key or self.capacity

    @property
    def worker_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    @property
    def root(self) -> Path:
        """The data folder (``data_dir`` or the user's data folder)."""
        return Path(self.data_dir) if self.data_dir is not None else default_data_dir()
