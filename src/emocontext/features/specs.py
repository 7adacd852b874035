"""What each frozen extractor is: :class:`ExtractorSpec` records (input size, normalisation, labels, provenance).

Like torchvision's ``Weights`` enums, an :class:`ExtractorSpec` ties the weights file to its input size,
normalisation, label set and provenance, read from the file's :class:`~emocontext.weights.Weights` record
(:meth:`ExtractorSpec.from_weights`); the feature store records :meth:`ExtractorSpec.signature` and refuses to
mix extractors. No torch here: the prediction path reads these without loading it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import hub
from ..labels import EKMAN8
from ..weights import EFFICIENTNET_LITE0_WEIGHTS, FACE_CNN_WEIGHTS, Weights

__all__ = [
    "ExtractorSpec",
    "FACE_CNN",
    "EFFNET_LITE0_IMAGENET",
    "SQUEEZENET1_1_IMAGENET",
    "FACE_WEIGHTS_FILE",
    "face_weights_path",
]


@dataclass(frozen=True)
class ExtractorSpec:
    """Weights plus everything needed to use them correctly.

    Attributes:
        name: registry name, e.g. ``"face_cnn_fer2013"``.
        version: bumped whenever the weights or preprocessing change.
        input_size: ``(H, W)`` in pixels the network expects.
        mean, std: per-channel normalisation on 0..255 RGB values.
        grayscale: the input is converted to grey (replicated to 3 channels).
        feature_dim: size of the pooled feature vector.
        test_time_flip: features are the mean over the input and its horizontal mirror (the
            mirror's feature map flipped back, so the cells stay aligned); costs a second pass.
        labels: class names of the classifier head, if any.
        training_data, accuracy, source: provenance for model cards and stores.
    """

    name: str
    version: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    grayscale: bool
    feature_dim: int
    test_time_flip: bool = False
    labels: tuple[str, ...] | None = None
    training_data: str = ""
    accuracy: dict = field(default_factory=dict)
    source: str = ""

    def signature(self) -> dict:
        """What a feature store records: identity and preprocessing, not the metrics."""
        d = asdict(self)
        keys = ("name", "version", "input_size", "mean", "std", "grayscale", "feature_dim", "test_time_flip")
        return {k: d[k] for k in keys}

    @classmethod
    def from_weights(cls, weights: Weights, **fields) -> ExtractorSpec:
        """The spec of a network whose file has a :class:`~emocontext.weights.Weights` record.

        The preprocessing (``input_size``, ``mean``, ``std``, ``grayscale``, ``test_time_flip``), the
        metrics (``accuracy``) and the ``source`` are the record's, so the two cannot disagree;
        ``fields`` give the rest (``name``, ``version``, ``feature_dim``, ``labels``, ``training_data``).
        """
        pre = weights.preprocessing
        return cls(
            input_size=tuple(pre["input_size"]),
            mean=tuple(pre["mean"]),
            std=tuple(pre["std"]),
            grayscale=bool(pre["grayscale"]),
            test_time_flip=bool(pre.get("test_time_flip", False)),
            accuracy=dict(weights.metrics),
            source=weights.source,
            **fields,
        )


FACE_CNN = ExtractorSpec.from_weights(
    FACE_CNN_WEIGHTS,
    name="face_cnn_fer2013",
    version="9",
    feature_dim=1280,
    labels=EKMAN8.names,
    training_data="FER2013 Training and two thirds of PublicTest (original pixels) with FER2013's own labels "
    "(contempt where the FER+ majority says so), ExpW's training faces, logit-adjusted for balanced classes, the "
    "FER+ vote distributions as an auxiliary head, and distilled for one pass a face from three teachers (version 6, "
    "an EfficientNet-Lite2 network, a 112 px network; three students of version 7 averaged; version 9: three students "
    "of version 8 that also read each training face as predict aligns it), 8 classes",
)

EFFNET_LITE0_IMAGENET = ExtractorSpec.from_weights(
    EFFICIENTNET_LITE0_WEIGHTS,
    name="efficientnet_lite0_imagenet",
    version="1",
    feature_dim=1280,
    training_data="ImageNet-1k",
)

SQUEEZENET1_1_IMAGENET = ExtractorSpec(
    name="squeezenet1_1_imagenet",
    version="1",
    input_size=(224, 224),
    mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
    std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
    grayscale=False,
    feature_dim=512,
    training_data="ImageNet-1k",
    accuracy={"imagenet_top1": 58.2},
    source="torchvision squeezenet1_1-b8a52dc0.pth, read from a local path (never downloaded)",
)

FACE_WEIGHTS_FILE = FACE_CNN_WEIGHTS.filename


def face_weights_path() -> Path:
    """Path of the shipped face CNN weights (package data), or ``$EMOCONTEXT_FACE_WEIGHTS`` (not checked)."""
    return hub.default_path(FACE_CNN_WEIGHTS)
