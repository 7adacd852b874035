"""Video in, emotion out: :class:`Predictor` and :func:`predict_file`.

Two models (:class:`Predictor`): ``"face"``, the project's face-expression CNN with temporal
pooling, and ``"context"``, a context-aware head (CAER-Net spatial attention and adaptive fusion
over the face and the scene) loaded from a context model file; the package ships one trained on
ExpW. The default is ``"face"`` (:func:`default_model`): on the ExpW test faces the shipped
context model does not beat the face alone (``benchmarks/expw_ablation.md``).

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

__all__ = ["FramePrediction", "Prediction", "Predictor", "default_model", "predict_file"]


def default_model() -> str:
    """``"context"`` when ``$EMOCONTEXT_CONTEXT_WEIGHTS`` names a context model file (your own), else ``"face"``.

    The shipped ExpW context model is not the default: on the ExpW test faces it scores 34.9 %
    against 36.9 % for the face alone (``benchmarks/expw_ablation.md``); ask for it with
    ``model="context"`` for its context-only answers on frames without a face and its evidence
    (spatial attention, fusion weights).
    """
    import os

    return "context" if os.environ.get("EMOCONTEXT_CONTEXT_WEIGHTS") else "face"


@dataclass
class FramePrediction:
    """One sampled frame.

    Attributes:
        timestamp: presentation time in seconds.
        face_present: the subject's face was found in this frame.
        box: the face box, xyxy in pixels of the original frame (None without a face).
        probabilities: the frame's emotion probabilities (None when the model had nothing to
            read: the face-only model on a frame without a face).
        source: what the frame's prediction read: ``"face+context"``, ``"context"`` (no face:
            the context-aware model falls back to the scene) or ``"face"`` (face-only model).
        attention: context spatial attention, ``h x w`` nested lists summing to 1 over the
            context crop (``Prediction.context_box``); row 0 is the top. None for face-only models.
        fusion_weights: ``{"face": lambda_face, "context": lambda_context}`` (CAER-Net eq. 5), summing
            to 1; None for face-only models.
    """

    timestamp: float
    face_present: bool
    box: list[float] | None
    probabilities: dict[str, float] | None
    source: str | None = None
    attention: list[list[float]] | None = None
    fusion_weights: dict[str, float] | None = None


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
        frame_size: ``(height, width)`` of the decoded frames in pixels.
        context_box: xyxy pixels of the region of the original frame that the context stream saw
            (the centre square crop) and that ``FramePrediction.attention`` covers; None for
            face-only models.
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
    frame_size: tuple[int, int] | None = None
    context_box: list[float] | None = None

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

    Two models (``model=``):

    * ``"context"`` (the default only when ``$EMOCONTEXT_CONTEXT_WEIGHTS`` is set,
      :func:`default_model`): the context-aware model of :mod:`emocontext.pretrained` -- per
      sampled frame, the face CNN's feature of the subject's face and the ImageNet
      EfficientNet-Lite0 map of the frame **with the face hidden**, fused by CAER-Net's spatial
      attention and adaptive fusion (Lee et al., ICCV 2019, eq. 3-6), trained on ExpW. Frames
      without a face fall back to the context stream alone (``lambda_face = 0``,
      ``FramePrediction.source == "context"``), so a clip with no face still gets an emotion,
      read from the scene. Clip probabilities = mean of the frame probabilities over all sampled
      frames (ExpW has single images, so no validation data could choose a temporal weighting;
      the mean is what CAER-Net does over clips).
    * ``"face"`` (the default): the face-expression CNN per frame, **temporal mean** of the
      probabilities over the frames that have a face; a clip with no face gets no emotion
      (``label`` None).

    Args:
        model: ``"context"``, ``"face"`` or None (:func:`default_model`).
        detector: face detector backend name (``"mtcnn"`` offline default, ``"yunet"``, ``"haar"``,
            ``"dlib"``) or any object with the :class:`~emocontext.video.faces.FaceDetector` protocol.
        fps: sampling rate in Hz (default 5, as CACA-RNN).
        max_duration: read at most this many seconds of each file (None = all).
        face_weights: another face CNN weights file (default: the shipped one).
        context_weights: another context model file (default: the shipped one).

    Raises:
        EmoContextError: unknown model, missing weights; IncompatibleFeaturesError when the context
            model was trained on other extractors than the ones given.
    """

    MODELS = ("context", "face")

    def __init__(
        self,
        *,
        model: str | None = None,
        detector: str | FaceDetector = "mtcnn",
        fps: float = 5.0,
        max_duration: float | None = None,
        face_weights: str | Path | None = None,
        context_weights: str | Path | None = None,
    ):
        model = model or default_model()
        if model not in self.MODELS:
            raise EmoContextError(f"unknown model {model!r}; choose one of {', '.join(self.MODELS)}")
        self.detector = create_detector(detector) if isinstance(detector, str) else detector
        self.face = FaceExtractor(face_weights)
        self.context_model = None
        if model == "context":
            from .features.backbones import ContextExtractor
            from .pretrained import load_context_model

            self.context_model = load_context_model(context_weights)
            self.context = ContextExtractor(spatial=True)
            hide = bool(self.context_model.extraction.get("streams", {}).get("hide_face", True))
            self.context_model.check_extractors(self.face.signature, self.context.signature, hide)
            self.labels = self.context_model.labels
            self.config = StreamConfig(fps=fps, max_duration=max_duration, hide_face=hide)
            self.model_name = f"{self.context_model.name}_expw"
        else:
            self.labels = self.face.spec.labels
            self.config = StreamConfig(fps=fps, max_duration=max_duration)
            self.model_name = "face_cnn_temporal_mean"
        self.times = StageTimes()

    def predict(self, path: str | Path) -> Prediction:
        """Predict one video or image file.

        Raises:
            VideoDecodeError: the file is missing, empty, corrupt or has no video stream.
        """
        with_context = self.context_model is not None
        streams = video_streams(path, self.detector, self.config, times=self.times, with_context=with_context)
        n = len(streams)
        present = streams.face_present
        t0 = time.perf_counter()
        feats = np.zeros((n, self.face.spec.feature_dim), np.float32)
        probs = np.zeros((n, len(self.labels)), np.float32)
        if present.any():
            feats[present], face_probs = self.face(streams.face[present])
            if not with_context:
                probs[present] = face_probs
        self.times.add("face_cnn", time.perf_counter() - t0)
        attention = fusion = None
        if with_context:
            probs, attention, fusion = self._context_model(streams, feats)
        valid = np.ones(n, bool) if with_context else present
        frames = [
            FramePrediction(
                timestamp=round(float(streams.timestamps[i]), 4),
                face_present=bool(present[i]),
                box=[round(float(v), 1) for v in streams.boxes[i]] if present[i] else None,
                probabilities=_as_dict(self.labels, probs[i]) if valid[i] else None,
                source=_source(with_context, bool(present[i])),
                attention=None if attention is None else np.round(attention[i], 5).tolist(),
                fusion_weights=None
                if fusion is None
                else {"face": round(float(fusion[i, 0]), 4), "context": round(float(fusion[i, 1]), 4)},
            )
            for i in range(n)
        ]
        if valid.any():
            clip = probs[valid].mean(0)
            k = int(clip.argmax())
            label, conf, clip_probs = self.labels[k], float(clip[k]), _as_dict(self.labels, clip)
        else:
            label, conf, clip_probs = None, None, {}
        h, w = streams.frame_size
        return Prediction(
            path=str(path),
            label=label,
            confidence=conf,
            probabilities=clip_probs,
            num_frames=n,
            frames_with_face=int(present.sum()),
            frames=frames,
            model=self.model_name,
            fps=self.config.fps,
            truncated=streams.truncated,
            frame_size=(int(h), int(w)),
            context_box=[float(v) for v in self.config.context_region((h, w))] if with_context else None,
        )

    def _context_model(self, streams, feats: np.ndarray, chunk: int = 32):
        """Frame probabilities ``(T, K)``, context attention ``(T, h, w)`` and fusion weights ``(T, 2)``."""
        import torch

        n = len(streams)
        probs, attention, fusion = [], [], []
        for i in range(0, n, chunk):
            t0 = time.perf_counter()
            maps = self.context(streams.context[i : i + chunk])  # (m, C, h, w)
            t1 = time.perf_counter()
            self.times.add("context_cnn", t1 - t0)
            m = len(maps)
            batch = {
                "face": torch.from_numpy(feats[i : i + m])[None],
                "context": torch.from_numpy(maps)[None],
                "mask": torch.ones(1, m, dtype=torch.bool),
                "face_mask": torch.from_numpy(streams.face_present[i : i + m])[None],
            }
            p, att, fw = self.context_model.frame_outputs(batch)
            probs.append(p)
            h, w = maps.shape[-2:]
            attention.append(att if att is not None else np.full((m, h, w), 1.0 / (h * w), np.float32))
            fusion.append(fw if fw is not None else np.tile([0.5, 0.5], (m, 1)).astype(np.float32))
            self.times.add("context_model", time.perf_counter() - t1)
        return np.concatenate(probs), np.concatenate(attention), np.concatenate(fusion)

    def predict_many(self, paths: Iterable[str | Path]) -> Iterator[tuple[str, Prediction | None, str | None]]:
        """Yield ``(path, prediction, None)`` or ``(path, None, message)`` per file; errors never stop the loop."""
        for p in paths:
            try:
                yield str(p), self.predict(p), None
            except EmoContextError as e:
                yield str(p), None, str(e)


def _source(with_context: bool, face: bool) -> str | None:
    if with_context:
        return "face+context" if face else "context"
    return "face" if face else None


def _as_dict(labels, p: np.ndarray) -> dict[str, float]:
    return {name: round(float(v), 4) for name, v in zip(labels, p, strict=True)}


def predict_file(path: str | Path, **kwargs) -> Prediction:
    """One-off prediction: ``emocontext.predict("clip.mp4")``. Keyword arguments go to :class:`Predictor`.

    For many files build one :class:`Predictor` and call :meth:`Predictor.predict`, so the models load once.
    """
    return Predictor(**kwargs).predict(path)
