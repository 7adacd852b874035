"""Video in, emotion out: :class:`Predictor` and :func:`predict_file`.

The default model, until a trained context-aware model ships, is the project's
face-expression CNN (see ``src/emocontext/weights/MODEL_CARD.md``) applied to the
subject's face in every sampled frame, with **temporal pooling**: the clip's
probabilities are the mean of the per-frame probabilities over the frames that
have a face. A clip in which no face is found at all gets no emotion: its
``label`` is ``None`` and ``no_face`` is True (the face model has nothing to
read; we do not guess from the scene with a model that was not trained for it).

Still images are one-frame videos.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import EmoContextError
from .features.backbones import FaceExtractor
from .video.faces import FaceDetector, create_detector
from .video.pipeline import StageTimes, StreamConfig, video_streams

__all__ = ["FramePrediction", "Prediction", "Predictor", "predict_file"]


@dataclass
class FramePrediction:
    """One sampled frame: ``timestamp`` in seconds, the face box (xyxy px) and expression probabilities, if a face."""

    timestamp: float
    face_present: bool
    box: list[float] | None
    probabilities: dict[str, float] | None


@dataclass
class Prediction:
    """The emotion of the person in one file.

    Attributes:
        path: the input file.
        label: the clip emotion, or None when no face was found.
        confidence: probability of ``label`` (None without a face).
        probabilities: clip-level probability of every emotion (empty without a face).
        num_frames: sampled frames; ``frames_with_face``: how many had the subject's face.
        frames: per-frame predictions with timestamps.
        model: which model produced it; ``fps``: sampling rate in Hz.
        truncated: the file broke off while decoding (the frames before the break were used).
    """

    path: str
    label: str | None
    confidence: float | None
    probabilities: dict[str, float]
    num_frames: int
    frames_with_face: int
    frames: list[FramePrediction] = field(default_factory=list)
    model: str = "face_cnn_temporal_mean"
    fps: float = 5.0
    truncated: bool = False

    @property
    def no_face(self) -> bool:
        return self.frames_with_face == 0

    def to_dict(self, *, frames: bool = True) -> dict:
        d = asdict(self)
        d["no_face"] = self.no_face
        if not frames:
            d.pop("frames")
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(**kw), indent=2)


class Predictor:
    """Loads the detector and the models once; :meth:`predict` runs them on one file.

    Args:
        detector: face detector backend name (``"mtcnn"`` offline default, ``"yunet"``, ``"haar"``,
            ``"dlib"``) or any object with the :class:`~emocontext.video.faces.FaceDetector` protocol.
        fps: sampling rate in Hz (default 5, as CACA-RNN).
        max_duration: read at most this many seconds of each file (None = all).
        face_weights: another face CNN weights file (default: the shipped one).
    """

    def __init__(
        self,
        *,
        detector: str | FaceDetector = "mtcnn",
        fps: float = 5.0,
        max_duration: float | None = None,
        face_weights: str | Path | None = None,
    ):
        self.detector = create_detector(detector) if isinstance(detector, str) else detector
        self.face = FaceExtractor(face_weights)
        self.labels = self.face.spec.labels
        self.config = StreamConfig(fps=fps, max_duration=max_duration)
        self.times = StageTimes()

    def predict(self, path: str | Path) -> Prediction:
        """Predict one video or image file.

        Raises:
            VideoDecodeError: the file is missing, empty, corrupt or has no video stream.
        """
        streams = video_streams(path, self.detector, self.config, times=self.times, with_context=False)
        n = len(streams)
        probs = np.zeros((n, len(self.labels)), np.float32)
        present = streams.face_present
        t0 = time.perf_counter()
        if present.any():
            _, probs[present] = self.face(streams.face[present])
        self.times.add("face_cnn", time.perf_counter() - t0)
        frames = [
            FramePrediction(
                timestamp=round(float(streams.timestamps[i]), 4),
                face_present=bool(present[i]),
                box=[round(float(v), 1) for v in streams.boxes[i]] if present[i] else None,
                probabilities=_as_dict(self.labels, probs[i]) if present[i] else None,
            )
            for i in range(n)
        ]
        if present.any():
            clip = probs[present].mean(0)
            k = int(clip.argmax())
            label, conf, clip_probs = self.labels[k], float(clip[k]), _as_dict(self.labels, clip)
        else:
            label, conf, clip_probs = None, None, {}
        return Prediction(
            path=str(path),
            label=label,
            confidence=conf,
            probabilities=clip_probs,
            num_frames=n,
            frames_with_face=int(present.sum()),
            frames=frames,
            fps=self.config.fps,
            truncated=streams.truncated,
        )

    def predict_many(self, paths: Iterable[str | Path]) -> Iterator[tuple[str, Prediction | None, str | None]]:
        """Yield ``(path, prediction, None)`` or ``(path, None, message)`` per file; errors never stop the loop."""
        for p in paths:
            try:
                yield str(p), self.predict(p), None
            except EmoContextError as e:
                yield str(p), None, str(e)


def _as_dict(labels, p: np.ndarray) -> dict[str, float]:
    return {name: round(float(v), 4) for name, v in zip(labels, p, strict=True)}


def predict_file(path: str | Path, **kwargs) -> Prediction:
    """One-off prediction: ``emocontext.predict("clip.mp4")``. Keyword arguments go to :class:`Predictor`.

    For many files build one :class:`Predictor` and call :meth:`Predictor.predict`, so the models load once.
    """
    return Predictor(**kwargs).predict(path)
