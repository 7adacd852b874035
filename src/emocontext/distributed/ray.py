"""``extract`` and ``predict DIR`` over a Ray cluster: files mapped over actors that load the models once.

Design (how it scales past one machine):

* **Actors, one CPU each.** :class:`ExtractWorker` / :class:`PredictWorker` build the extractors or
  the :class:`~emocontext.inference.Predictor` once in their ``__init__`` (the detector, the face CNN,
  the context CNN: the seconds of start-up that a task per file would pay every time) and then take
  one file per call. The pool has one actor per CPU of the cluster (``workers=`` to choose), each
  with one torch thread, and every actor holds one file at a time.
  On a cluster of many machines (``ray start --head`` on one, ``ray start --address HEAD:6379`` on
  the others, then ``--ray HEAD:6379`` or ``--ray auto`` on the head) the pool spans every node:
  each node needs emocontext installed and the input files at the same path (a shared or
  network file system); the feature store and the output files are written by the driver only.
* **Same results.** A worker runs exactly the single-process code on one file
  (:func:`~emocontext.features.extract.entry_record`, :meth:`~emocontext.inference.Predictor.predict`),
  so records and predictions are the same; only the order in which files finish differs, and
  ``predict`` results are handed back in input order, so the output tables are the same files.
  Bit for bit, that holds between processes with the same number of torch threads (``--threads``;
  one per actor by default): oneDNN's convolutions split their sums by thread, so 1 and 2 threads
  give CNN features that differ by about 1e-6 (measured: at most 7.5e-6 on the context CNN), which
  moves a few float16 values of a store record by one step and, rarely, a probability's 4th decimal.
* **Failures.** A file whose decoding fails is an ordinary per-file error, as in one process. A
  worker process that dies (killed, out of memory, a crash in native code) is restarted by Ray
  (``max_restarts=-1``) and the file it held is run again on it (``max_task_retries``), up to
  ``retries`` more times; a file that kills its worker every time is then reported as failed and
  the others still run.
* **The store stays atomic and resumable.** Only the driver writes records, each with the store's
  atomic write, as results arrive. A run killed part-way keeps every finished record, and the next
  run (with ``--ray`` or without) skips them.

Deviation from the issue's ``--ray [ADDRESS]``: the address is required (``--ray local`` starts a
local cluster), because an option with an optional value would swallow the next file name of
``predict --ray videos/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..data.manifest import ClipEntry, Manifest, duplicate_clip_ids
from ..errors import ConfigError, EmoContextError, ManifestError
from ..features.extract import ExtractSummary, entry_record, write_failed_csv
from ..features.store import FeatureStore
from ..options import PredictOptions
from ..video.pipeline import StageTimes

__all__ = [
    "ExtractWorker",
    "PredictWorker",
    "cluster",
    "extract_with_ray",
    "predict_with_ray",
    "map_files",
]

log = logging.getLogger(__name__)

#: Files handed to one actor at a time. One: a file queued behind one that kills the worker would be
#: retried with it and could use up its retries; the driver's round trip between two files is milliseconds.
IN_FLIGHT = 1


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError('--ray needs Ray: pip install -e ".[ray]"') from None
    return ray


@contextmanager
def cluster(address: str = "local", *, num_cpus: int | None = None):
    """Connect to a Ray cluster for the duration of the block (and disconnect after).

    Args:
        address: ``"local"`` starts a cluster on this machine (listening on 127.0.0.1 only, no
            dashboard, workers at the driver's priority rather than Ray's niceness 15) that ends with
            the block; ``"auto"`` joins the cluster started on this machine
            by ``ray start``; ``"HOST:PORT"`` joins that cluster's head. When Ray is already
            initialised in this process (a test, a notebook), that connection is used as it is.
        num_cpus: CPUs of a local cluster (default: all of this machine's).

    Yields:
        the ``ray`` module.

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address == "local":
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                # Ray starts its workers at niceness 15: on a machine shared with other work they then get
                # what the rest leaves (minutes where one process takes seconds); 0 = the driver's share
                _system_config={"worker_niceness": 0},
                **quiet,
            )
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster ({str(e).splitlines()[0]})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _set_threads(threads: int) -> None:
    from .. import runtime

    runtime.set_threads(max(int(threads), 1))


