"""Video file -> face and context streams, in one streaming pass.

decode (:mod:`.decode`) -> detect every sampled frame (:mod:`.faces`) -> crop
(:mod:`.streams`) -> link detections into tracks and choose the subject ->
:class:`~.streams.Streams`.

Memory stays bounded for long files: a full frame is dropped as soon as the
context crop and the crops of every detected face are taken; once the subject is
known the other faces' crops are discarded. The face-hidden context is made in
the context crop's own coordinates, which is the same as hiding the face in the
frame and then cropping (up to rounding).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import VideoDecodeError
from .decode import DEFAULT_FPS, iter_frames
from .faces import FaceDetector, select_subject, track_faces
from .streams import (
    CONTEXT_SIZE,
    FACE_SIZE,
    Streams,
    centre_square,
    context_crop,
    context_frame,
    face_crop,
    hide_face,
)

__all__ = ["StreamConfig", "StageTimes", "video_streams"]


@dataclass(frozen=True)
class StreamConfig:
    """How a video becomes streams (defaults: Sun et al., MEC 2017, section V-B/V-C).

    Attributes:
        fps: sampling rate in Hz.
        start: start offset in seconds.
        max_duration: seconds of video to read at most (None = all).
        face_size: side of the face crops in pixels.
        context_size: side of the context frames in pixels (their height with ``context_width``).
        context_width: None: the context stream is the centre square of the frame (Sun et al.);
            a width in pixels: the whole frame resized to ``context_size x context_width``
            (CAER-Net, section 5.1: 128 x 171).
        hide_face: black out the subject's face in the context stream (CAER-Net).
        face_margin: margin around the face box, fraction of its side.
    """

    fps: float = DEFAULT_FPS
    start: float = 0.0
    max_duration: float | None = None
    face_size: int = FACE_SIZE
    context_size: int = CONTEXT_SIZE
    hide_face: bool = False
    face_margin: float = 0.2
    context_width: int | None = None

    def signature(self) -> dict:
        """What changes the features (the start offset and duration are per-clip, not recorded)."""
        sig = {
            "fps": self.fps,
            "face_size": self.face_size,
            "context_size": self.context_size,
            "hide_face": self.hide_face,
            "face_margin": self.face_margin,
        }
        if self.context_width is not None:  # absent for the centre square, so older stores still match
            sig["context_width"] = self.context_width
        return sig

    def context(self, image: np.ndarray) -> np.ndarray:
        """The context stream's frame of ``image`` (RGB uint8 ``(H, W, 3)``), face not hidden."""
        if self.context_width is None:
            return context_crop(image, size=self.context_size)
        return context_frame(image, size=(self.context_size, self.context_width))

    def context_region(self, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """xyxy pixels of a frame of size ``(H, W)`` that the context stream sees."""
        if self.context_width is None:
            x0, y0, s = centre_square(frame_hw)
            return x0, y0, x0 + s, y0 + s
        h, w = frame_hw
        return 0, 0, w, h

    def to_context_coords(self, box, frame_hw: tuple[int, int]) -> np.ndarray:
        """xyxy ``box`` in pixels of a frame of size ``frame_hw`` -> pixels of its context frame."""
        x0, y0, x1, y1 = self.context_region(frame_hw)
        sx, sy = (self.context_width or self.context_size) / (x1 - x0), self.context_size / (y1 - y0)
        return (np.asarray(box, np.float64) - [x0, y0, x0, y0]) * [sx, sy, sx, sy]


@dataclass
class StageTimes:
    """Wall time in seconds spent in each stage (for benchmarks)."""

    seconds: dict = field(default_factory=lambda: defaultdict(float))

    def add(self, stage: str, dt: float) -> None:
        self.seconds[stage] += dt


def video_streams(
    path: str | Path,
    detector: FaceDetector,
    config: StreamConfig = StreamConfig(),
    *,
    times: StageTimes | None = None,
    with_context: bool = True,
) -> Streams:
    """Decode ``path``, find the subject's face in every sampled frame and build both streams.

    ``with_context=False`` skips the context stream (``Streams.context`` is then an empty
    ``(T, 0, 0, 3)`` array), which a face-only model does not need: memory then grows by the
    face crops only (~48 KB a sampled frame at 128 px), so hour-long files fit.

    Returns:
        :class:`~.streams.Streams` with ``T`` sampled frames. Frames where the
        subject has no face keep their context frame and have
        ``face_present == False`` (they are masked downstream, never dropped).

    Raises:
        VideoDecodeError: unreadable file, no video stream, no frame.
    """
    times = times or StageTimes()
    dets_per_frame, crops_per_frame, contexts, stamps = [], [], [], []
    frame_hw = None
    status: dict = {}
    t = time.perf_counter()
    frames = iter_frames(path, fps=config.fps, start=config.start, max_duration=config.max_duration, status=status)
    for frame in frames:
        t1 = time.perf_counter()
        times.add("decode", t1 - t)
        img = frame.image
        frame_hw = img.shape[:2]
        dets = detector.detect(img)
        t2 = time.perf_counter()
        times.add("detect", t2 - t1)
        crops_per_frame.append([face_crop(img, d.box, size=config.face_size, margin=config.face_margin) for d in dets])
        if with_context:
            contexts.append(config.context(img))
        dets_per_frame.append(dets)
        stamps.append(frame.timestamp)
        t = time.perf_counter()
        times.add("crop", t - t2)
    if not stamps:
        raise VideoDecodeError(f"{path}: no frames")
    t0 = time.perf_counter()
    n = len(stamps)
    track = select_subject(track_faces(dets_per_frame), n)
    faces = np.zeros((n, config.face_size, config.face_size, 3), np.uint8)
    for i in np.flatnonzero(track.present):
        # the subject's detection in frame i is the one whose box the track holds
        boxes = np.array([d.box for d in dets_per_frame[i]], np.float64)
        j = int(np.argmin(np.abs(boxes - track.boxes[i]).sum(1)))
        faces[i] = crops_per_frame[i][j]
        if config.hide_face and with_context:
            contexts[i] = hide_face(contexts[i], config.to_context_coords(track.boxes[i], frame_hw))
    times.add("track", time.perf_counter() - t0)
    return Streams(
        face=faces,
        context=np.stack(contexts) if with_context else np.zeros((n, 0, 0, 3), np.uint8),
        face_present=np.asarray(track.present, bool),
        boxes=np.asarray(track.boxes, np.float32),
        timestamps=np.asarray(stamps, np.float64),
        frame_size=tuple(frame_hw),
        truncated=status.get("truncated", False),
    )
