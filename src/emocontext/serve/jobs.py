"""Jobs: a bounded pool of worker processes (pebble), admission control and the job store.

* **Pool**: ``workers`` processes started with ``spawn``; each loads the models once
  (:func:`~.worker.init_worker`) and runs one job at a time. A job that runs longer than
  ``job_timeout`` has its worker stopped (pebble) and the job fails as ``time_limit``; a worker that
  dies (a crash in a decoder) fails only its own job (``worker_crash``); pebble starts a new worker.
* **Admission**: a request takes a slot (:meth:`JobManager.reserve`) before its upload is read;
  at most ``workers + queue`` slots exist, so a full service answers 503 with ``Retry-After``
  at once and the uploads on disk are bounded too. The slot is given back when the job ends.
* **Store**: ``/v1/jobs`` jobs are kept with their progress and result until ``keep_jobs`` newer
  ones have finished or ``job_ttl`` has passed; their folder (report, annotated video, key
  frames) is removed with them. The uploaded file is removed as soon as its job ends or fails.
* **Events**: workers report readiness, the start of a job, frames done and stages on a
  multiprocessing queue that a thread of the server drains.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import queue as queue_module
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ApiError
from .media import Media
from .metrics import Metrics
from .settings import ServeSettings
from .uploads import Upload
from .worker import init_worker, run_job

__all__ = ["Job", "JobManager", "Slot"]

log = logging.getLogger(__name__)

FINAL = ("done", "failed")


@dataclass
class Job:
    """One prediction request and what became of it.

    Attributes:
        id: random hex id (unguessable).
        filename: the client's file name.
        options: the prediction options (``model``, ``detector``, ``fps``, ``max_duration``, ``person``).
        status: ``queued``, ``running``, ``done`` or ``failed``.
        stage: ``queued``, ``load`` (a model not yet in the worker), ``detect`` (reading frames), ``report``,
            ``annotate``, then the status.
        frames_done / frames_total: sampled frames read so far / expected (None when unknown).
        result: the prediction JSON (``status == "done"``).
        error: ``{"error": kind, "detail": message}`` (``status == "failed"``).
        out_dir: the job's folder of outputs (report, annotated video, key frames), or None.
    """

    id: str
    filename: str
    options: dict
    media: Media
    upload: Path
    out_dir: Path | None
    frames_total: int | None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    status: str = "queued"
    stage: str = "queued"
    frames_done: int = 0
    result: dict | None = None
    error: dict | None = None
    key_frames: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    seconds: float | None = None
    worker: int | None = None
    waiter: asyncio.Future | None = None
    loop: asyncio.AbstractEventLoop | None = None


class Slot:
    """One of the ``workers + queue`` places; :meth:`release` gives it back (once)."""

    def __init__(self, manager: JobManager):
        self._manager = manager
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._manager._release()


def expected_frames(media: Media, fps: float, max_duration: float | None) -> int | None:
    """Sampled frames the pipeline will read: 1 for an image, ``ceil(duration * fps)`` for a video."""
    if media.kind == "image":
        return 1
    if media.duration is None:
        return None
    d = media.duration if max_duration is None else min(media.duration, max_duration)
    return max(1, math.ceil(d * fps - 1e-6))


class JobManager:
    """The worker pool, the slots and the store of jobs (see the module docstring).

    Args:
        settings: the service settings.
        metrics: where to count.
    """

    def __init__(self, settings: ServeSettings, metrics: Metrics):
        self.settings = settings
        self.metrics = metrics
        self.root = Path(tempfile.mkdtemp(prefix="emocontext-serve-", dir=settings.work_dir))
        self.uploads_dir = self.root / "uploads"
        self.jobs_dir = self.root / "jobs"
        self.uploads_dir.mkdir()
        self.jobs_dir.mkdir()
        self._lock = threading.Lock()
        self._inflight = 0
        self._jobs: dict[str, Job] = {}
        self._active: dict[str, Job] = {}  # submitted and not finished, sync ones included
        self._durations: deque = deque(maxlen=20)
        self.ready: dict[int, dict] = {}
        self.worker_errors: list[str] = []
        self._pool = None
        self._events = None
        self._event_thread: threading.Thread | None = None
        metrics.bind(
            queue_depth=lambda: sum(j.status == "queued" for j in list(self._active.values())),
            running=lambda: sum(j.status == "running" for j in list(self._active.values())),
            slots=lambda: self._inflight,
            workers_ready=lambda: len(self.live_ready()),
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the worker processes (they load the models in the background) and the event thread."""
        from pebble import ProcessPool

        ctx = multiprocessing.get_context("spawn")
        self._events = ctx.Queue()
        s = self.settings
        self._pool = ProcessPool(
            max_workers=s.workers,
            initializer=init_worker,
            initargs=(self._events, s.worker_threads, s.model, s.detector),
            context=ctx,
        )
        self._event_thread = threading.Thread(target=self._drain_events, name="emocontext-events", daemon=True)
        self._event_thread.start()
        for _ in range(s.workers):  # starts the pool: every worker runs the initializer
            self._pool.schedule(os.getpid)

    def stop(self) -> None:
        """Stop the workers, the event thread, and remove every upload and job folder."""
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=30)
            self._pool = None
        if self._events is not None:
            self._events.put(None)
            if self._event_thread is not None:
                self._event_thread.join(timeout=5)
            self._events.close()
            self._events = None
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ readiness
    def live_ready(self) -> dict[int, dict]:
        """Workers that reported their models loaded and are still alive."""
        alive = {}
        for pid, info in list(self.ready.items()):
            try:
                os.kill(pid, 0)
            except OSError:
                self.ready.pop(pid, None)
                continue
            alive[pid] = info
        return alive

    def _drain_events(self) -> None:
        while True:
            try:
                msg = self._events.get(timeout=1.0)
            except queue_module.Empty:
                continue
            except (EOFError, OSError, ValueError):
                return
            if msg is None:
                return
            kind = msg[0]
            if kind == "ready":
                self.ready[msg[1]] = msg[2]
            elif kind == "failed":
                self.worker_errors.append(msg[2])
                log.error("worker %s could not load its models: %s", msg[1], msg[2])
            else:
                with self._lock:
                    job = self._active.get(msg[1])
                    if job is None or job.status in FINAL:
                        continue
                    if kind == "start":
                        job.status, job.stage, job.started = "running", "detect", time.time()
                        job.worker = msg[2]
                    elif kind == "progress":
                        job.frames_done = max(job.frames_done, int(msg[2]))
                        if job.frames_total is not None and job.frames_done > job.frames_total:
                            job.frames_total = job.frames_done
                    elif kind == "stage":
                        job.stage = msg[2]

    # ------------------------------------------------------------------ admission
    def reserve(self) -> Slot:
        """Take a slot for one upload and its job.

        Raises:
            ApiError: 503 ``queue_full`` with ``Retry-After`` when ``workers + queue`` are taken.
        """
        with self._lock:
            if self._inflight >= self.settings.capacity:
                raise ApiError(
                    503,
                    "queue_full",
                    f"the service is busy ({self._inflight} jobs running or queued); try again later",
                    headers={"Retry-After": str(self.retry_after())},
                )
            self._inflight += 1
        return Slot(self)

    def _release(self) -> None:
        with self._lock:
            self._inflight -= 1

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: recent mean job time x waiting jobs / workers (1-300)."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 5.0
        waiting = max(1, self._inflight - self.settings.workers + 1)
        return int(min(300, max(1, math.ceil(mean * waiting / self.settings.workers))))

    # ------------------------------------------------------------------ jobs
    def submit(self, slot: Slot, upload: Upload, media: Media, options: dict, *, keep: bool, outputs: bool) -> Job:
        """Schedule the prediction of an upload that passed :func:`~.media.inspect_media`.

        Args:
            slot: the slot taken for it (released when the job ends).
            upload: the received file, already given its media suffix.
            media: what the upload is.
            options: prediction options.
            keep: a ``/v1/jobs`` job (kept in the store for ``GET``); False for ``/v1/predict``.
            outputs: also write the report, the annotated video and the key frames.
        """
        self._evict()
        job_id = uuid.uuid4().hex
        out_dir = None
        if outputs:
            out_dir = self.jobs_dir / job_id
            out_dir.mkdir()
        job = Job(
            id=job_id,
            filename=upload.filename,
            options=options,
            media=media,
            upload=upload.path,
            out_dir=out_dir,
            frames_total=expected_frames(media, options["fps"], options.get("max_duration")),
        )
        try:
            job.loop = asyncio.get_running_loop()
            job.waiter = job.loop.create_future()
        except RuntimeError:
            pass
        spec = {
            "id": job_id,
            "path": str(upload.path),
            "filename": upload.filename,
            "options": options,
            "out_dir": None if out_dir is None else str(out_dir),
            "key_frames": 4,
        }
        with self._lock:
            self._active[job_id] = job
            if keep:
                self._jobs[job_id] = job
        try:
            future = self._pool.schedule(run_job, args=(spec,), timeout=self.settings.job_timeout)
        except Exception:
            with self._lock:
                self._active.pop(job_id, None)
                self._jobs.pop(job_id, None)
            self._cleanup(job, failed=True)
            slot.release()
            raise
        future.add_done_callback(lambda f: self._finished(job, slot, f))
        return job

    def _finished(self, job: Job, slot: Slot, future) -> None:
        """Pool callback (a pebble thread): record the outcome, remove the upload, give the slot back."""
        from pebble import ProcessExpired

        outcome = None
        try:
            out = future.result()
        except TimeoutError:
            outcome = {
                "error": "time_limit",
                "detail": f"the file took longer than the time limit of {self.settings.job_timeout:g} s to analyse; "
                "send a shorter clip or set max_duration",
            }
        except ProcessExpired as e:
            outcome = {
                "error": "worker_crash",
                "detail": f"the worker process stopped while reading the file (exit code {e.exitcode})",
            }
        except CancelledError:
            outcome = {"error": "cancelled", "detail": "the job was cancelled"}
        except Exception as e:  # a bug: keep the traceback in the log, tell the client one line
            log.error("job %s failed", job.id, exc_info=e)
            outcome = {"error": "internal", "detail": f"internal error ({type(e).__name__})"}
        else:
            if "error" in out:
                outcome = {"error": out["error"]["kind"], "detail": out["error"]["detail"]}
        now = time.time()
        with self._lock:
            job.finished = now
            if outcome is None:
                job.status = job.stage = "done"
                job.result = out["result"]
                job.key_frames = out.get("key_frames", [])
                job.outputs = out.get("outputs", [])
                job.seconds = out.get("seconds")
                n = int(job.result.get("num_frames", job.frames_done))
                job.frames_done = job.frames_total = n
            else:
                job.status = job.stage = "failed"
                job.error = outcome
                if outcome["error"] in ("time_limit", "worker_crash") and job.worker is not None:
                    self.ready.pop(job.worker, None)  # stopped: its replacement reports when loaded
            self._active.pop(job.id, None)
        elapsed = now - (job.started or job.created)
        self._durations.append(elapsed)
        self.metrics.job_seconds.labels(outcome="done" if outcome is None else outcome["error"]).observe(elapsed)
        if outcome is not None:
            self.metrics.failure(outcome["error"])
        self._cleanup(job, failed=outcome is not None)
        slot.release()
        if job.waiter is not None and job.loop is not None and not job.loop.is_closed():
            job.loop.call_soon_threadsafe(_set_done, job.waiter)

    def _cleanup(self, job: Job, *, failed: bool) -> None:
        job.upload.unlink(missing_ok=True)
        if failed and job.out_dir is not None:
            shutil.rmtree(job.out_dir, ignore_errors=True)

    def get(self, job_id: str) -> Job:
        """A ``/v1/jobs`` job. Raises ApiError 404 when unknown or already removed."""
        self._evict()
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id!r} (unknown, or its results were removed)")
        return job

    def _evict(self) -> None:
        """Forget finished jobs beyond ``keep_jobs`` or older than ``job_ttl``, with their folders."""
        now = time.time()
        with self._lock:
            done = sorted((j for j in self._jobs.values() if j.status in FINAL), key=lambda j: j.finished)
            extra = len(done) - self.settings.keep_jobs
            gone = [j for k, j in enumerate(done) if k < extra or now - j.finished > self.settings.job_ttl]
            for j in gone:
                self._jobs.pop(j.id, None)
        for j in gone:
            if j.out_dir is not None:
                shutil.rmtree(j.out_dir, ignore_errors=True)

    @property
    def jobs(self) -> dict[str, Job]:
        return self._jobs


def _set_done(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