class ExtractWorker:
    """A Ray actor's extractors, built once (``Extractors.build(**build)``); :meth:`run` makes one record.

    An :class:`~emocontext.errors.EmoContextError` while building (an unknown detector, missing
    weights) is kept and reported by :meth:`ready`, so the driver prints it as one line.
    """

    def __init__(self, build: dict, threads: int = 1):
        _set_threads(threads)
        from ..features.extract import Extractors

        self.error = None
        try:
            self.extractors = Extractors.build(**build)
        except EmoContextError as e:
            self.error = str(e)

    def ready(self) -> tuple[str | None, dict | None]:
        """``(error, signature)``: the build error (None when the extractors were built) and their signature."""
        return self.error, None if self.error else self.extractors.signature()

    def pid(self) -> int:
        return os.getpid()

    def run(self, entry: ClipEntry):
        """``(record, None, stage seconds)`` or ``(None, message, stage seconds)`` for one manifest entry."""
        times = StageTimes()
        try:
            return entry_record(entry, self.extractors, times), None, dict(times.seconds)
        except EmoContextError as e:
            return None, str(e), dict(times.seconds)


class PredictWorker:
    """A Ray actor's :class:`~emocontext.inference.Predictor`, built once (``Predictor(options)``)."""

    def __init__(self, options: PredictOptions, threads: int = 1):
        _set_threads(threads)
        from ..inference import Predictor

        self.error = None
        try:
            self.predictor = Predictor(options)
        except EmoContextError as e:
            self.error = str(e)

    def ready(self) -> tuple[str | None, None]:
        return self.error, None

    def pid(self) -> int:
        return os.getpid()

    def run(self, path: str):
        """``(prediction, None, stage seconds)`` or ``(None, message, stage seconds)`` for one file."""
        before = dict(self.predictor.times.seconds)
        try:
            pred, error = self.predictor.predict(path), None
        except EmoContextError as e:
            pred, error = None, str(e)
        after = self.predictor.times.seconds
        return pred, error, {k: v - before.get(k, 0.0) for k, v in after.items()}


