"""Tracking faces across sampled frames into persons, and choosing the subject of a clip.

:func:`track_faces` links the detections of consecutive sampled frames into :class:`Track` s (predicted
motion, IoU and appearance, Hungarian matching; short gaps allowed); :func:`select_subject` keeps the most
persistent one as a :class:`FaceTrack` of fixed length ``T`` whose frames without a face are masked
(``present`` False), never dropped. :func:`detect_track` does detection, tracking and selection in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ...errors import ConfigError, NoFaceError
from .base import Detection, FaceDetector
from .boxes import box_iou

__all__ = [
    "Track",
    "FaceTrack",
    "track_faces",
    "appearance_vector",
    "select_subject",
    "subject_track",
    "detect_track",
]


@dataclass
class Track:
    """Detections of one face linked across sampled frames.

    Attributes:
        track_id: number in order of creation.
        detections: sampled-frame index -> :class:`Detection`; frames missing from the dict are gaps.
    """

    track_id: int
    detections: dict[int, Detection] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.detections)

    @property
    def frames(self) -> list[int]:
        """Frame indices where this face was detected, ascending."""
        return sorted(self.detections)

    @property
    def first_frame(self) -> int:
        return min(self.detections)

    @property
    def last_frame(self) -> int:
        return max(self.detections)

    @property
    def last(self) -> Detection:
        """Detection in the latest frame of the track."""
        return self.detections[self.last_frame]

    @property
    def mean_area(self) -> float:
        """Mean box area in square pixels (0 for an empty track)."""
        if not self.detections:
            return 0.0
        return float(np.mean([d.area for d in self.detections.values()]))


def _predicted_box(track: Track, t: int) -> np.ndarray:
    """The track's box extrapolated to frame ``t`` at the constant velocity of its last two detections."""
    frames = track.frames
    last = np.asarray(track.detections[frames[-1]].box, np.float64)
    if len(frames) < 2:
        return last
    prev = np.asarray(track.detections[frames[-2]].box, np.float64)
    velocity = (last - prev) / (frames[-1] - frames[-2])
    return last + velocity * (t - frames[-1])


def _appearance_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """``(1 - cosine) / 2`` in ``[0, 1]`` between two appearance vectors; 0.5 (no opinion) when one is missing."""
    if a is None or b is None:
        return 0.5
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return 0.5
    return float((1.0 - np.dot(a, b) / (na * nb)) / 2.0)


