"""Jobs: a bounded pool of worker processes (pebble), admission per service and per key, durable jobs.

* **Pool**: ``workers`` processes started with ``spawn``; each loads the models once
  (:func:`~.worker.init_worker`) and runs one job at a time. A job that runs longer than
  ``job_timeout`` has its worker stopped (pebble) and fails as ``time_limit``; a worker that dies
  (a crash in a decoder) fails only its own job (``worker_crash``); pebble starts a new worker.
* **Admission**: a request takes a slot (:meth:`JobManager.reserve`) before its upload is read: at
  most ``workers + queue`` slots exist (one more is 503 with ``Retry-After``), and at most
  ``jobs_per_key`` for one key (429 with ``Retry-After``). The slot is given back when the job ends.
* **Durable jobs**: a ``/v1/jobs`` job is a row of the :class:`~.store.JobStore` in the data folder,
  its upload is kept in ``uploads/`` until the job ends, its outputs go to ``jobs/<id>/``. After a
  restart (``kill -9`` included) a finished job answers as before, and a job that was queued or
  running is run again from its upload (``resumed`` counts how often); a job whose upload is gone
  fails as ``lost``. Files no job owns are removed at start. Finished jobs are removed with their
  files ``keep_hours`` after they ended. ``/v1/predict`` jobs live only in memory: their answer goes
  on the request's own connection.
* **Events**: workers report readiness, the start of a job, frames done and stages on a
  multiprocessing queue that a thread of the server drains; the same thread removes expired jobs
  once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import queue as queue_module
import shutil
import signal
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import CancelledError
from dataclasses import asdict

from ..options import PredictOptions
from ..video.decode import MediaContent
from .errors import ApiError, JobError
from .metrics import Metrics
from .settings import ServeSettings
from .store import Job, JobStore
from .uploads import Upload
from .worker import init_worker, run_job

__all__ = ["JobManager", "Slot", "expected_frames"]

log = logging.getLogger(__name__)

#: seconds between two removals of expired jobs
EVICT_EVERY = 60.0


class Slot:
    """One of the ``workers + queue`` places, held for ``owner``; :meth:`release` gives it back (once)."""

    def __init__(self, manager: JobManager, owner: str):
        self._manager = manager
        self.owner = owner
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._manager._release(self.owner)


def expected_frames(media: MediaContent | dict, fps: float, max_duration: float | None) -> int | None:
    """Sampled frames the pipeline will read: 1 for an image, ``ceil(duration * fps)`` for a video."""
    kind, duration = (media["kind"], media["duration"]) if isinstance(media, dict) else (media.kind, media.duration)
    if kind == "image":
        return 1
    if duration is None:
        return None
    d = duration if max_duration is None else min(duration, max_duration)
    return max(1, math.ceil(d * fps - 1e-6))


def _outcome(future, job_timeout: float, job_id: str) -> tuple[JobError | None, dict]:
    """The worker's answer, or the :class:`JobError` of a time limit, a crash, a cancel or a bug."""
    from pebble import ProcessExpired

    try:
        out = future.result()
    except TimeoutError:
        detail = (
            f"the file took longer than the time limit of {job_timeout:g} s to analyse; "
            "send a shorter clip or set max_duration"
        )
        return JobError("time_limit", detail), {}
    except ProcessExpired as e:
        return JobError("worker_crash", f"the worker process stopped while reading the file (exit {e.exitcode})"), {}
    except CancelledError:
        return JobError("cancelled", "the job was cancelled"), {}
    except Exception as e:  # a bug: keep the traceback in the log, tell the client one line
        log.error("job %s failed", job_id, exc_info=e)
        return JobError("internal", f"internal error ({type(e).__name__})"), {}
    return out.get("error"), out


