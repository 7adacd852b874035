"""What every face detector is: :class:`Detection`, the :class:`FaceDetector` protocol, and one base class.

:class:`BaseFaceDetector` holds the routine every backend shares (the pattern of PyTorchVideo's one
decoder class per backend): check the frame, downscale it so that its long side is at most
``max_side``, let the backend find faces (:meth:`BaseFaceDetector._find`), scale the boxes and
landmarks back to the frame, clip them to it, drop boxes under one pixel, and sort. A backend only
writes ``_find``.

:class:`GivenBoxDetector` and :class:`WholeFrameDetector` are not detectors: they give a known box
(a dataset's annotation, or the whole frame for pre-cropped faces).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ...errors import ConfigError

__all__ = [
    "Detection",
    "FaceDetector",
    "BaseFaceDetector",
    "GivenBoxDetector",
    "WholeFrameDetector",
    "check_frame",
    "downscale",
    "clip_box",
]


@dataclass(frozen=True, eq=False)
class Detection:
    """One face found in one frame.

    Attributes:
        box: ``(x1, y1, x2, y2)`` float pixels of the frame the face was found in (``x2 > x1``, ``y2 > y1``).
        score: the backend's confidence, higher is surer. A probability in ``[0, 1]`` for MTCNN (O-Net face
            probability) and YuNet; ``1.0`` for Haar (the cascade gives none); the SVM margin for dlib HOG.
        landmarks: ``(5, 2)`` float32 ``(x, y)`` pixels, or None when the backend gives none (Haar, dlib).
            Order: eye on the image left, eye on the image right, nose tip, mouth corner on the image left,
            mouth corner on the image right.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        box = tuple(float(v) for v in self.box)
        if len(box) != 4:
            raise ConfigError(f"a box has 4 numbers (x1, y1, x2, y2), got {len(box)}")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "score", float(self.score))
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)
            lm.flags.writeable = False
            object.__setattr__(self, "landmarks", lm)

    @property
    def width(self) -> float:
        return max(0.0, self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return max(0.0, self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.box[0] + self.box[2]), 0.5 * (self.box[1] + self.box[3]))

    def scaled(self, factor: float) -> Detection:
        """The same detection in a frame resized by ``factor`` (box and landmarks multiplied by it)."""
        lm = None if self.landmarks is None else self.landmarks * factor
        return Detection(tuple(v * factor for v in self.box), self.score, lm)


