"""The durable job store: one SQLite file (standard library ``sqlite3``, WAL mode) in the service's data folder.

Each ``/v1/jobs`` job is one row: who made it (the key's id, never the key), the client's file name,
the options, what the upload is, its status and stage, timings, the result JSON, the key frames, the
outputs written, the :class:`~.errors.JobError` of a failure, and how often it was resumed after a
restart. Every change is one transaction, so a server killed at any moment (``kill -9`` included)
finds each job as it was before or after the change, never half-written. Progress (frames done) is
stored when the job starts and ends, not as it goes: a job cut by a restart runs again from its kept
upload.

The store is shared by the server's threads (event loop, pool callbacks, the event reader): one
connection behind a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .errors import JobError

__all__ = ["Job", "JobStore", "FINAL", "ACTIVE"]

#: Statuses of a job that has ended / not ended.
FINAL = ("done", "failed", "cancelled")
ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    options TEXT NOT NULL,
    media TEXT NOT NULL,
    upload TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    result TEXT,
    error TEXT,
    key_frames TEXT NOT NULL DEFAULT '[]',
    persons TEXT NOT NULL DEFAULT '[]',
    outputs TEXT NOT NULL DEFAULT '{}',
    seconds REAL,
    resumed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created);
CREATE INDEX IF NOT EXISTS jobs_status_finished ON jobs (status, finished);
"""
_JSON = ("options", "media", "result", "key_frames", "persons", "outputs")
_COLUMNS = (
    "id owner filename options media upload status stage frames_done frames_total created started finished "
    "result error key_frames persons outputs seconds resumed"
).split()


@dataclass
class Job:
    """One prediction request and what became of it.

    Attributes:
        id: random hex id (unguessable).
        owner: id of the API key that made it (``""`` without keys); others get 404.
        filename: the client's file name (a label, never a path).
        options: the prediction options (:meth:`~emocontext.options.PredictOptions.to_dict`).
        media: what the upload is (:class:`~emocontext.video.decode.MediaContent` as a dict: ``kind``,
            ``width``, ``height``, ...).
        upload: the kept upload's file name in the uploads folder (deleted when the job ends).
        status: ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.
        stage: ``queued``, ``load`` (a model not yet in the worker), ``detect`` (reading frames),
            ``report``, ``annotate``, then the status.
        frames_done / frames_total: sampled frames read so far / expected (None when unknown).
        result: the prediction JSON (``status == "done"``).
        error: why it failed (``status`` ``failed`` or ``cancelled``).
        key_frames: ``[{"frame": index into result.frames, "timestamp": s, "file": png name, "persons": ids}]``.
        persons: ``[{"id": person_id, "subject": bool, "file": thumbnail png name}]``.
        outputs: the files written, by name (``{"report": "report.html", "annotated": "annotated.mp4"}``).
        resumed: times the job was started again from its upload after a server restart.
        durable: a ``/v1/jobs`` job (in the store); False for ``/v1/predict``, answered on its connection.
    """

    id: str
    owner: str
    filename: str
    options: dict
    media: dict
    upload: str
    frames_total: int | None
    status: str = "queued"
    stage: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: dict | None = None
    error: JobError | None = None
    key_frames: list = field(default_factory=list)
    persons: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    seconds: float | None = None
    resumed: int = 0
    frames_done: int = 0
    durable: bool = True

    @property
    def ended(self) -> bool:
        return self.status in FINAL


def _row(job: Job) -> tuple:
    values = []
    for c in _COLUMNS:
        v = getattr(job, c)
        if c in _JSON:
            v = None if v is None else json.dumps(v)
        elif c == "error":
            v = None if v is None else json.dumps(v.to_dict())
        values.append(v)
    return tuple(values)


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    for c in _JSON:
        d[c] = None if d[c] is None else json.loads(d[c])
    d["error"] = None if d["error"] is None else JobError.from_dict(json.loads(d["error"]))
    return Job(**d)


class JobStore:
    """The jobs of ``/v1/jobs`` in SQLite at ``path`` (created with its folder when missing).

    Raises:
        ConfigError: the file is not a job store, or cannot be opened.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe against a killed process
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise ConfigError(
                f"{self.path}: cannot open the service's job store ({e}); give another --data-dir"
            ) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, job: Job) -> None:
        """Insert or replace the whole record of ``job`` (one transaction)."""
        marks = ", ".join("?" for _ in _COLUMNS)
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO jobs ({', '.join(_COLUMNS)}) VALUES ({marks})", _row(job))

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def owned(self, owner: str, *, limit: int, offset: int = 0) -> tuple[list[Job], int]:
        """The owner's jobs, newest first: ``(page, total)``."""
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM jobs WHERE owner = ?", (owner,)).fetchone()[0]
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE owner = ? ORDER BY created DESC, id LIMIT ? OFFSET ?",
                (owner, limit, offset),
            ).fetchall()
        return [_job(r) for r in rows], total

    def unfinished(self) -> list[Job]:
        """Jobs queued or running (after a restart: the ones to run again), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created"
            ).fetchall()
        return [_job(r) for r in rows]

    def expired(self, before: float) -> list[str]:
        """Ids of the jobs that ended before the Unix time ``before``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE status IN ('done', 'failed', 'cancelled') AND finished < ?", (before,)
            ).fetchall()
        return [r[0] for r in rows]

    def ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM jobs").fetchall()}

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