def map_files(
    worker: type,
    init: object,
    items: Sequence,
    *,
    workers: int | None = None,
    threads: int = 1,
    retries: int = 2,
) -> tuple[object, Iterator[tuple[int, object, str | None, dict]]]:
    """Start a pool of ``worker`` actors and map ``worker.run`` over ``items`` (Ray must be initialised).

    Args:
        worker: an actor class with ``__init__(init, threads)``, ``ready()`` and ``run(item)``
            returning ``(result, error, stage seconds)`` (:class:`ExtractWorker`, :class:`PredictWorker`).
        init: its first constructor argument (picklable: options, not models).
        items: what ``run`` takes, one call each.
        workers: actors in the pool (default: the cluster's CPUs divided by ``threads``, at most one
            per item).
        threads: CPUs (and torch threads) of each actor.
        retries: times a file is given to the pool again after its worker process died.

    Returns:
        ``(ready, results)``: the first actor's ``ready()`` answer (its signature for
        :class:`ExtractWorker`), and an iterator of ``(index, result, error, stage seconds)`` in the
        order the files finish (every item exactly once).

    Raises:
        ConfigError: a worker could not build its models (the message is the worker's).
    """
    ray = _import_ray()
    from ray.exceptions import RayActorError

    if workers is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = max(cpus // max(threads, 1), 1)
    workers = max(min(workers, len(items)), 1)
    remote = ray.remote(num_cpus=threads, max_restarts=-1, max_task_retries=retries)(worker)
    actors = [remote.remote(init, threads) for _ in range(workers)]
    answers = ray.get([a.ready.remote() for a in actors])
    errors = [e for e, _ in answers if e]
    if errors:
        for a in actors:
            ray.kill(a)
        raise ConfigError(errors[0])

    def results() -> Iterator[tuple[int, object, str | None, dict]]:
        todo = list(range(len(items)))[::-1]  # a stack: pop() gives the next item in order
        pending: dict = {}  # ObjectRef -> (item index, actor)

        def submit(actor) -> None:
            if todo:
                i = todo.pop()
                pending[actor.run.remote(items[i])] = (i, actor)

        try:
            for actor in actors:
                for _ in range(IN_FLIGHT):
                    submit(actor)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                i, actor = pending.pop(done[0])
                try:
                    result, error, seconds = ray.get(done[0])
                except RayActorError as e:  # its worker died 1 + retries times (Ray restarted it and retried)
                    log.warning("%s: its worker died %d times (%s)", _name(items[i]), retries + 1, type(e).__name__)
                    result, error, seconds = None, f"{_name(items[i])}: its worker died {retries + 1} times", {}
                submit(actor)
                yield i, result, error, seconds
        finally:
            for actor in actors:
                ray.kill(actor)

    return answers[0][1], results()


def _name(item) -> str:
    return str(getattr(item, "path", item))


def extract_with_ray(
    manifest: Manifest,
    store: str | Path,
    build: dict,
    *,
    address: str = "local",
    workers: int | None = None,
    threads: int = 1,
    retries: int = 2,
    on_progress: Callable[[int, int], object] | None = None,
    worker: type = ExtractWorker,
) -> ExtractSummary:
    """:func:`emocontext.features.extract.extract` with the clips spread over Ray actors.

    Args:
        manifest: the clips.
        store: the feature store directory (created with the extractors' signature, or resumed).
        build: keyword arguments of :meth:`~emocontext.features.extract.Extractors.build` (names and
            values: every actor builds its own extractors from them).
        address: the Ray cluster (:func:`cluster`).
        workers: actors (default: one per ``threads`` CPUs of the cluster).
        threads: CPUs and torch threads of each actor (see the module docstring on identical results).
        retries: times a clip is retried after its worker process died.
        on_progress: called as ``on_progress(done, total)`` each time a clip is finished (in finishing order).
        worker: the actor class (a subclass of :class:`ExtractWorker`).

    Returns:
        An :class:`~emocontext.features.extract.ExtractSummary`; ``failed`` is in manifest order.
        ``times`` adds up the workers' stage seconds (CPU-seconds of all actors, not wall time).

    Raises:
        ManifestError: two entries have the same clip id.
        IncompatibleFeaturesError: the store was made by other extractors.
        ConfigError: Ray is missing, the cluster cannot be reached, or a worker cannot build its extractors.
    """
    dup = duplicate_clip_ids(manifest)
    if dup:
        raise ManifestError(
            f"{manifest.name}: {len(dup)} clips listed more than once, which would overwrite each other's "
            f"features: {'; '.join(dup[:10])}"
        )
    summary = ExtractSummary()
    root = Path(store)
    existing = FeatureStore(root) if (root / "store.json").exists() else None
    todo = [e for e in manifest if existing is None or e.clip_id not in existing]
    summary.skipped = len(manifest) - len(todo)
    if not todo:
        if existing is not None:
            summary.failed_csv = write_failed_csv(manifest, existing, [])
        return summary
    with cluster(address):
        signature, results = map_files(worker, build, todo, workers=workers, threads=threads, retries=retries)
        target = FeatureStore(root, signature)  # raises with the differences if the store was made otherwise
        failed = {}
        for n, (i, record, error, seconds) in enumerate(results, 1):
            entry = todo[i]
            for stage, s in seconds.items():
                summary.times.add(stage, s)
            if error is None:
                target.put(entry.clip_id, record)
                summary.done += 1
                if record.audio is not None and len(record.audio) == 0:
                    summary.no_audio.append(entry.path)
            else:
                failed[i] = (entry.path, error)
                target.log_failure(entry.clip_id, entry.path, error)
                log.warning("skipped %s", error)
            if on_progress is not None:
                on_progress(n, len(todo))
        summary.failed = [failed[i] for i in sorted(failed)]
        summary.failed_csv = write_failed_csv(manifest, target, summary.failed)
    return summary


def predict_with_ray(
    paths: Iterable[str | Path],
    options: PredictOptions,
    *,
    address: str = "local",
    workers: int | None = None,
    threads: int = 1,
    retries: int = 2,
    worker: type = PredictWorker,
    on_start: Callable[[], None] | None = None,
) -> Iterator[tuple[str, object, str | None]]:
    """:meth:`emocontext.inference.Predictor.predict_many` with the files spread over Ray actors.

    Args:
        paths: the files.
        options: the prediction options (every actor builds its own :class:`~emocontext.inference.Predictor`).
        address: the Ray cluster (:func:`cluster`).
        workers: actors (default: one per ``threads`` CPUs of the cluster).
        threads: CPUs and torch threads of each actor (see the module docstring on identical results).
        retries: times a file is retried after its worker process died.
        worker: the actor class (a subclass of :class:`PredictWorker`).
        on_start: called once the pool is ready (before the first result).

    Yields:
        ``(path, prediction, None)`` or ``(path, None, message)`` per file, **in input order**,
        as the single-process ``predict_many`` does.

    Raises:
        ConfigError: Ray is missing, the cluster cannot be reached, or a worker cannot build its predictor.
    """
    paths = [str(p) for p in paths]
    if not paths:
        return
    with cluster(address):
        _, results = map_files(worker, options, paths, workers=workers, threads=threads, retries=retries)
        if on_start:
            on_start()
        done: dict[int, tuple] = {}
        nxt = 0
        for i, pred, error, _ in results:
            done[i] = (paths[i], pred, error)
            while nxt in done:
                yield done.pop(nxt)
                nxt += 1
