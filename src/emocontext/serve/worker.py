"""What runs inside a worker process: the models are loaded once, then one job at a time.

:func:`init_worker` is the pool's initializer: it loads a :class:`~emocontext.inference.Predictor`
and reports ``("ready", pid, info)`` on the event queue. :func:`run_job` predicts one uploaded
file and, for ``/v1/jobs``, writes the HTML report, the annotated video and the key-frame
pictures into the job's folder. Progress goes to the event queue as ``("progress", job_id,
frames_done)`` (sampled frames whose faces were found) and ``("stage", job_id, name)``.

Expected failures (the file does not decode, an option the library refuses) come back as
``{"error": {"kind", "detail"}}``; anything else raises and the job fails as ``internal``. File
paths in messages are replaced by the client's file name: the server's folders never leak.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from ..errors import EmoContextError, VideoDecodeError

__all__ = ["init_worker", "run_job"]

log = logging.getLogger(__name__)

_STATE: dict = {"events": None, "predictors": {}}
#: seconds between two progress messages of one job
PROGRESS_EVERY = 0.2


def _emit(*message) -> None:
    events = _STATE["events"]
    if events is not None:
        events.put(message)


def _predictor(model: str | None, detector: str, person: str | None = None):
    """The worker's predictor for ``(model, detector, person)``, loaded on first use and kept."""
    from ..inference import Predictor
    from ..options import default_model

    key = (model or default_model(), detector, person or "all")
    if key not in _STATE["predictors"]:
        _STATE["predictors"][key] = Predictor(model=key[0], detector=detector, person=key[2])
    return _STATE["predictors"][key]


def _warm_up(predictor) -> None:
    """One detection and one face-CNN pass on blank pixels: the first job does not pay for lazy initialisation."""
    import numpy as np

    predictor.detector.detect(np.zeros((240, 320, 3), np.uint8))
    size = predictor.config.face_size
    predictor.face(np.zeros((1, size, size, 3), np.uint8))


def init_worker(events, threads: int, model: str | None, detector: str) -> None:
    """Pool initializer: torch threads, the event queue, and the default predictor loaded."""
    import torch

    from ..options import default_model

    torch.set_num_threads(threads)
    _STATE["events"] = events
    try:
        p = _predictor(model, detector)
        _warm_up(p)
    except EmoContextError as e:
        _emit("failed", os.getpid(), str(e))
        return
    _emit("ready", os.getpid(), {"model": model or default_model(), "name": p.model_name, "labels": list(p.labels)})


def _scrub(message: str, path: Path, filename: str) -> str:
    return message.replace(str(path), filename)


def _explain(job_id: str, pred, path: Path, out_dir: Path, key_frames: int) -> dict:
    """Report, key-frame pictures and annotated video of one prediction in ``out_dir``."""
    import cv2

    from ..report import write_annotated_video, write_html_report
    from ..report.html import key_frame_images

    _emit("stage", job_id, "report")
    write_html_report(pred, out_dir / "report.html", video_path=path, key_frames=key_frames, show_video_path=False)
    frames = []
    for n, (i, image) in enumerate(key_frame_images(pred, video_path=path, k=key_frames)):
        name = f"keyframe-{n}.png"
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if ok:
            (out_dir / name).write_bytes(png.tobytes())
            f = pred.frames[i]
            frames.append({"index": i, "timestamp": f.timestamp, "file": name})
    _emit("stage", job_id, "annotate")
    write_annotated_video(pred, out_dir / "annotated.mp4", video_path=path)
    return {"key_frames": frames, "outputs": ["report", "annotated"]}


def run_job(spec: dict) -> dict:
    """Predict one uploaded file (in a worker process).

    Args:
        spec: ``id``, ``path`` (the upload), ``filename`` (the client's name), ``options``
            (``model``, ``detector``, ``fps``, ``max_duration``, ``person``), ``out_dir`` (None: JSON
            only) and ``key_frames``.

    Returns:
        ``{"result": prediction JSON, "key_frames": [...], "outputs": [...], "seconds": float}`` or
        ``{"error": {"kind": ..., "detail": ...}}``.
    """
    job_id, path, filename = spec["id"], Path(spec["path"]), spec["filename"]
    opts = spec["options"]
    t0 = time.perf_counter()
    _emit("start", job_id, os.getpid())
    try:
        _emit("stage", job_id, "load")  # instant when this worker already holds the model
        predictor = _predictor(opts.get("model"), opts.get("detector", "mtcnn"), opts.get("person"))
        _emit("stage", job_id, "detect")
    except EmoContextError as e:
        return {"error": {"kind": "bad_option", "detail": str(e)}}
    # the sampling options change no model: set them on the loaded predictor
    predictor.config = dataclasses.replace(
        predictor.config, fps=float(opts.get("fps", 5.0)), max_duration=opts.get("max_duration")
    )
    state = {"done": 0, "sent": 0.0}

    def on_progress(done: int, total: int | None) -> None:
        state["done"] = done
        now = time.monotonic()
        if now - state["sent"] >= PROGRESS_EVERY:
            state["sent"] = now
            _emit("progress", job_id, state["done"])

    try:
        pred = predictor.predict(path, on_progress=on_progress)
    except VideoDecodeError as e:
        return {"error": {"kind": "decode", "detail": _scrub(str(e), path, filename)}}
    except EmoContextError as e:
        return {"error": {"kind": "bad_option", "detail": _scrub(str(e), path, filename)}}
    _emit("progress", job_id, state["done"])
    pred.path = filename
    out: dict = {"result": pred.to_dict(), "key_frames": [], "outputs": []}
    out_dir = spec.get("out_dir")
    if out_dir is not None:
        try:
            out.update(_explain(job_id, pred, path, Path(out_dir), int(spec.get("key_frames", 4))))
        except EmoContextError as e:
            return {"error": {"kind": "decode", "detail": _scrub(str(e), path, filename)}}
    out["seconds"] = time.perf_counter() - t0
    return out
