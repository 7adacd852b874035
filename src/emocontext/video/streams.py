"""Face and context streams from frames and the subject's face track.

Sun et al., MEC 2017, section V-B: the **face stream** holds each detected face,
cropped and scaled to 128x128; the **context stream** holds the original frame,
centre-cropped and scaled to 224x224. Lee et al., ICCV 2019, section 3.2: the
context stream of CAER-Net sees **face-hidden** frames, so that it has to look
for emotion cues elsewhere; :func:`context_crop` does this with ``hide=box``.

Deviation: the papers crop the detected box and do not say with how much margin. A face whose
detector gives five landmarks (MTCNN, YuNet) is **aligned** instead (:mod:`.align`): mapped by a
similarity transform onto where those landmarks sit on the face CNN's training faces, so that it is
framed as the network learned. A face with a box only (Haar, dlib, a dataset's box) is cropped as a
square around the box enlarged by ``margin`` on each side (default :data:`.align.BOX_MARGIN`, the same
training framing measured on the box). Parts of the crop outside the frame replicate the border.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from .align import BOX_MARGIN, aligned_face

__all__ = [
    "FACE_SIZE",
    "CONTEXT_SIZE",
    "PersonStream",
    "Streams",
    "square_box",
    "face_crop",
    "context_crop",
    "context_frame",
    "hide_face",
]

FACE_SIZE = 128
CONTEXT_SIZE = 224


@dataclass
class PersonStream:
    """One person's face over the ``T`` sampled frames of a clip (a face track).

    Attributes:
        person_id: 1, 2, ... in order of first appearance, then from left to right; stable across frames.
        face: uint8 ``(T, S, S, 3)`` face crops (zeros where absent; the frames themselves with ``--detector none``).
        face_present: bool ``(T,)``.
        boxes: float32 ``(T, 4)`` xyxy pixels of the original frame (zeros where absent).
        scores: float32 ``(T,)`` detector scores (0 where absent).
    """

    person_id: int
    face: np.ndarray
    face_present: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    @property
    def frames_with_face(self) -> int:
        return int(self.face_present.sum())


@dataclass
class Streams:
    """The two streams of a clip, one entry per sampled frame.

    Attributes:
        face: uint8 ``(T, S, S, 3)`` face crops (zeros where no face).
        context: uint8 ``(T, C, C, 3)`` context frames (face hidden if asked).
        face_present: bool ``(T,)``, True where the subject's face was found.
        boxes: float32 ``(T, 4)`` xyxy face boxes in pixels of the original frame (zeros where none).
        timestamps: float64 ``(T,)`` seconds.
        frame_size: ``(H, W)`` of the original frames.
        truncated: decoding broke off part-way (the frames before the break are here).
        persons: every person's face stream (:func:`~emocontext.video.pipeline.video_streams` with
            ``persons=True``), else the subject's only; empty without any face.
        subject_id: ``person_id`` of the subject (whose arrays ``face``, ``face_present``, ``boxes`` are), or None.
        visible_context: uint8 ``(T, C, C, 3)`` context frames with no face hidden (kept when the
            config hides faces, for :meth:`for_person`), else None.
        context_config: the :class:`~emocontext.video.pipeline.StreamConfig` that made the streams.
    """

    face: np.ndarray
    context: np.ndarray
    face_present: np.ndarray
    boxes: np.ndarray
    timestamps: np.ndarray
    frame_size: tuple[int, int]
    truncated: bool = False
    persons: list[PersonStream] = field(default_factory=list)
    subject_id: int | None = None
    visible_context: np.ndarray | None = None
    context_config: Any = None

    def __len__(self) -> int:
        return len(self.timestamps)

    def for_person(self, person_id: int) -> Streams:
        """These streams as seen for one person: their face stream, and (with a face-hiding config) the shared
        context with **their own** face hidden.

        Raises:
            KeyError: no person with that id.
        """
        person = next((p for p in self.persons if p.person_id == person_id), None)
        if person is None:
            raise KeyError(f"no person {person_id} (persons: {[p.person_id for p in self.persons]})")
        context = self.context  # with hide_all_faces it already hides everyone's face
        if self.visible_context is not None and self.context_config is not None:
            cfg = self.context_config
            context = np.stack(
                [
                    hide_face(c, cfg.to_context_coords(person.boxes[i], self.frame_size))
                    if person.face_present[i]
                    else c
                    for i, c in enumerate(self.visible_context)
                ]
            )
        return replace(self, face=person.face, face_present=person.face_present, boxes=person.boxes, context=context)


def square_box(box, margin: float = 0.1) -> tuple[int, int, int, int]:
    """Square integer box centred on ``box`` (xyxy px) with side ``max(w, h) * (1 + 2 * margin)``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    half = max(side / 2, 1.0)
    return (int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half)))


