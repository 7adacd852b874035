"""What runs inside a worker process: the models are loaded once, then one job at a time.

:func:`init_worker` is the pool's initializer: it loads a :class:`~emocontext.inference.Predictor` for the
server's default options and reports ``("ready", pid, info)`` on the event queue. A job's options
(:meth:`~emocontext.options.PredictOptions.to_dict` across the process boundary) are rebuilt here into the
frozen record, which keys a small cache of predictors: one per distinct value, never changed in place.
:func:`run_job` predicts one uploaded file and, for ``/v1/jobs``, writes the report, key frames, thumbnails
and annotated video into the job's folder (:mod:`.explain`). Progress goes to the event queue as ``("progress", job_id,
frames_done)`` (sampled frames whose faces were found) and ``("stage", job_id, name)``.

Expected failures (the file does not decode, an option the library refuses) come back as a
:class:`~.errors.JobError`; anything else raises and the job fails as ``internal``. The upload's
path in a message is replaced by the client's file name and any other path by ``<server path>``:
the server's folders never leak.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from ..errors import EmoContextError, VideoDecodeError
from ..options import PredictOptions
from .errors import JobError
from .options import job_options

__all__ = ["init_worker", "run_job"]

log = logging.getLogger(__name__)

_STATE: dict = {"events": None, "base": None, "predictors": {}}
#: seconds between two progress messages of one job
PROGRESS_EVERY = 0.2
#: predictors a worker keeps (the most recently used; the server's default one always)
MAX_PREDICTORS = 4


def _emit(*message) -> None:
    events = _STATE["events"]
    if events is not None:
        events.put(message)


def _predictor(options: PredictOptions):
    """The worker's predictor for ``options``, loaded on first use and kept: one per distinct value, a predictor
    is never changed in place. Beyond :data:`MAX_PREDICTORS` the least recently used one is dropped (never the
    server's default). A new predictor takes the face detector object of a kept one with the same detector
    (detectors hold no state between calls; one job runs at a time): no second load and cold start of the same
    model (the face CNN's weights are cached by the library already).

    Raises:
        EmoContextError: missing weights or detector files.
    """
    from ..inference import Predictor

    cache: dict = _STATE["predictors"]
    predictor = cache.pop(options, None)
    if predictor is None:
        same = next((p for o, p in cache.items() if o.detector == options.detector), None)
        predictor = Predictor(options, detector=None if same is None else same.detector)
    cache[options] = predictor  # the most recently used last
    spare = [o for o in cache if o != _STATE["base"]]
    for old in spare[: max(0, len(cache) - MAX_PREDICTORS)]:
        del cache[old]
    return predictor


def _warm_up(predictor) -> None:
    """One detection and one face-CNN pass on blank pixels: the first job does not pay for lazy initialisation."""
    import numpy as np

    predictor.detector.detect(np.zeros((240, 320, 3), np.uint8))
    size = predictor.config.face_size
    predictor.face(np.zeros((1, size, size, 3), np.uint8))


def init_worker(events, threads: int, options: dict) -> None:
    """Pool initializer: the networks' threads, the event queue, and the predictor of the server's default
    ``options`` (:meth:`~emocontext.options.PredictOptions.to_dict`) loaded."""
    from .. import runtime

    runtime.set_threads(threads)
    _STATE["events"] = events
    try:
        _STATE["base"] = base = job_options(options)
        p = _predictor(base)
        _warm_up(p)
    except EmoContextError as e:
        _emit("failed", os.getpid(), str(e))
        return
    _emit("ready", os.getpid(), {"model": base.model, "name": p.model_name, "labels": list(p.labels)})


def _failure(kind: str, e: Exception, path: Path, filename: str) -> dict:
    return {"error": JobError.of(kind, str(e).replace(str(path), filename))}


def _progress(job_id: str):
    state = {"done": 0, "sent": 0.0}

    def on_progress(done: int, total: int | None = None) -> None:
        state["done"] = done
        now = time.monotonic()
        if now - state["sent"] >= PROGRESS_EVERY:
            state["sent"] = now
            _emit("progress", job_id, state["done"])

    return on_progress, state


def run_job(spec: dict) -> dict:
    """Predict one uploaded file (in a worker process).

    Args:
        spec: ``id``, ``path`` (the upload), ``filename`` (the client's name), ``options``
            (:meth:`~emocontext.options.PredictOptions.to_dict`) and ``out_dir`` (None: JSON only).

    Returns:
        ``{"result": prediction JSON, "key_frames": [...], "persons": [...], "outputs": {...},
        "seconds": float}`` or ``{"error": JobError}``.
    """
    job_id, path, filename = spec["id"], Path(spec["path"]), spec["filename"]
    t0 = time.perf_counter()
    _emit("start", job_id, os.getpid())
    try:
        _emit("stage", job_id, "load")  # instant when this worker already holds the model
        predictor = _predictor(job_options(spec["options"]))
        _emit("stage", job_id, "detect")
    except EmoContextError as e:
        return _failure("bad_option", e, path, filename)
    on_progress, state = _progress(job_id)
    try:
        pred = predictor.predict(path, on_progress=on_progress)
    except VideoDecodeError as e:
        return _failure("decode", e, path, filename)
    except EmoContextError as e:
        return _failure("bad_option", e, path, filename)
    _emit("progress", job_id, state["done"])
    pred.path = filename
    out: dict = {"result": pred.to_dict(), "key_frames": [], "persons": [], "outputs": {}}
    if spec.get("out_dir") is not None:
        from .explain import write_job_outputs

        try:
            out.update(write_job_outputs(pred, path, Path(spec["out_dir"]), lambda s: _emit("stage", job_id, s)))
        except EmoContextError as e:
            return _failure("decode", e, path, filename)
    out["seconds"] = time.perf_counter() - t0
    return out
