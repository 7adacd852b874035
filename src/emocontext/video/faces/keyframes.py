"""Detect faces on key frames only, and look for them near their last box in the frames between.

Face detection is ~70 % of the time of ``predict`` (``benchmarks/scale_speed.md``), and most of a
detector's work is scanning the whole frame at every scale for faces that, in a video, were already
found one sampled frame earlier. :class:`KeyframeDetection` runs the full detector on every
``every``-th sampled frame (a *key frame*); in a frame between two key frames it runs the same
detector on a small window around each face of the previous frame only (:func:`detect_near`),
resized so that the face is about ``face_px`` pixels wide. When a face is not found again near
its last place, the whole frame is searched at once (so a face that moves fast or turns away costs
a full detection, never a silent loss), and so is every frame while it stays out of sight, for
:data:`LOST_FRAMES` frames in all (so it is found as soon as it comes back); a face that *enters* the
picture between key frames is found at the next key frame, up to ``every - 1`` sampled frames late.
Frames without any face between key frames are not searched.

This is the classic detect-then-track scheme of real-time face pipelines, with the detector itself
as the tracker (no second model, same boxes and landmarks format). Recall cost and speed are
measured in ``benchmarks/keyframe_detection.md``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...errors import ConfigError
from .base import Detection, FaceDetector, check_frame, clip_box
from .boxes import nms

__all__ = ["detect_near", "KeyframeDetection", "LOST_FRAMES", "check_detect_every"]

#: sampled frames (the first included) in which the whole frame is searched after a face went out of sight
#: (the tracker of :func:`~.tracking.track_faces` bridges gaps of up to 3 missed frames: a face away longer
#: is a new track)
LOST_FRAMES = 4


def check_detect_every(every) -> int:
    """``every`` as an int if it is a whole number >= 1 (key frames every ``every`` sampled frames).

    Raises:
        ConfigError: anything else.
    """
    if int(every) != every or every < 1:
        raise ConfigError(f"detect_every must be a whole number >= 1, got {every}")
    return int(every)


def detect_near(
    detector: FaceDetector,
    frame: np.ndarray,
    previous: list[Detection],
    *,
    window: float = 1.6,
    face_px: float = 48.0,
) -> list[Detection]:
    """Faces of ``frame`` found in a window around each box of ``previous`` (the faces of an earlier frame).

    Each window is a square of side ``window x`` the previous box's longer side, on the same centre,
    clipped to the frame; it is shrunk (never enlarged) so that the previous face spans ``face_px``
    pixels, and handed to ``detector.detect``. Boxes are mapped back to ``frame`` pixels; faces found
    in two overlapping windows are merged by non-maximum suppression (IoU 0.5, higher score kept).

    Args:
        detector: any :class:`~.base.FaceDetector`.
        frame: RGB ``uint8`` ``(H, W, 3)``.
        previous: detections of an earlier frame of the same video, in pixels of a frame of the same size.
        window: window side as a multiple of the face side (> 1).
        face_px: side in pixels the face is shrunk to inside the window (its detector must find faces of
            this size: MTCNN's smallest is 20 px, YuNet's about 10 px).

    Returns:
        Detections in ``frame`` pixels, most confident first; empty when ``previous`` is.

    Raises:
        ConfigError: bad frame, ``window <= 1`` or ``face_px < 12``.
    """
    frame = check_frame(frame)
    if not window > 1:
        raise ConfigError(f"window must be > 1 (a multiple of the face side), got {window}")
    if face_px < 12:
        raise ConfigError(f"face_px must be >= 12 pixels, got {face_px}")
    H, W = frame.shape[:2]
    found: list[Detection] = []
    for prev in previous:
        side = max(prev.width, prev.height)
        if side < 1:
            continue
        cx, cy = prev.center
        half = 0.5 * window * side
        x0, y0, x1, y1 = (int(round(v)) for v in clip_box((cx - half, cy - half, cx + half, cy + half), W, H))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        sub = frame[y0:y1, x0:x1]
        s = min(1.0, face_px / side)
        if s < 1.0:
            size = (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s)))
            sub = cv2.resize(sub, size, interpolation=cv2.INTER_AREA)
            sx, sy = (x1 - x0) / size[0], (y1 - y0) / size[1]
        else:
            sub, sx, sy = np.ascontiguousarray(sub), 1.0, 1.0
        for d in detector.detect(sub):
            bx1, by1, bx2, by2 = d.box
            box = (x0 + bx1 * sx, y0 + by1 * sy, x0 + bx2 * sx, y0 + by2 * sy)
            lm = None if d.landmarks is None else d.landmarks * [sx, sy] + [x0, y0]
            found.append(Detection(clip_box(box, W, H), d.score, lm))
    return _merge(found)


def _merge(found: list[Detection]) -> list[Detection]:
    """One detection per face (NMS, IoU 0.5, higher score kept), most confident first."""
    if len(found) > 1:
        keep = nms([d.box for d in found], [d.score for d in found], 0.5).tolist()
        found = [found[i] for i in keep]
    return sorted(found, key=lambda d: -d.score)


def _unseen(faces: list[tuple[Detection, int]], dets: list[Detection]) -> list[tuple[Detection, int]]:
    """The ``(face, age)`` entries that no detection of ``dets`` accounts for.

    A detection accounts for one face at most (the nearest first): its centre must lie within one face
    side of the face's centre (the same person, moved a little).
    """
    pairs = []
    for i, (face, _) in enumerate(faces):
        side = max(face.width, face.height)
        for j, d in enumerate(dets):
            dist = max(abs(d.center[0] - face.center[0]), abs(d.center[1] - face.center[1]))
            if dist <= side:
                pairs.append((dist, i, j))
    matched, used = set(), set()
    for _, i, j in sorted(pairs):
        if i not in matched and j not in used:
            matched.add(i)
            used.add(j)
    return [entry for i, entry in enumerate(faces) if i not in matched]


class KeyframeDetection:
    """Face detection through one video: full detection on key frames, :func:`detect_near` between them.

    Make one per video and call :meth:`detect` on its sampled frames in order. Between key frames
    each face of the previous frame is searched for near its box; if one of them is not found, the
    whole frame is searched at once.

    While a face is out of sight (occluded by another person, turned away), for up to
    :data:`LOST_FRAMES` frames, every frame gets a full detection: a face that comes back is found
    when per-frame detection would find it, so the tracker does not split that person in two.

    Args:
        detector: the face detector used for both kinds of frame.
        every: a full detection every ``every`` sampled frames (1: every frame, exactly ``detector.detect``).
        window, face_px: see :func:`detect_near`.

    Attributes:
        full, near: number of frames that got a full detection / a search near the known faces (a
            frame whose near search lost a face counts in both).

    Raises:
        ConfigError: ``every < 1``.
    """

    def __init__(self, detector: FaceDetector, every: int = 1, *, window: float = 1.6, face_px: float = 48.0):
        self.detector = detector
        self.every = check_detect_every(every)
        self.window = window
        self.face_px = face_px
        self.full = 0
        self.near = 0
        self._since_full = 0
        self._previous: list[Detection] = []
        self._lost: list[tuple[Detection, int]] = []  # (last box, frames since it was last seen - 1)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """The faces of the next sampled frame of the video (same contract as ``FaceDetector.detect``)."""
        dets = None
        if self.every > 1 and 0 < self._since_full < self.every and not self._lost:
            dets = []  # nobody to follow: new faces are looked for at the next key frame
            if self._previous:
                self.near += 1
                kept = [
                    detect_near(self.detector, frame, [d], window=self.window, face_px=self.face_px)
                    for d in self._previous
                ]
                dets = _merge([d for group in kept for d in group]) if all(kept) else None  # None: someone was lost
        if dets is None:
            self.full += 1
            self._since_full = 0
            dets = self.detector.detect(frame)
            self._lost = _unseen([(d, 0) for d in self._previous] + self._lost, dets)
        self._lost = [(d, age + 1) for d, age in self._lost if age + 1 < LOST_FRAMES]
        self._since_full += 1
        self._previous = dets
        return dets