@runtime_checkable
class FaceDetector(Protocol):
    """What every face detector offers.

    Attributes:
        name: the registry name (``"mtcnn"``, ``"yunet"``, ...).

    Two optional class attributes (read with ``getattr``, False when absent) tell the pipeline how to use it:
    ``fixed_box`` -- it returns a known box rather than searching the frame (:class:`GivenBoxDetector`,
    :class:`WholeFrameDetector`), so key-frame detection has nothing to save; ``whole_frame`` -- the frame
    IS the face (:class:`WholeFrameDetector`): no crop margin, no resize.
    """

    name: str

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one RGB ``uint8`` frame ``(H, W, 3)``, most confident first; an empty list when none.

        Raises:
            ConfigError: the frame is not an ``(H, W, 3)`` uint8 array.
        """
        ...


def check_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` itself if it is a non-empty RGB ``uint8`` array ``(H, W, 3)``.

    Raises:
        ConfigError: anything else (the message gives its type or dtype and shape).
    """
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ConfigError(f"a frame must be an RGB uint8 array of shape (H, W, 3), got {desc}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ConfigError(f"a frame must not be empty, got shape {frame.shape}")
    return frame


def downscale(frame: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink ``frame`` so that its long side is at most ``max_side``; returns it and the factor applied (<= 1)."""
    h, w = frame.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return frame, 1.0
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), s


def clip_box(box: Sequence[float], w: int, h: int) -> tuple[float, float, float, float]:
    """An ``xyxy`` box clipped to a ``w`` x ``h`` frame, as floats."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))


#: What :meth:`BaseFaceDetector._find` yields per face, in pixels of the (downscaled) detection image:
#: ``(box xyxy, score, (5, 2) landmarks or None)``.
Candidate = tuple[Sequence[float] | np.ndarray, float, np.ndarray | None]


class BaseFaceDetector:
    """The detect routine every backend shares; a backend implements :meth:`_find` only.

    Attributes:
        name: the registry name.
        max_side: frames whose long side exceeds this are downscaled to it for detection (boxes are scaled
            back); None to always detect at full resolution.
        order: ``"score"`` (most confident first) or ``"area"`` (largest first, for backends without a
            confidence).
        thread_safe: whether ``_find`` may run in several threads at once on one instance (True for the
            PyTorch MTCNN); otherwise calls are serialised by a lock (OpenCV's YuNet object keeps its
            input size between calls).
    """

    name: str = ""
    max_side: int | None = 640
    order: str = "score"
    thread_safe: bool = False

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one RGB ``uint8`` frame ``(H, W, 3)``, in the backend's :attr:`order`.

        Boxes (clipped to the frame) and landmarks are float pixels of ``frame``; boxes narrower or lower
        than one pixel after clipping are dropped.

        Raises:
            ConfigError: ``frame`` is not an ``(H, W, 3)`` uint8 array.
        """
        frame = check_frame(frame)
        H, W = frame.shape[:2]
        small, s = downscale(frame, self.max_side)
        if self.thread_safe:
            found = list(self._find(small))
        else:  # one frame at a time through the backend's object (files analysed in parallel threads)
            with self.__dict__.setdefault("_find_lock", threading.Lock()):
                found = list(self._find(small))
        out = []
        for box, score, landmarks in found:
            box = clip_box(np.asarray(box) / s, W, H)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            out.append(Detection(box, float(score), None if landmarks is None else landmarks / s))
        out.sort(key=(lambda d: -d.area) if self.order == "area" else (lambda d: -d.score))
        return out

    def _find(self, image: np.ndarray) -> Iterable[Candidate]:
        """Faces in ``image`` (RGB uint8, already downscaled), in its pixels."""
        raise NotImplementedError


class GivenBoxDetector:
    """Not a detector: returns a box the dataset gives (ExpW, CAER-S annotations) for every frame.

    With ``landmarks_from`` the box keeps the dataset's position but gains the five landmarks of the face
    that detector finds near it (searched in a window of 1.6x the box, :func:`.keyframes.detect_near`; the
    detection overlapping the box most, IoU >= 0.3), so that the face is aligned as at prediction
    (:mod:`emocontext.video.align`). Where none is found the box comes without landmarks (box crop).

    Args:
        box: ``(x1, y1, x2, y2)`` in pixels of the frames it will see.
        score: reported detection score.
        landmarks_from: a detector that gives landmarks (MTCNN, YuNet), or None.
    """

    name = "given_box"
    fixed_box = True

    def __init__(self, box: Sequence[float], score: float = 1.0, *, landmarks_from: FaceDetector | None = None):
        self.box = tuple(float(v) for v in box)
        self.score = float(score)
        self.landmarks_from = landmarks_from

    def detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = check_frame(frame).shape[:2]
        given = Detection(clip_box(self.box, w, h), self.score)
        if self.landmarks_from is None:
            return [given]
        from .boxes import box_iou  # same package; imported here so that base stays the package's root
        from .keyframes import detect_near

        near = detect_near(self.landmarks_from, frame, [given], window=1.6, face_px=96.0)
        found = [d for d in near if d.landmarks is not None]
        if found:
            iou = box_iou(np.array([given.box]), np.array([d.box for d in found]))[0]
            if iou.max() >= 0.3:
                return [Detection(given.box, self.score, found[int(iou.argmax())].landmarks)]
        return [given]


class WholeFrameDetector:
    """Not a detector (``--detector none``): every frame IS the face, as in pre-cropped or aligned face datasets.

    Returns the whole frame as the box. :func:`~emocontext.video.pipeline.video_streams` then feeds the
    frame to the face CNN as it is, with no margin and no resize to the usual crop size, so a folder of
    FER2013 images gets exactly what the face CNN's own evaluation reads (deepface calls this
    ``detector_backend="skip"``).
    """

    name = "none"
    fixed_box = True
    whole_frame = True

    def detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = check_frame(frame).shape[:2]
        return [Detection((0.0, 0.0, float(w), float(h)), 1.0)]
