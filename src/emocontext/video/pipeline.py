"""Video file -> face and context streams, in one streaming pass.

decode (:mod:`.decode`, in a background thread: :mod:`.prefetch`) -> detect the faces of every
sampled frame (:mod:`.faces`; full detection on key frames only with ``detect_every``) -> crop
(:mod:`.streams`) -> link detections into tracks (persons) and choose the subject ->
:class:`~.streams.Streams`.

**Persons**: every track of faces is a person (:class:`~.streams.PersonStream`, ids 1, 2, ...
in order of first appearance, then from left to right); the subject is the most persistent,
then largest, person. ``persons=True`` keeps every person's face stream; the context stream is
shared, and :meth:`~.streams.Streams.for_person` hides that person's own face in it.

Memory stays bounded for long files: a full frame is dropped as soon as the
context crop and the crops of every detected face are taken; without ``persons``
the other faces' crops are discarded once the subject is known. The face-hidden
context is made in the context crop's own coordinates, which is the same as hiding
the face in the frame and then cropping (up to rounding).

With :class:`~.faces.WholeFrameDetector` (``--detector none``) the face stream holds the
frames themselves, at their own size, with no margin and no resize.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError, VideoDecodeError
from .align import BOX_MARGIN
from .decode import DEFAULT_FPS, is_image, iter_frames
from .faces import FaceDetector, FaceTrack, Track, appearance_vector, subject_track, track_faces
from .faces.keyframes import KeyframeDetection, check_detect_every
from .prefetch import prefetch
from .streams import (
    CONTEXT_SIZE,
    FACE_SIZE,
    PersonStream,
    Streams,
    centre_square,
    context_crop,
    context_frame,
    face_crop,
    hide_face,
)

__all__ = ["StreamConfig", "StageTimes", "video_streams"]


def _boxes_to_hide(present: np.ndarray, boxes: np.ndarray, dets_per_frame: list, config) -> list[list]:
    """Per frame, the xyxy boxes (frame pixels) to black out in the context stream (see :class:`StreamConfig`)."""
    n = len(present)
    hidden: list[list] = [[boxes[i]] if present[i] else [] for i in range(n)]
    found = np.flatnonzero(present)
    if config.hide_undetected and len(found):
        for i in np.flatnonzero(~np.asarray(present, bool)):
            hidden[i].append(boxes[found[np.argmin(np.abs(found - i))]])
    if config.hide_all_faces:
        for i, dets in enumerate(dets_per_frame):
            hidden[i].extend(d.box for d in dets)
    return hidden


def _hide_all(context: np.ndarray, boxes: list) -> np.ndarray:
    for box in boxes:
        context = hide_face(context, box)
    return context


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
        hide_all_faces: with ``hide_face``, black out every detected face of the frame, not only
            the subject's (Lee et al., ICCV 2019, 3.2.1: the network "hides the faces").
        hide_undetected: with ``hide_face``, in a frame where the subject's face was not detected
            black out the box of the nearest frame (in time) where it was, so that a missed
            detection does not leave the face visible in the context stream.
        face_align: align faces that come with landmarks (MTCNN, YuNet) onto the face CNN's training framing
            (:mod:`.align`); False: the box crop with ``face_margin`` for every face (the papers' crop).
        face_margin: margin around the face box for faces without landmarks, fraction of its side
            (default :data:`.align.BOX_MARGIN`: the training framing; see ``streams.face_crop``).
        detect_every: run the full face detector on every ``detect_every``-th sampled frame only, and
            between those look for the faces near their last box
            (:class:`~.faces.keyframes.KeyframeDetection`; 1 = full detection on every frame). A face
            that enters the picture is found up to ``detect_every - 1`` frames late; one that is lost is
            searched for in the whole frame at once. Ignored for detectors that give a fixed box
            (``--detector none``, a dataset's boxes). Recall cost: ``benchmarks/keyframe_detection.md``.

    ``hide_all_faces`` and ``hide_undetected`` are off by default: the shipped context model and
    existing feature stores were made without them (FIDELITY.md, "CAER-Net"); CAER-Net's pixel
    clips (:func:`emocontext.training.pixels.pixel_stream_config`) turn both on.
    """

    fps: float = DEFAULT_FPS
    start: float = 0.0
    max_duration: float | None = None
    face_size: int = FACE_SIZE
    context_size: int = CONTEXT_SIZE
    hide_face: bool = False
    face_margin: float = BOX_MARGIN
    face_align: bool = True
    context_width: int | None = None
    hide_all_faces: bool = False
    hide_undetected: bool = False
    detect_every: int = 1

    def __post_init__(self) -> None:
        check_detect_every(self.detect_every)
        if not self.fps > 0:
            raise ConfigError(f"fps must be > 0, got {self.fps}")
        if self.max_duration is not None and not self.max_duration > 0:
            raise ConfigError(f"max_duration must be > 0 seconds (or None for the whole file), got {self.max_duration}")
        if self.start < 0:
            raise ConfigError(f"start must be >= 0 seconds, got {self.start}")

    def signature(self) -> dict:
        """What changes the features (the start offset and duration are per-clip, not recorded)."""
        sig = {
            "fps": self.fps,
            "face_size": self.face_size,
            "context_size": self.context_size,
            "hide_face": self.hide_face,
            "face_margin": self.face_margin,
            "face_align": self.face_align,
        }
        if self.context_width is not None:  # absent for the centre square, so older stores still match
            sig["context_width"] = self.context_width
        for key in ("hide_all_faces", "hide_undetected"):  # absent when off, for the same reason
            if self.hide_face and getattr(self, key):
                sig[key] = True
        if self.detect_every != 1:
            sig["detect_every"] = self.detect_every
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
    """Wall time in seconds spent in each stage (for benchmarks).

    Frames are decoded in a background thread, so ``"decode"`` is the time the pipeline *waited* for
    the next frame, not the decoding time (which overlaps with the other stages).
    """

    seconds: dict = field(default_factory=lambda: defaultdict(float))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, stage: str, dt: float) -> None:
        with self._lock:  # files analysed in parallel threads add to the same totals
            self.seconds[stage] += dt


