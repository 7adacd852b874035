"""Helpers shared by the HTML report and the annotated video: frame look-up and grabbing, box scaling, top emotion."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import VideoDecodeError
from ..video.decode import DEFAULT_FPS, Frame, iter_frames

if TYPE_CHECKING:
    from ..inference import FramePrediction, Prediction


def source_path(prediction: Prediction, video_path: str | Path | None) -> Path:
    """The file to read frames from: ``video_path`` if given, else ``prediction.path``."""
    return Path(video_path if video_path is not None else prediction.path)


def top_emotion(probabilities: dict[str, float] | None) -> tuple[str, float] | None:
    """``(name, probability)`` of the most probable emotion, or None without probabilities."""
    if not probabilities:
        return None
    name = max(probabilities, key=lambda k: probabilities[k])
    return name, float(probabilities[name])


def scale_box(box: Sequence[float] | None, prediction: Prediction, shape: tuple[int, ...]) -> list[float] | None:
    """Map an xyxy box from the prediction's frame size to a frame of ``shape`` ``(H, W, ...)``.

    The boxes of a :class:`Prediction` are in pixels of the frames it was computed on
    (``frame_wh``); when the frames are re-read from another rendition of the video (other
    resolution) the box is scaled. Unknown ``frame_wh`` = same size.
    """
    if box is None:
        return None
    h, w = shape[:2]
    if not prediction.frame_wh:
        return [float(v) for v in box]
    pw, ph = prediction.frame_wh
    sx, sy = w / pw if pw else 1.0, h / ph if ph else 1.0
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1 * sx, y1 * sy, x2 * sx, y2 * sy]


class NearestFrame:
    """Nearest :class:`FramePrediction` by timestamp (seconds), with a limit beyond the analysed range.

    ``frames``: another list than ``prediction.frames`` (a person's, :attr:`PersonPrediction.frames`).
    """

    def __init__(self, prediction: Prediction, frames: Sequence[FramePrediction] | None = None):
        frames = prediction.frames if frames is None else frames
        order = sorted(range(len(frames)), key=lambda i: frames[i].timestamp)
        self.frames = [frames[i] for i in order]
        self.times = [f.timestamp for f in self.frames]
        step = 1.0 / prediction.fps if prediction.fps and prediction.fps > 0 else 0.2
        #: a time further than this from every sampled frame has no prediction
        self.reach = step * 1.01

    def __call__(self, t: float) -> FramePrediction | None:
        if not self.times:
            return None
        j = bisect.bisect_left(self.times, t)
        cands = [i for i in (j - 1, j) if 0 <= i < len(self.times)]
        i = min(cands, key=lambda i: abs(self.times[i] - t))
        if abs(self.times[i] - t) > self.reach:
            return None
        return self.frames[i]


class FrameGrab:
    """For each of ``timestamps``, the sampled frame nearest to it among the frames offered (in time order).

    Fed by :func:`grab_frames` (its own decoding) or by another pass over the file (the annotated
    video's, :func:`emocontext.report.explain`), so that a file is decoded once for everything.
    """

    def __init__(self, timestamps: Sequence[float]):
        self.timestamps = list(timestamps)
        self.best: list[tuple[float, np.ndarray] | None] = [None] * len(self.timestamps)
        self.last = max(self.timestamps, default=-1.0)
        self.seen = False
        self.done = False

    def offer(self, frame: Frame) -> bool:
        """Keep ``frame`` where it is nearer than what was kept; True once no later frame can be nearer."""
        self.seen = True
        if self.done or (frame.timestamp > self.last and all(b is not None for b in self.best)):
            self.done = True  # later frames are only further away
            return True
        for k, t in enumerate(self.timestamps):
            d = abs(frame.timestamp - t)
            if self.best[k] is None or d < self.best[k][0]:
                self.best[k] = (d, frame.image)
        return False

    def images(self, path: str | Path) -> list[np.ndarray]:
        """The frame kept for each timestamp, in their order.

        Raises:
            VideoDecodeError: no frame was offered (``path`` names the file in the message).
        """
        if not self.seen:
            raise VideoDecodeError(f"{path}: no frame could be read")
        return [b[1] for b in self.best]  # type: ignore[index]


def grab_frames(path: Path, fps: float, timestamps: Sequence[float]) -> list[np.ndarray]:
    """Decode ``path`` sampled at ``fps`` and return, for each timestamp, the nearest sampled frame (RGB uint8).

    Streams through the file, keeping only the current best frame per timestamp, and stops once
    past the last timestamp (an empty ``timestamps`` only checks that one frame decodes).

    Raises:
        VideoDecodeError: the file cannot be read (missing, empty, corrupt, no video stream).
    """
    grab = FrameGrab(timestamps)
    for frame in iter_frames(path, fps=fps if fps and fps > 0 else DEFAULT_FPS, status={}):
        if grab.offer(frame):
            break
    return grab.images(path)