def appearance_vector(crop: np.ndarray) -> np.ndarray:
    """A face crop's appearance for tracking: its 8x8 colour thumbnail, mean removed, float32 ``(192,)``."""
    small = cv2.resize(np.ascontiguousarray(crop), (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    return small - small.mean()


def _assignment(cost: np.ndarray) -> tuple:
    """Rows and columns of the minimum-cost one-to-one matching of ``cost`` (Hungarian algorithm).

    One row or one column is the minimum itself, found without importing scipy (0.9 s of start-up on
    a 2-core machine, for the one-face clips that are most of the work).
    """
    if cost.shape[0] == 1:
        return [0], [int(np.argmin(cost[0]))]
    if cost.shape[1] == 1:
        return [int(np.argmin(cost[:, 0]))], [0]
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)


def track_faces(
    detections_per_frame: Sequence[Sequence[Detection]],
    iou_threshold: float = 0.3,
    max_gap: int = 3,
    *,
    appearance: Sequence[Sequence[np.ndarray]] | None = None,
    appearance_weight: float = 0.5,
) -> list[Track]:
    """Link detections across sampled frames into tracks (one per person) that keep their ids through crossings.

    At each frame, every track whose last detection is at most ``max_gap`` missed frames old (``t - last <=
    max_gap + 1``) is a candidate. A track's box is **predicted** for the frame at the constant velocity of its
    last two detections (so two people who walk past each other keep moving their own way, and a face hidden
    for a few frames is found again where it went). A (track, detection) pair may match when the IoU of the
    detection with the predicted box or with the track's last box is at least ``iou_threshold``; the matching
    minimises the total cost ``1 - IoU(predicted, detection) + appearance_weight * d_appearance`` over all pairs
    at once (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`), where ``d_appearance`` in
    ``[0, 1]`` compares :func:`appearance_vector` s of the face crops when ``appearance`` is given. Unmatched
    detections start new tracks.

    Args:
        detections_per_frame: length ``T``; entry ``t`` lists the detections of sampled frame ``t``.
        iou_threshold: minimum IoU to continue a track.
        max_gap: how many consecutive frames a track may miss and still be continued.
        appearance: optional, parallel to ``detections_per_frame``: one vector per detection
            (:func:`appearance_vector` of its crop).
        appearance_weight: weight of the appearance distance in the matching cost.

    Returns:
        Tracks in order of creation (``track_id`` = position).

    Raises:
        ConfigError: ``iou_threshold`` outside ``(0, 1]``, negative ``max_gap``, or ``appearance`` not parallel
            to the detections.
    """
    if not 0 < iou_threshold <= 1:
        raise ConfigError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if max_gap < 0:
        raise ConfigError(f"max_gap must be >= 0, got {max_gap}")
    if appearance is not None and [len(a) for a in appearance] != [len(d) for d in detections_per_frame]:
        raise ConfigError("appearance must give one vector per detection of every frame")
    tracks: list[Track] = []
    looks: dict[int, np.ndarray | None] = {}  # track id -> appearance of its last detection
    for t, dets in enumerate(detections_per_frame):
        dets = list(dets)
        if not dets:
            continue
        det_looks = list(appearance[t]) if appearance is not None else [None] * len(dets)
        live = [tr for tr in tracks if t - tr.last_frame <= max_gap + 1]
        assigned_det: set[int] = set()
        if live:
            boxes = np.array([d.box for d in dets])
            iou_pred = box_iou(np.array([_predicted_box(tr, t) for tr in live]), boxes)
            iou_last = box_iou(np.array([tr.last.box for tr in live]), boxes)
            allowed = np.maximum(iou_pred, iou_last) >= iou_threshold
            cost = 1.0 - np.maximum(iou_pred, 0.5 * iou_last)
            if appearance is not None:
                cost = cost + appearance_weight * np.array(
                    [[_appearance_distance(looks.get(tr.track_id), a) for a in det_looks] for tr in live]
                )
            cost = np.where(allowed, cost, 1e6)
            for i, j in zip(*_assignment(cost), strict=True):
                if allowed[i, j]:
                    live[i].detections[t] = dets[j]
                    looks[live[i].track_id] = det_looks[j]
                    assigned_det.add(int(j))
        for j, d in enumerate(dets):
            if j not in assigned_det:
                tracks.append(Track(len(tracks), {t: d}))
                looks[tracks[-1].track_id] = det_looks[j]
    return tracks


@dataclass
class FaceTrack:
    """The subject's face over the ``T`` sampled frames of a clip.

    Attributes:
        boxes: ``(T, 4)`` float32 ``xyxy`` pixels; zeros where ``present`` is False.
        scores: ``(T,)`` float32 detector scores; 0 where absent.
        present: ``(T,)`` bool, True where the subject's face was detected.
        landmarks: ``(T, 5, 2)`` float32 pixels (zeros where absent or not given by the detector), or None when the
            detector gives no landmarks at all.
    """

    boxes: np.ndarray
    scores: np.ndarray
    present: np.ndarray
    landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        t = self.boxes.shape[0]
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(t)
        self.present = np.asarray(self.present, dtype=bool).reshape(t)
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(t, 5, 2)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def num_present(self) -> int:
        """Number of frames with the subject's face."""
        return int(self.present.sum())

    @classmethod
    def empty(cls, num_frames: int) -> FaceTrack:
        """A track of ``num_frames`` frames without any face."""
        return cls(np.zeros((num_frames, 4), np.float32), np.zeros(num_frames, np.float32), np.zeros(num_frames, bool))

    @classmethod
    def from_track(cls, track: Track, num_frames: int) -> FaceTrack:
        """Lay a :class:`Track` out over ``num_frames`` frames, masking the frames it misses.

        Raises:
            ConfigError: the track has a frame index outside ``[0, num_frames)``.
        """
        ft = cls.empty(num_frames)
        with_lm = any(d.landmarks is not None for d in track.detections.values())
        if with_lm:
            ft.landmarks = np.zeros((num_frames, 5, 2), np.float32)
        for t, d in track.detections.items():
            if not 0 <= t < num_frames:
                raise ConfigError(f"track has frame {t}, outside the clip's {num_frames} frames")
            ft.boxes[t] = d.box
            ft.scores[t] = d.score
            ft.present[t] = True
            if with_lm and d.landmarks is not None:
                ft.landmarks[t] = d.landmarks
        return ft


def subject_track(tracks: Sequence[Track]) -> Track | None:
    """The subject among ``tracks``: the most persistent (most frames), then the largest mean box area.

    Returns None when there is no track.
    """
    tracks = [tr for tr in tracks if len(tr)]
    if not tracks:
        return None
    return max(tracks, key=lambda tr: (len(tr), tr.mean_area, -tr.track_id))


def select_subject(tracks: Sequence[Track], num_frames: int, *, require_face: bool = False) -> FaceTrack:
    """The subject's face track: the most persistent track (most frames), ties broken by the largest mean area.

    Args:
        tracks: from :func:`track_faces`.
        num_frames: ``T``, the number of sampled frames of the clip.
        require_face: raise :class:`NoFaceError` instead of returning an all-absent track when there is no face.

    Returns:
        A :class:`FaceTrack` of length ``T`` (all ``present`` False when there are no tracks).

    Raises:
        NoFaceError: no face at all and ``require_face``.
        ConfigError: a track lies outside ``[0, num_frames)``.
    """
    if num_frames < 0:
        raise ConfigError(f"num_frames must be >= 0, got {num_frames}")
    tracks = [tr for tr in tracks if len(tr)]
    if not tracks:
        if require_face:
            raise NoFaceError(f"no face found in any of the {num_frames} frames")
        return FaceTrack.empty(num_frames)
    return FaceTrack.from_track(subject_track(tracks), num_frames)


def detect_track(
    frames: Iterable[np.ndarray],
    detector: FaceDetector,
    *,
    iou_threshold: float = 0.3,
    max_gap: int = 3,
    require_face: bool = False,
) -> FaceTrack:
    """Detect faces in every frame, track them, and return the subject's :class:`FaceTrack`.

    Args:
        frames: RGB uint8 ``(H, W, 3)`` frames (a list, an array ``(T, H, W, 3)`` or a generator).
        detector: any :class:`FaceDetector`.
        iou_threshold, max_gap: see :func:`track_faces`.
        require_face: see :func:`select_subject`.

    Returns:
        ``FaceTrack`` of length ``T`` = number of frames.

    Raises:
        NoFaceError: no face anywhere and ``require_face``.
        ConfigError: a frame is not an RGB uint8 array.
    """
    per_frame = [detector.detect(f) for f in frames]
    tracks = track_faces(per_frame, iou_threshold=iou_threshold, max_gap=max_gap)
    return select_subject(tracks, len(per_frame), require_face=require_face)