class JobManager:
    """The worker pool, the slots, and the jobs (see the module docstring).

    Args:
        settings: the service settings (``settings.root`` is the data folder, created when missing).
        metrics: where to count.
    """

    def __init__(self, settings: ServeSettings, metrics: Metrics):
        self.settings = settings
        self.metrics = metrics
        self.root = settings.root
        self.uploads_dir = self.root / "uploads"
        self.jobs_dir = self.root / "jobs"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(self.root / "jobs.sqlite3")
        self._lock = threading.Lock()
        self._inflight = 0
        self._per_owner: Counter = Counter()
        self._active: dict[str, Job] = {}  # submitted and not ended, /v1/predict ones included
        self._futures: dict = {}
        self._waiters: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._worker_of: dict[str, int] = {}
        self._durations: deque = deque(maxlen=20)
        self._stopping = False
        self.ready: dict[int, dict] = {}
        self.worker_errors: list[str] = []
        self._pool = None
        self._events = None
        self._event_thread: threading.Thread | None = None
        metrics.bind(
            queue_depth=lambda: self._count("queued"),
            running=lambda: self._count("running"),
            slots=lambda: self._inflight,
            workers_ready=lambda: len(self.live_ready()),
        )

    def _count(self, status: str) -> int:
        return sum(j.status == status for j in list(self._active.values()))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the worker processes (they load the models in the background), the event thread, and run
        again the jobs a previous server left queued or running."""
        from pebble import ProcessPool

        ctx = multiprocessing.get_context("spawn")
        self._events = ctx.Queue()
        s = self.settings
        self._pool = ProcessPool(
            max_workers=s.workers,
            initializer=init_worker,
            initargs=(self._events, s.worker_threads, s.options.to_dict()),
            context=ctx,
        )
        self._event_thread = threading.Thread(target=self._drain_events, name="emocontext-events", daemon=True)
        self._event_thread.start()
        for _ in range(s.workers):  # starts the pool: every worker runs the initializer
            self._pool.schedule(os.getpid)
        self._recover()

    def stop(self) -> None:
        """Stop the workers and the event thread. Durable jobs stay as they are (run again at the next start);
        the uploads of ``/v1/predict`` requests are removed."""
        self._stopping = True
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
        for job in list(self._active.values()):
            if not job.durable:
                (self.uploads_dir / job.upload).unlink(missing_ok=True)
        self.store.close()

    def _recover(self) -> None:
        """Run again the store's queued and running jobs; fail those whose upload is gone; remove stray files."""
        keep = set()
        for job in self.store.unfinished():
            upload = self.uploads_dir / job.upload
            if not upload.is_file():
                self._end(job, JobError("lost", "the upload was lost when the server restarted; send the file again"))
                continue
            job.resumed += 1
            job.status, job.stage, job.started, job.frames_done = "queued", "queued", None, 0
            out_dir = self.jobs_dir / job.id
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir()
            self.store.put(job)
            keep.add(job.upload)
            with self._lock:  # a resumed job takes a slot even beyond the capacity
                self._inflight += 1
                self._per_owner[job.owner] += 1
            self._schedule(job, Slot(self, job.owner))
            log.warning("job %s resumed after a restart (%d)", job.id, job.resumed)
        for f in self.uploads_dir.iterdir():
            if f.name not in keep:
                f.unlink(missing_ok=True)
        ids = self.store.ids()
        for d in self.jobs_dir.iterdir():
            if d.name not in ids:
                shutil.rmtree(d, ignore_errors=True)
        self.evict()

    # ------------------------------------------------------------------ readiness and events
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
        next_evict = time.monotonic() + EVICT_EVERY
        while True:
            if time.monotonic() > next_evict:
                next_evict = time.monotonic() + EVICT_EVERY
                try:
                    self.evict()
                except Exception as e:  # never stop reading events
                    log.error("removing expired jobs failed", exc_info=e)
            try:
                msg = self._events.get(timeout=1.0)
            except queue_module.Empty:
                continue
            except (EOFError, OSError, ValueError):
                return
            if msg is None:
                return
            self._on_event(msg)

    def _on_event(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "ready":
            self.ready[msg[1]] = msg[2]
            return
        if kind == "failed":
            self.worker_errors.append(msg[2])
            log.error("worker %s could not load its models: %s", msg[1], msg[2])
            return
        with self._lock:
            job = self._active.get(msg[1])
            if job is None or job.ended:
                return
            if kind == "start":
                job.status, job.stage, job.started = "running", "detect", time.time()
                self._worker_of[job.id] = msg[2]
                if job.durable:  # under the lock: never after the record of its end
                    self.store.put(job)
            elif kind == "progress":
                job.frames_done = max(job.frames_done, int(msg[2]))
                if job.frames_total is not None and job.frames_done > job.frames_total:
                    job.frames_total = job.frames_done
            elif kind == "stage":
                job.stage = msg[2]

    # ------------------------------------------------------------------ admission
    def reserve(self, owner: str = "") -> Slot:
        """Take a slot for one upload and its job, for the key ``owner``.

        Raises:
            ApiError: 503 ``queue_full`` when ``workers + queue`` are taken; 429 ``too_many_jobs`` when the
                key holds ``jobs_per_key``; both with ``Retry-After``.
        """
        with self._lock:
            if self._inflight >= self.settings.capacity:
                raise ApiError(
                    503,
                    "queue_full",
                    f"the service is busy ({self._inflight} jobs running or queued); try again later",
                    headers={"Retry-After": str(self.retry_after())},
                )
            if self._per_owner[owner] >= self.settings.key_capacity:
                raise ApiError(
                    429,
                    "too_many_jobs",
                    f"this key has {self._per_owner[owner]} jobs running or queued, the most allowed; "
                    "wait for one to end",
                    headers={"Retry-After": str(self.retry_after())},
                )
            self._inflight += 1
            self._per_owner[owner] += 1
        return Slot(self, owner)

    def _release(self, owner: str) -> None:
        with self._lock:
            self._inflight -= 1
            self._per_owner[owner] -= 1
            if self._per_owner[owner] <= 0:
                del self._per_owner[owner]

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: recent mean job time x waiting jobs / workers (1-300)."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 5.0
        waiting = max(1, self._inflight - self.settings.workers + 1)
        return int(min(300, max(1, math.ceil(mean * waiting / self.settings.workers))))

    # ------------------------------------------------------------------ jobs
    def submit(self, slot: Slot, upload: Upload, media: MediaContent, options: PredictOptions, *, durable: bool) -> Job:
        """Schedule the prediction of an upload that passed :func:`~.media.inspect_media`.

        Args:
            slot: the slot taken for it (released when the job ends).
            upload: the received file; it is renamed to the job's id with the media's suffix.
            media: what the upload is.
            options: the prediction options (kept in the job as :meth:`~PredictOptions.to_dict`; the worker
                rebuilds the record from it).
            durable: a ``/v1/jobs`` job (kept in the store, outputs written); False for ``/v1/predict``.
        """
        job_id = uuid.uuid4().hex
        typed = self.uploads_dir / f"{job_id}{media.suffix}"
        os.replace(upload.path, typed)
        upload.path = typed
        job = Job(
            id=job_id,
            owner=slot.owner,
            filename=upload.filename,
            options=options.to_dict(),
            media=asdict(media),
            upload=typed.name,
            frames_total=expected_frames(media, options.fps, options.max_duration),
            durable=durable,
        )
        try:
            loop = asyncio.get_running_loop()
            self._waiters[job_id] = (loop, loop.create_future())
        except RuntimeError:
            pass
        if durable:
            (self.jobs_dir / job_id).mkdir()
            self.store.put(job)
        self._schedule(job, slot)
        return job

    def _schedule(self, job: Job, slot: Slot) -> None:
        spec = {
            "id": job.id,
            "path": str(self.uploads_dir / job.upload),
            "filename": job.filename,
            "options": job.options,
            "out_dir": str(self.jobs_dir / job.id) if job.durable else None,
        }
        with self._lock:
            self._active[job.id] = job
        try:
            future = self._pool.schedule(run_job, args=(spec,), timeout=self.settings.job_timeout)
        except Exception as e:
            self._end(job, JobError("internal", f"internal error ({type(e).__name__})"))
            slot.release()
            raise
        self._futures[job.id] = future
        future.add_done_callback(lambda f: self._finished(job, slot, f))

    def _finished(self, job: Job, slot: Slot, future) -> None:
        """Pool callback (a pebble thread): record the outcome, remove the upload, give the slot back."""
        if self._stopping:  # a clean stop: durable jobs run again at the next start
            slot.release()
            return
        error, out = _outcome(future, self.settings.job_timeout, job.id)
        if error is None:
            job.result = out["result"]
            job.key_frames = out.get("key_frames", [])
            job.persons = out.get("persons", [])
            job.outputs = out.get("outputs", {})
            job.seconds = out.get("seconds")
            job.frames_done = job.frames_total = int(job.result.get("num_frames", job.frames_done))
        elif error.kind in ("time_limit", "worker_crash", "cancelled") and job.id in self._worker_of:
            self.ready.pop(self._worker_of[job.id], None)  # stopped: its replacement reports when loaded
        elapsed = time.time() - (job.started or job.created)
        self._durations.append(elapsed)
        self.metrics.job_seconds.labels(outcome="done" if error is None else error.kind).observe(elapsed)
        if error is not None:
            self.metrics.failure(error.kind)
        self._end(job, error)
        slot.release()
        loop_fut = self._waiters.pop(job.id, None)
        if loop_fut is not None and not loop_fut[0].is_closed():
            loop_fut[0].call_soon_threadsafe(_set_done, loop_fut[1])

    def _end(self, job: Job, error: JobError | None) -> None:
        """Mark ``job`` done (``error`` None) or failed / cancelled, store it, remove its upload (and outputs)."""
        with self._lock:
            job.finished = time.time()
            job.error = error
            job.status = job.stage = (
                "done" if error is None else ("cancelled" if error.kind == "cancelled" else "failed")
            )
            self._active.pop(job.id, None)
            self._futures.pop(job.id, None)
            self._worker_of.pop(job.id, None)
            if job.durable:
                self.store.put(job)
        (self.uploads_dir / job.upload).unlink(missing_ok=True)
        if error is not None:
            shutil.rmtree(self.jobs_dir / job.id, ignore_errors=True)

    async def wait(self, job: Job) -> None:
        """Until ``job`` has ended (a job submitted from this event loop)."""
        entry = self._waiters.get(job.id)
        if entry is not None and not job.ended:
            await entry[1]

    def get(self, job_id: str, owner: str) -> Job:
        """A ``/v1/jobs`` job of ``owner``. Raises ApiError 404 when unknown, removed, or another key's."""
        job = self._active.get(job_id)
        if job is None or not job.durable:
            job = self.store.get(job_id)
        if job is None or not job.durable or job.owner != owner:
            raise ApiError(404, "not_found", f"no job {job_id!r} (unknown, or its results were removed)")
        return job

    def owned(self, owner: str, *, limit: int, offset: int) -> tuple[list[Job], int]:
        """The owner's jobs, newest first (live progress for the ones not ended), and how many there are."""
        jobs, total = self.store.owned(owner, limit=limit, offset=offset)
        return [self._active.get(j.id, j) for j in jobs], total

    def cancel_or_remove(self, job_id: str, owner: str) -> Job | None:
        """Cancel a queued or running job (returned, ``cancelled``); remove an ended one with its files (None)."""
        job = self.get(job_id, owner)
        future = self._futures.get(job_id)
        worker = self._worker_of.get(job_id) if job.status == "running" else None
        if not job.ended and future is not None and future.cancel():
            if worker is not None:
                # the pool may still count the task as pending when the worker has begun it (its "start" event came
                # first): then it leaves the worker running, which never reports ready again. Stopping it makes the
                # pool start a replacement, which does.
                with contextlib.suppress(OSError):
                    os.kill(worker, signal.SIGKILL)
            return job  # the pool callback has run: the job is cancelled, its worker replaced if it was running
        if not job.ended:
            return job  # it ended meanwhile
        self.store.delete(job_id)
        shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)
        return None

    def evict(self) -> int:
        """Remove the jobs that ended more than ``keep_hours`` ago, with their files; how many."""
        gone = self.store.expired(time.time() - self.settings.keep_hours * 3600)
        for job_id in gone:
            self.store.delete(job_id)
            shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)
        return len(gone)


def _set_done(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