class _CropStore:
    """The face crops of a whole video, in blocks of about :attr:`BLOCK_BYTES` (16 MB: 341 crops at 128 px).

    Each block is one large allocation that goes back to the system when the store is dropped; thousands
    of separate 49 KB crops would stay in the allocator's heap (a 10-minute video: ~150 MB held after use).
    """

    BLOCK_BYTES = 16 << 20

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._per_block = 0
        self._n = 0

    def add(self, crop: np.ndarray) -> int:
        """Store ``crop`` (all crops of one video have one shape); returns its index."""
        if not self._per_block:
            self._per_block = max(1, self.BLOCK_BYTES // max(crop.nbytes, 1))
        k, r = divmod(self._n, self._per_block)
        if r == 0:
            self._blocks.append(np.empty((self._per_block, *crop.shape), crop.dtype))
        self._blocks[k][r] = crop
        self._n += 1
        return self._n - 1

    def __getitem__(self, index: int) -> np.ndarray:
        k, r = divmod(index, self._per_block)
        return self._blocks[k][r]


def person_tracks(tracks: list[Track], num_frames: int) -> list[Track]:
    """The tracks that count as persons, in id order (first appearance, then left to right).

    A track seen in a single sampled frame of a clip of 5 or more frames is taken for a false
    detection and dropped, unless it is the subject.
    """
    subject = subject_track(tracks)
    keep = [tr for tr in tracks if len(tr) >= (2 if num_frames >= 5 else 1) or tr is subject]
    return sorted(keep, key=lambda tr: (tr.first_frame, tr.detections[tr.first_frame].center[0], tr.track_id))


def video_streams(
    path: str | Path,
    detector: FaceDetector,
    config: StreamConfig = StreamConfig(),
    *,
    times: StageTimes | None = None,
    with_context: bool = True,
    persons: bool = False,
    on_progress: Callable[[int, int | None], object] | None = None,
) -> Streams:
    """Decode ``path``, find the faces in every sampled frame, track them into persons and build the streams.

    Frames are decoded in a background thread (:func:`~.prefetch.prefetch`), a few frames ahead of
    detection.

    ``with_context=False`` skips the context stream (``Streams.context`` is then an empty
    ``(T, 0, 0, 3)`` array), which a face-only model does not need: memory then grows by the
    face crops only (~48 KB a sampled frame and person at 128 px), so hour-long files fit.
    ``persons=True`` keeps the face stream of every person in ``Streams.persons`` (else only the
    subject's is kept there). ``on_progress(done, total)`` is called after each sampled frame's faces are found:
    ``done`` frames so far of the ``total`` the file's header promises (an estimate; None when it says
    nothing), and ``(T, T)`` at the end (progress bars, the web service's progress events).

    Returns:
        :class:`~.streams.Streams` with ``T`` sampled frames; its ``face``, ``face_present`` and
        ``boxes`` are the subject's. Frames where a person has no face keep their context frame and
        have ``face_present == False`` (they are masked downstream, never dropped).

    Raises:
        VideoDecodeError: unreadable file, no video stream, no frame.
    """
    times = times or StageTimes()
    whole = bool(getattr(detector, "whole_frame", False))
    dets_per_frame, crops_per_frame, looks_per_frame, contexts, stamps = [], [], [], [], []
    store = _CropStore()
    frame_hw = None
    status: dict = {}
    t = time.perf_counter()
    frames = iter_frames(path, fps=config.fps, start=config.start, max_duration=config.max_duration, status=status)
    fixed_box = bool(getattr(detector, "fixed_box", False))  # a known box: no search to save between key frames
    finder = detector if fixed_box or config.detect_every == 1 else KeyframeDetection(detector, config.detect_every)
    # a still image is one frame: a decoding thread ahead of it would only cost its start
    for frame in frames if is_image(path) else prefetch(frames):
        t1 = time.perf_counter()
        times.add("decode", t1 - t)
        img = frame.image
        if frame_hw is not None and whole and img.shape[:2] != frame_hw:  # a size change mid-stream
            img = cv2.resize(img, (frame_hw[1], frame_hw[0]), interpolation=cv2.INTER_AREA)
        frame_hw = img.shape[:2]
        dets = finder.detect(img)
        t2 = time.perf_counter()
        times.add("detect", t2 - t1)
        if whole:  # the frame is the face: fed to the face CNN as it is
            crops = [img for _ in dets]
        else:
            crops = [
                face_crop(
                    img,
                    d.box,
                    size=config.face_size,
                    margin=config.face_margin,
                    landmarks=d.landmarks if config.face_align else None,
                )
                for d in dets
            ]
        looks_per_frame.append([appearance_vector(c) for c in crops])
        crops_per_frame.append([store.add(c) for c in crops])
        if with_context:
            contexts.append(config.context(img))
        dets_per_frame.append(dets)
        stamps.append(frame.timestamp)
        t = time.perf_counter()
        times.add("crop", t - t2)
        if on_progress is not None:
            on_progress(len(stamps), status.get("expected"))
            t = time.perf_counter()
    if not stamps:
        raise VideoDecodeError(f"{path}: no frames")
    if on_progress is not None:
        on_progress(len(stamps), len(stamps))
    t0 = time.perf_counter()
    n = len(stamps)
    tracks = track_faces(dets_per_frame, appearance=looks_per_frame)
    subject = subject_track(tracks)
    where = {id(d): (i, j) for i, dets in enumerate(dets_per_frame) for j, d in enumerate(dets)}
    crop_shape = (*frame_hw, 3) if whole else (config.face_size, config.face_size, 3)

    def person_stream(track: Track, person_id: int) -> PersonStream:
        ft = FaceTrack.from_track(track, n)
        faces = np.zeros((n, *crop_shape), np.uint8)
        for d in track.detections.values():
            i, j = where[id(d)]
            faces[i] = store[crops_per_frame[i][j]]
        return PersonStream(person_id, faces, ft.present, ft.boxes, ft.scores)

    chosen = person_tracks(tracks, n) if persons else ([subject] if subject is not None else [])
    people = [person_stream(tr, k) for k, tr in enumerate(chosen, 1)]
    store = None  # every crop a person keeps was copied: the blocks go back to the system now
    subject_id = next((p.person_id for p, tr in zip(people, chosen, strict=True) if tr is subject), None)
    everyone = config.hide_face and config.hide_all_faces
    visible = contexts if with_context and config.hide_face and not everyone and len(people) > 1 else None
    if subject_id is not None:
        me = people[subject_id - 1]
        faces, present, boxes = me.face, me.face_present, me.boxes
    else:
        faces = np.zeros((n, *crop_shape), np.uint8)
        present, boxes = np.zeros(n, bool), np.zeros((n, 4), np.float32)
    if config.hide_face and with_context:
        hidden = _boxes_to_hide(present, boxes, dets_per_frame, config)
        contexts = [
            _hide_all(c, [config.to_context_coords(b, frame_hw) for b in hidden[i]]) for i, c in enumerate(contexts)
        ]
    times.add("track", time.perf_counter() - t0)
    return Streams(
        face=faces,
        context=np.stack(contexts) if with_context else np.zeros((n, 0, 0, 3), np.uint8),
        face_present=np.asarray(present, bool),
        boxes=np.asarray(boxes, np.float32),
        timestamps=np.asarray(stamps, np.float64),
        frame_size=tuple(frame_hw),
        truncated=status.get("truncated", False),
        persons=people,
        subject_id=subject_id,
        visible_context=np.stack(visible) if visible is not None else None,
        context_config=config,
    )