def _crop_padded(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box
    pad = (max(0, -y1), max(0, y2 - h), max(0, -x1), max(0, x2 - w))
    crop = frame[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)]
    if any(pad) and crop.size:
        crop = cv2.copyMakeBorder(crop, *pad, cv2.BORDER_REPLICATE)
    return crop


def face_crop(
    frame: np.ndarray, box, *, size: int = FACE_SIZE, margin: float = BOX_MARGIN, landmarks: np.ndarray | None = None
) -> np.ndarray:
    """The face of ``frame`` as the face CNN reads it: uint8 ``(size, size, 3)``.

    With ``landmarks`` the face is aligned (:func:`.align.aligned_face`); without them (or for
    degenerate ones) it is the square around ``box`` enlarged by ``margin`` of its side on each side.

    Args:
        frame: RGB uint8 ``(H, W, 3)``.
        box: xyxy face box in pixels of ``frame``.
        landmarks: ``(5, 2)`` float pixels of ``frame`` (:class:`~.faces.base.Detection` order), or None.
    """
    if landmarks is not None:
        aligned = aligned_face(frame, landmarks, size=size)
        if aligned is not None:
            return aligned
    crop = _crop_padded(frame, square_box(box, margin))
    if crop.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


def hide_face(frame: np.ndarray, box, *, margin: float = 0.1) -> np.ndarray:
    """Copy of ``frame`` with the face box (enlarged by ``margin``) filled with black (CAER-Net's face-hidden input)."""
    out = frame.copy()
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    xa, ya = max(0, int(x1 - dx)), max(0, int(y1 - dy))
    xb, yb = min(w, int(np.ceil(x2 + dx))), min(h, int(np.ceil(y2 + dy)))
    out[ya:yb, xa:xb] = 0
    return out


def centre_square(frame_hw: tuple[int, int]) -> tuple[int, int, int]:
    """``(x0, y0, side)`` in pixels of the centre square of a frame of size ``(H, W)``: what the context stream sees."""
    h, w = frame_hw
    s = min(h, w)
    return (w - s) // 2, (h - s) // 2, s


def context_crop(frame: np.ndarray, *, size: int = CONTEXT_SIZE, hide=None) -> np.ndarray:
    """Centre square crop of the whole frame resized to ``(size, size, 3)`` uint8.

    Args:
        frame: RGB uint8 ``(H, W, 3)``.
        hide: optional xyxy face box to black out first (face-hidden context).
    """
    if hide is not None:
        frame = hide_face(frame, hide)
    x0, y0, s = centre_square(frame.shape[:2])
    crop = frame[y0 : y0 + s, x0 : x0 + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


def context_frame(frame: np.ndarray, *, size: tuple[int, int] = (128, 171), hide=None) -> np.ndarray:
    """The whole frame resized to ``size`` = ``(height, width)`` px, uint8 ``(height, width, 3)``.

    CAER-Net's context input (Lee et al., ICCV 2019, section 5.1: frames "resized to 128x171", then
    cropped to 112x112 by the training transform). The aspect ratio is not kept, as in the paper.

    Args:
        frame: RGB uint8 ``(H, W, 3)``.
        hide: optional xyxy face box to black out first (face-hidden context).
    """
    if hide is not None:
        frame = hide_face(frame, hide)
    h, w = size
    interp = cv2.INTER_AREA if frame.shape[0] > h else cv2.INTER_LINEAR
    return cv2.resize(frame, (w, h), interpolation=interp)
