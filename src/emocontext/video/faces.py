"""Face detection, tracking across frames, and choosing the subject of a clip.

One protocol, several backends:

``FaceDetector``
    anything with a ``name`` and ``detect(frame) -> list[Detection]``. A frame is an RGB ``uint8`` array of
    shape ``(H, W, 3)``; every box is ``xyxy`` in float pixels of *that* frame.

Backends (build them by name with :func:`create_detector`):

``"mtcnn"`` -> :class:`MTCNNDetector`, the offline default
    Zhang, Zhang, Li and Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
    Networks", IEEE Signal Processing Letters 23(10), 2016. P-Net, R-Net and O-Net are written here in
    PyTorch; the trained weights are read from the data files of the PyPI package ``mtcnn`` (MIT), whose
    TensorFlow code is never imported.
``"yunet"`` -> :class:`YuNetDetector`, the fast backend
    Wu, Peng and Yu, "YuNet: A Tiny Millisecond-level Face Detector", Machine Intelligence Research 20, 2023,
    run through OpenCV's ``cv2.FaceDetectorYN``. Its ONNX file is resolved by :func:`resolve_yunet_weights`
    (a path, ``$EMOCONTEXT_YUNET``, the cache, or an explicit download checked against its SHA-256).
``"haar"`` -> :class:`HaarDetector`
    Viola and Jones (2001) boosted cascade, OpenCV's ``haarcascade_frontalface_default.xml`` (OpenCV 4; OpenCV 5
    moved cascades to opencv-contrib).
``"dlib"`` -> :class:`DlibHOGDetector`
    Dalal and Triggs (2005) HOG + linear SVM as shipped by dlib (the ``dlib`` extra).

Measured recall on 400 ExpW test faces (IoU >= 0.3 with the labelled box) and speed are in
``benchmarks/face_detection_recall.md``.

Tracking: :func:`track_faces` links the detections of consecutive sampled frames into :class:`Track` s by greedy
IoU matching (short gaps allowed); :func:`select_subject` keeps the most persistent one as a :class:`FaceTrack`
of fixed length ``T`` whose frames without a face are masked (``present`` False), never dropped.
:func:`detect_track` does detection, tracking and selection in one call.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import os
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, NoFaceError, WeightsError

__all__ = [
    "Detection",
    "FaceDetector",
    "MTCNNDetector",
    "YuNetDetector",
    "HaarDetector",
    "GivenBoxDetector",
    "DlibHOGDetector",
    "create_detector",
    "list_detectors",
    "resolve_yunet_weights",
    "default_cache_dir",
    "load_mtcnn_nets",
    "nms",
    "box_iou",
    "Track",
    "FaceTrack",
    "track_faces",
    "appearance_vector",
    "select_subject",
    "subject_track",
    "WholeFrameDetector",
    "detect_track",
    "YUNET_URL",
    "YUNET_SHA256",
    "YUNET_FILENAME",
]

# --------------------------------------------------------------------------------------------------------------------
# Detection and the protocol
# --------------------------------------------------------------------------------------------------------------------


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
    """

    name: str

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one RGB ``uint8`` frame ``(H, W, 3)``, most confident first; an empty list when none.

        Raises:
            ConfigError: the frame is not an ``(H, W, 3)`` uint8 array.
        """
        ...


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ConfigError(f"a frame must be an RGB uint8 array of shape (H, W, 3), got {desc}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ConfigError(f"a frame must not be empty, got shape {frame.shape}")
    return frame


def _downscale(frame: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink ``frame`` so that its long side is at most ``max_side``; returns it and the factor applied (<= 1)."""
    h, w = frame.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return frame, 1.0
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), s


def _clip_box(box: Sequence[float], w: int, h: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))


# --------------------------------------------------------------------------------------------------------------------
# Box geometry and non-maximum suppression
# --------------------------------------------------------------------------------------------------------------------


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of ``xyxy`` boxes.

    Args:
        boxes_a: ``(N, 4)`` boxes.
        boxes_b: ``(M, 4)`` boxes.

    Returns:
        ``(N, M)`` float64 IoU in ``[0, 1]``; 0 where both boxes are empty.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _pairwise_overlap(boxes: torch.Tensor, others: torch.Tensor, mode: str) -> torch.Tensor:
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    area_o = (others[:, 2] - others[:, 0]).clamp(min=0) * (others[:, 3] - others[:, 1]).clamp(min=0)
    lt = torch.maximum(boxes[:, None, :2], others[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], others[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    if mode == "union":
        denom = area[:, None] + area_o[None, :] - inter
    else:  # "min"
        denom = torch.minimum(area[:, None], area_o[None, :])
    return torch.where(denom > 0, inter / denom.clamp(min=1e-12), torch.zeros_like(inter))


_NMS_MATRIX_MAX = 4096  # up to this many boxes, NMS computes one N x N overlap matrix; beyond, row by row


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, mode: str = "union") -> torch.Tensor:
    """Greedy non-maximum suppression (the torchvision ``nms`` semantics, plus MTCNN's "min" overlap).

    Boxes are visited by decreasing score; a box is kept unless its overlap with an already kept box is
    strictly greater than ``iou_threshold``.

    Args:
        boxes: ``(N, 4)`` float ``xyxy`` boxes.
        scores: ``(N,)`` scores.
        iou_threshold: overlap above which the lower-scored box is dropped.
        mode: ``"union"`` for intersection / union (IoU), ``"min"`` for intersection / smaller area
            (MTCNN's last stage, which removes a small box inside a larger one).

    Returns:
        ``(K,)`` int64 indices into ``boxes`` of the kept boxes, by decreasing score.

    Raises:
        ConfigError: unknown ``mode`` or mismatched shapes.
    """
    if mode not in ("union", "min"):
        raise ConfigError(f"nms mode must be 'union' or 'min', got {mode!r}")
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    scores = torch.as_tensor(scores, dtype=torch.float32).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ConfigError(f"nms got {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.int64)
    order = torch.argsort(scores, descending=True, stable=True)
    boxes = boxes[order]
    if n <= _NMS_MATRIX_MAX:
        # One overlap matrix, then a cheap sequential pass over its rows.
        over = (_pairwise_overlap(boxes, boxes, mode) > iou_threshold).numpy()
        removed = np.zeros(n, dtype=bool)
        keep = []
        for i in range(n):
            if removed[i]:
                continue
            keep.append(i)
            removed |= over[i]
        return order[torch.as_tensor(keep, dtype=torch.int64)]
    keep_t = []
    remaining = torch.arange(n)
    while remaining.numel() > 0:
        i = remaining[0]
        keep_t.append(int(i))
        if remaining.numel() == 1:
            break
        rest = remaining[1:]
        ov = _pairwise_overlap(boxes[i : i + 1], boxes[rest], mode)[0]
        remaining = rest[ov <= iou_threshold]
    return order[torch.as_tensor(keep_t, dtype=torch.int64)]


# --------------------------------------------------------------------------------------------------------------------
# MTCNN
# --------------------------------------------------------------------------------------------------------------------


def _max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """2x2 max pooling, stride 2, ceil mode (Keras "same"): as ``F.max_pool2d(x, 2, 2, ceil_mode=True)``.

    Written as the maximum of four strided views, which is ~3x faster on CPU than the pooling kernel.
    """
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = torch.nn.functional.pad(x, (0, w % 2, 0, h % 2), value=float("-inf"))
    rows = torch.maximum(x[:, :, 0::2], x[:, :, 1::2])
    return torch.maximum(rows[:, :, :, 0::2], rows[:, :, :, 1::2])


def _face_probability(logits: torch.Tensor) -> torch.Tensor:
    """Softmax probability of class 1 ("face") of 2-class logits on dim 1, as ``sigmoid(l1 - l0)``."""
    return torch.sigmoid(logits[:, 1] - logits[:, 0])


def _widen(conv: nn.Conv2d, prelu: nn.PReLU, nxt: nn.Conv2d, width: int) -> tuple[nn.Conv2d, nn.PReLU, nn.Conv2d]:
    """Pad ``conv``'s output channels (and ``prelu``, and ``nxt``'s input channels) with zeros up to ``width``.

    Exact: the extra channels are 0 after the conv (zero weights and bias), stay 0 through PReLU and max pooling, and
    ``nxt`` gives them zero weights. It only makes the oneDNN kernels faster (channel counts that are multiples of
    16 vectorise; 10 and 28 do not).
    """
    c = conv.out_channels
    if width <= c:
        return conv, prelu, nxt
    conv2 = nn.Conv2d(conv.in_channels, width, conv.kernel_size, conv.stride)
    prelu2 = nn.PReLU(width)
    nxt2 = nn.Conv2d(width, nxt.out_channels, nxt.kernel_size, nxt.stride)
    with torch.no_grad():
        for p in (conv2.weight, conv2.bias, prelu2.weight, nxt2.weight):
            p.zero_()
        conv2.weight[:c] = conv.weight
        conv2.bias[:c] = conv.bias
        prelu2.weight[:c] = prelu.weight
        nxt2.weight[:, :c] = nxt.weight
        nxt2.bias.copy_(nxt.bias)
    return conv2, prelu2, nxt2


class _PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 receptive field, stride 2.

    Input ``(N, 3, H, W)`` normalised RGB; output box offsets ``(N, 4, h, w)`` and face probability ``(N, h, w)``
    with ``h = ceil((H - 2) / 2) - 4``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 4, 1)
        self.conv4_2 = nn.Conv2d(32, 2, 1)

    keras_layers = ("conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "conv4_1", "conv4_2")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _max_pool_2x2(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x), _face_probability(self.conv4_2(x))


def _keras_flatten(x: torch.Tensor) -> torch.Tensor:
    """Flatten ``(N, C, H, W)`` in the order of the Keras models: ``Permute((2, 1, 3))`` on NHWC, then ``Flatten``.

    The Keras layout is ``(N, H, W, C)``; the permute makes it ``(N, W, H, C)``, which in NCHW terms is
    ``x.permute(0, 3, 2, 1)``. Keeping this order lets the dense kernels be used as they are (transposed only).
    """
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class _RNet(nn.Module):
    """Refinement network on ``(N, 3, 24, 24)`` crops: box offsets ``(N, 4)`` and face probability ``(N,)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.fc4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.fc5_1 = nn.Linear(128, 4)
        self.fc5_2 = nn.Linear(128, 2)

    keras_layers = ("conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "fc4", "prelu4", "fc5_1", "fc5_2")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.fc4(_keras_flatten(x)))
        return self.fc5_1(x), _face_probability(self.fc5_2(x))


class _ONet(nn.Module):
    """Output network on ``(N, 3, 48, 48)`` crops: box offsets ``(N, 4)``, landmarks ``(N, 10)`` as
    ``(x1..x5, y1..y5)`` fractions of the crop, and face probability ``(N,)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.fc5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.fc6_1 = nn.Linear(256, 4)
        self.fc6_2 = nn.Linear(256, 10)
        self.fc6_3 = nn.Linear(256, 2)

    keras_layers = (
        "conv1",
        "prelu1",
        "conv2",
        "prelu2",
        "conv3",
        "prelu3",
        "conv4",
        "prelu4",
        "fc5",
        "prelu5",
        "fc6_1",
        "fc6_2",
        "fc6_3",
    )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.fc5(_keras_flatten(x)))
        return self.fc6_1(x), self.fc6_2(x), _face_probability(self.fc6_3(x))


def _mtcnn_weight_file(stage: str, weights_dir: str | os.PathLike | None) -> Path:
    fname = f"{stage}.lz4"
    if weights_dir is not None:
        path = Path(weights_dir) / fname
    else:
        try:
            dist = importlib.metadata.distribution("mtcnn")
        except importlib.metadata.PackageNotFoundError as e:
            raise WeightsError(
                "MTCNN weights come from the PyPI package 'mtcnn' (its data files only; TensorFlow is not needed): "
                "pip install 'mtcnn>=1.0'"
            ) from e
        path = Path(str(dist.locate_file(f"mtcnn/assets/weights/{fname}")))
    if not path.is_file():
        raise WeightsError(f"MTCNN weight file not found: {path} (reinstall the 'mtcnn' package)")
    return path


def _load_keras_arrays(net: nn.Module, arrays: list[np.ndarray], source: str) -> None:
    """Copy the Keras weight list of one MTCNN stage into ``net`` (layers in ``net.keras_layers`` order).

    Conv kernels are HWIO -> OIHW; PReLU alphas ``(1, 1, C)`` or ``(C,)`` -> ``(C,)``; dense kernels ``(in, out)``
    -> ``(out, in)`` (the flatten order is handled by :func:`_keras_flatten`).
    """
    arrays = list(arrays)
    pos = 0

    def take() -> np.ndarray:
        nonlocal pos
        if pos >= len(arrays):
            raise WeightsError(f"{source}: too few arrays for {type(net).__name__}")
        a = np.asarray(arrays[pos], dtype=np.float32)
        pos += 1
        return a

    def put(param: torch.Tensor, value: np.ndarray, what: str) -> None:
        if tuple(param.shape) != value.shape:
            raise WeightsError(
                f"{source}: {type(net).__name__}.{what} expects shape {tuple(param.shape)}, file has {value.shape}"
            )
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))

    for name in net.keras_layers:
        layer = getattr(net, name)
        if isinstance(layer, nn.Conv2d):
            put(layer.weight, take().transpose(3, 2, 0, 1), f"{name}.weight")
            put(layer.bias, take(), f"{name}.bias")
        elif isinstance(layer, nn.PReLU):
            put(layer.weight, take().reshape(-1), f"{name}.weight")
        elif isinstance(layer, nn.Linear):
            put(layer.weight, take().T, f"{name}.weight")
            put(layer.bias, take(), f"{name}.bias")
        else:  # pragma: no cover - programming error
            raise TypeError(name)
    if pos != len(arrays):
        raise WeightsError(f"{source}: {len(arrays) - pos} unused arrays for {type(net).__name__}")


def load_mtcnn_nets(weights_dir: str | os.PathLike | None = None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Build P-Net, R-Net and O-Net with their trained weights, in eval mode.

    Args:
        weights_dir: folder holding ``pnet.lz4``, ``rnet.lz4``, ``onet.lz4`` (joblib-pickled lists of Keras arrays).
            Default: the data files of the installed ``mtcnn`` package, found with
            ``importlib.metadata`` (the package itself is never imported).

    Returns:
        ``(pnet, rnet, onet)`` modules.

    Raises:
        WeightsError: the package or a file is missing, unreadable, or holds arrays of unexpected shapes.
    """
    import joblib

    nets = []
    for stage, cls in (("pnet", _PNet), ("rnet", _RNet), ("onet", _ONet)):
        path = _mtcnn_weight_file(stage, weights_dir)
        try:
            arrays = joblib.load(path)
        except Exception as e:  # corrupt or truncated file, missing lz4
            raise WeightsError(f"cannot read MTCNN weights {path}: {e}") from e
        net = cls()
        _load_keras_arrays(net, arrays, str(path))
        nets.append(net.eval().requires_grad_(False))
    return nets[0], nets[1], nets[2]


def _optimize_for_cpu(pnet: nn.Module, rnet: nn.Module, onet: nn.Module) -> None:
    """In place, exact: widen the 10- and 28-channel layers to 16 and 32 (see :func:`_widen`) and use channels-last.

    Channels-last because the inputs are HWC views already and oneDNN convolutions and pooling are several times
    faster in that layout on CPU than in NCHW.
    """
    pnet.conv1, pnet.prelu1, pnet.conv2 = _widen(pnet.conv1, pnet.prelu1, pnet.conv2, 16)
    rnet.conv1, rnet.prelu1, rnet.conv2 = _widen(rnet.conv1, rnet.prelu1, rnet.conv2, 32)
    for net in (pnet, rnet, onet):
        net.to(memory_format=torch.channels_last).eval().requires_grad_(False)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each ``(N, 4)`` box to a square around its centre (side = the longer side)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + 0.5 * (w - side)
    out[:, 1] = boxes[:, 1] + 0.5 * (h - side)
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply MTCNN box offsets ``(N, 4)`` (fractions of the box width/height) to ``(N, 4)`` boxes."""
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes + offsets * np.concatenate([w, h, w, h], axis=1)


@dataclass
class _Level:
    """One pyramid level: the normalised image resized by ``(sx, sy)`` (``scale`` is the nominal factor)."""

    scale: float
    sx: float
    sy: float
    image: np.ndarray


def _crop_patches(levels: list[_Level], boxes: np.ndarray, size: int) -> torch.Tensor:
    """Crop ``(N, 4)`` boxes (frame pixels) and resize them to ``size`` x ``size``, batched for R-Net/O-Net.

    Each box is sampled bilinearly (sub-pixel, via one ``cv2.warpAffine`` per box) from the smallest pyramid level
    on which it still spans at least ``size`` pixels, so the last step shrinks by less than 1/0.709 and needs no
    further anti-aliasing; ``levels[0]`` must be the full-resolution image. Parts of a box outside the image are 0
    (mid-grey after normalisation), as in the reference implementation (``tf.image.crop_and_resize``).

    Returns:
        ``(N, 3, size, size)`` float32 (a channels-last view).
    """
    out = np.zeros((len(boxes), size, size, 3), dtype=np.float32)
    if len(boxes) == 0:
        return torch.from_numpy(out).permute(0, 3, 1, 2)
    scales = np.array([lv.scale for lv in levels])
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    which = np.clip((scales[None, :] * side[:, None] >= size).sum(axis=1) - 1, 0, len(levels) - 1)
    for k, (box, li) in enumerate(zip(boxes, which, strict=True)):
        lv = levels[li]
        x1, y1, x2, y2 = box[0] * lv.sx, box[1] * lv.sy, box[2] * lv.sx, box[3] * lv.sy
        ax, ay = max(x2 - x1, 1e-3) / size, max(y2 - y1, 1e-3) / size
        # output pixel (u, v) <- level pixel (x1 + (u + 0.5) * ax - 0.5, y1 + (v + 0.5) * ay - 0.5)
        m = np.array([[ax, 0.0, x1 + 0.5 * ax - 0.5], [0.0, ay, y1 + 0.5 * ay - 0.5]])
        cv2.warpAffine(
            lv.image,
            m,
            (size, size),
            dst=out[k],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    return torch.from_numpy(out).permute(0, 3, 1, 2)


class MTCNNDetector:
    """MTCNN face detector in PyTorch (Zhang et al., IEEE SPL 2016), the offline default.

    Pipeline (paper Sec. II-A): an image pyramid (factor ``scale_factor``, smallest detectable face
    ``min_face_size`` px) goes through P-Net, whose windows above ``thresholds[0]`` are merged by NMS per scale
    (IoU 0.5) and across scales (0.7), regressed and made square; R-Net rescores 24x24 crops of them
    (``thresholds[1]``, NMS 0.7, regression, square); O-Net rescores 48x48 crops (``thresholds[2]``), regresses
    boxes and five landmarks, and a last NMS uses the overlap over the smaller box (0.7).

    Pixels are normalised as ``(x - 127.5) / 128`` in RGB order, untransposed (H, W), the convention of the Keras
    weights used here (data files of the PyPI package ``mtcnn`` 1.0, MIT licence, converted from the authors'
    Caffe models); checked on real images (95.8 % recall on 400 ExpW test faces, see
    ``benchmarks/face_detection_recall.md``). Thresholds are those of the paper's code and facenet-pytorch;
    the ``mtcnn`` package uses 0.8 for O-Net.

    Implementation choices (not in the paper): pyramid levels are area-resized from the previous level; R-Net and
    O-Net crops are sampled bilinearly from the smallest pyramid level on which the box still spans 24 / 48 px
    (anti-aliased, sub-pixel), with mid-grey outside the image; the networks run channels-last with the 10- and
    28-channel layers zero-padded to 16 and 32 channels (exact, faster oneDNN kernels).

    Speed: one thread, 480x360 frame, 60-90 ms of CPU time, measured while another job kept both cores of the
    development machine busy (in the same conditions Haar and YuNet ran 3-4x slower than their idle timings);
    see the benchmark for ExpW images.

    Args:
        min_face_size: smallest face searched, in pixels of the (possibly downscaled) detection frame.
        thresholds: P-Net, R-Net, O-Net face-probability thresholds.
        scale_factor: pyramid step (0.709 ~ 1/sqrt(2), halves the area per level).
        max_side: frames whose long side exceeds this are downscaled to it for detection (boxes are scaled back);
            None to always detect at full resolution.
        weights_dir: folder with ``pnet.lz4``/``rnet.lz4``/``onet.lz4``; default the installed ``mtcnn`` package.
        batch_size: largest number of crops per R-Net/O-Net forward pass.

    Raises:
        WeightsError: weights missing or malformed.
        ConfigError: invalid option values.
    """

    name = "mtcnn"

    def __init__(
        self,
        *,
        min_face_size: float = 20.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        max_side: int | None = 640,
        weights_dir: str | os.PathLike | None = None,
        batch_size: int = 512,
    ) -> None:
        if min_face_size < 12:
            raise ConfigError(f"min_face_size must be >= 12 px (P-Net's window), got {min_face_size}")
        if not 0.1 < scale_factor < 1:
            raise ConfigError(f"scale_factor must be in (0.1, 1), got {scale_factor}")
        if len(thresholds) != 3 or not all(0 <= t <= 1 for t in thresholds):
            raise ConfigError(f"thresholds must be three probabilities, got {thresholds}")
        if max_side is not None and max_side < 24:
            raise ConfigError(f"max_side must be >= 24 or None, got {max_side}")
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.max_side = max_side
        self.batch_size = int(batch_size)
        self.pnet, self.rnet, self.onet = load_mtcnn_nets(weights_dir)
        _optimize_for_cpu(self.pnet, self.rnet, self.onet)

    def __repr__(self) -> str:
        return (
            f"MTCNNDetector(min_face_size={self.min_face_size:g}, thresholds={self.thresholds}, "
            f"scale_factor={self.scale_factor:g}, max_side={self.max_side})"
        )

    def _scales(self, h: int, w: int) -> list[float]:
        m = 12.0 / self.min_face_size
        min_len = min(h, w) * m
        scales = []
        s = m
        while min_len >= 12:
            scales.append(s)
            s *= self.scale_factor
            min_len *= self.scale_factor
        return scales

    def _pyramid(self, image_f: np.ndarray) -> list[_Level]:
        """Full-resolution level, then the P-Net scales, each level area-resized from the previous one."""
        h, w = image_f.shape[:2]
        levels = [_Level(1.0, 1.0, 1.0, image_f)]
        src = image_f
        for s in self._scales(h, w):
            hs, ws = int(math.ceil(h * s)), int(math.ceil(w * s))
            src = cv2.resize(src, (ws, hs), interpolation=cv2.INTER_AREA)
            levels.append(_Level(s, ws / w, hs / h, src))
        return levels

    def _stage1(self, levels: list[_Level]) -> np.ndarray:
        """P-Net over the pyramid -> ``(N, 5)`` square candidate boxes + score in frame pixels."""
        t0 = self.thresholds[0]
        per_scale = []
        for lv in levels[1:]:
            x = torch.from_numpy(lv.image).permute(2, 0, 1).unsqueeze(0)
            reg, prob = self.pnet(x)
            prob = prob[0]
            ys, xs = torch.nonzero(prob > t0, as_tuple=True)
            if ys.numel() == 0:
                continue
            score = prob[ys, xs]
            offsets = reg[0, :, ys, xs].T
            # Window of each output cell: stride 2, size 12, in pyramid pixels -> frame pixels.
            win = torch.stack([xs * 2, ys * 2, xs * 2 + 12, ys * 2 + 12], dim=1).float() / lv.scale
            keep = nms(win, score, 0.5)
            per_scale.append(torch.cat([win[keep], score[keep, None], offsets[keep]], dim=1))
        if not per_scale:
            return np.zeros((0, 5), dtype=np.float32)
        cand = torch.cat(per_scale).numpy()
        keep = nms(torch.from_numpy(cand[:, :4]), torch.from_numpy(cand[:, 4]), 0.7).numpy()
        cand = cand[keep]
        boxes = _square(_regress(cand[:, :4], cand[:, 5:9]))
        return np.concatenate([boxes, cand[:, 4:5]], axis=1)

    def _run_batched(self, net: nn.Module, patches: torch.Tensor) -> list[torch.Tensor]:
        outs = [net(patches[i : i + self.batch_size]) for i in range(0, patches.shape[0], self.batch_size)]
        return [torch.cat(parts) for parts in zip(*outs, strict=True)]

    def _stage2(self, levels: list[_Level], cand: np.ndarray) -> np.ndarray:
        reg, prob = self._run_batched(self.rnet, _crop_patches(levels, cand[:, :4], 24))
        ok = (prob > self.thresholds[1]).numpy()
        if not ok.any():
            return np.zeros((0, 5), dtype=np.float32)
        boxes, score, reg = cand[ok, :4], prob.numpy()[ok], reg.numpy()[ok]
        keep = nms(torch.from_numpy(boxes), torch.from_numpy(score), 0.7).numpy()
        boxes = _square(_regress(boxes[keep], reg[keep]))
        return np.concatenate([boxes, score[keep, None]], axis=1)

    def _stage3(self, levels: list[_Level], cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reg, lms, prob = self._run_batched(self.onet, _crop_patches(levels, cand[:, :4], 48))
        ok = (prob > self.thresholds[2]).numpy()
        if not ok.any():
            return np.zeros((0, 5), dtype=np.float32), np.zeros((0, 5, 2), dtype=np.float32)
        boxes, score, reg, lms = cand[ok, :4], prob.numpy()[ok], reg.numpy()[ok], lms.numpy()[ok]
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        lm = np.stack([boxes[:, 0:1] + lms[:, 0:5] * w, boxes[:, 1:2] + lms[:, 5:10] * h], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms(torch.from_numpy(boxes), torch.from_numpy(score), 0.7, mode="min").numpy()
        return np.concatenate([boxes[keep], score[keep, None]], axis=1), lm[keep]

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one RGB ``uint8`` frame ``(H, W, 3)``, by decreasing O-Net probability.

        Boxes (clipped to the frame) and landmarks are in pixels of ``frame``.

        Raises:
            ConfigError: ``frame`` is not an ``(H, W, 3)`` uint8 array.
        """
        frame = _check_frame(frame)
        H, W = frame.shape[:2]
        small, s = _downscale(frame, self.max_side)
        image_f = (small.astype(np.float32) - 127.5) * (1.0 / 128.0)
        with torch.inference_mode():
            levels = self._pyramid(image_f)
            cand = self._stage1(levels)
            if len(cand):
                cand = self._stage2(levels, cand)
            if not len(cand):
                return []
            final, lms = self._stage3(levels, cand)
        out = []
        for row, lm in zip(final, lms, strict=True):
            box = _clip_box(row[:4] / s, W, H)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            out.append(Detection(box, float(row[4]), lm / s))
        return out


# --------------------------------------------------------------------------------------------------------------------
# YuNet
# --------------------------------------------------------------------------------------------------------------------

YUNET_FILENAME = "face_detection_yunet_2023mar.onnx"
YUNET_URL = "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/" + YUNET_FILENAME
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


def default_cache_dir() -> Path:
    """``$EMOCONTEXT_CACHE`` if set, else ``~/.cache/emocontext``."""
    env = os.environ.get("EMOCONTEXT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "emocontext"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``dest`` atomically (temporary file + ``os.replace``) if its SHA-256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        h.update(chunk)
                        out.write(chunk)
            except OSError as e:  # URLError, HTTPError and timeouts are OSErrors
                raise WeightsError(f"cannot download {url}: {e}") from e
        digest = h.hexdigest()
        if digest != sha256:
            raise WeightsError(f"download of {url} has SHA-256 {digest}, expected {sha256}; not saved")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def resolve_yunet_weights(path: str | os.PathLike | None = None, *, download: bool = False) -> Path:
    """Find the YuNet ONNX file (``face_detection_yunet_2023mar.onnx``).

    Looked for, in order:

    1. ``path`` if given (must exist);
    2. ``$EMOCONTEXT_YUNET`` if set (must exist);
    3. ``<cache>/face_detection_yunet_2023mar.onnx`` with ``<cache>`` = ``$EMOCONTEXT_CACHE`` or
       ``~/.cache/emocontext``, accepted only if its SHA-256 is :data:`YUNET_SHA256`;
    4. only when ``download=True``: fetched from :data:`YUNET_URL` (opencv_zoo, MIT licence) into the cache,
       checked against :data:`YUNET_SHA256` and written atomically.

    Returns:
        Path of the ONNX file.

    Raises:
        WeightsError: not found (with the ways to provide it), the cached file fails its checksum, or the download
            fails or fails its checksum.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsError(f"YuNet weights not found at {p}")
        return p
    env = os.environ.get("EMOCONTEXT_YUNET")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise WeightsError(f"YuNet weights not found at $EMOCONTEXT_YUNET={p}")
        return p
    cached = default_cache_dir() / YUNET_FILENAME
    if cached.is_file():
        digest = _sha256(cached)
        if digest == YUNET_SHA256:
            return cached
        if not download:
            raise WeightsError(
                f"cached YuNet weights {cached} have SHA-256 {digest}, expected {YUNET_SHA256}: delete the file "
                "or fetch it again with download=True"
            )
    if download:
        return _download(YUNET_URL, cached, YUNET_SHA256)
    raise WeightsError(
        f"YuNet weights ({YUNET_FILENAME}) not found. Give a path, set EMOCONTEXT_YUNET, put the file at {cached}, "
        f"or allow the download (download=True) from {YUNET_URL}"
    )


class YuNetDetector:
    """YuNet face detector (Wu, Peng and Yu, Machine Intelligence Research 2023) via ``cv2.FaceDetectorYN``.

    Args:
        weights: path of the ONNX file; default resolved by :func:`resolve_yunet_weights`.
        download: allow fetching the file (URL + SHA-256) when it is nowhere local.
        score_threshold: minimum face score in ``[0, 1]``.
        nms_threshold: IoU of YuNet's own NMS.
        top_k: number of candidates kept before NMS.
        max_side: frames whose long side exceeds this are downscaled for detection; None for full resolution.

    Raises:
        WeightsError: weights not found, or OpenCV cannot load them.
    """

    name = "yunet"

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        download: bool = False,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        max_side: int | None = 640,
    ) -> None:
        if not 0 <= score_threshold <= 1:
            raise ConfigError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.weights = resolve_yunet_weights(weights, download=download)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_side = max_side
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(self.weights), "", (320, 320), float(score_threshold), float(nms_threshold), int(top_k)
            )
        except cv2.error as e:
            raise WeightsError(f"OpenCV cannot load YuNet from {self.weights}: {e}") from e
        self._size: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return (
            f"YuNetDetector(weights={self.weights.name!r}, score_threshold={self.score_threshold}, "
            f"nms_threshold={self.nms_threshold}, max_side={self.max_side})"
        )

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one RGB ``uint8`` frame ``(H, W, 3)``, most confident first (boxes clipped to the frame).

        Raises:
            ConfigError: ``frame`` is not an ``(H, W, 3)`` uint8 array.
        """
        frame = _check_frame(frame)
        H, W = frame.shape[:2]
        small, s = _downscale(frame, self.max_side)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, faces = self._net.detect(bgr)
        if faces is None:
            return []
        out = []
        for f in faces:
            x, y, w, h = (float(v) for v in f[:4])
            box = _clip_box((x / s, y / s, (x + w) / s, (y + h) / s), W, H)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            out.append(Detection(box, float(f[14]), f[4:14].reshape(5, 2) / s))
        out.sort(key=lambda d: -d.score)
        return out


# --------------------------------------------------------------------------------------------------------------------
# Haar and dlib
# --------------------------------------------------------------------------------------------------------------------


def _cascade_classifier_class():
    """``cv2.CascadeClassifier`` (OpenCV 4) or its OpenCV 5 home in opencv-contrib (``cv2.xobjdetect``), or None."""
    cls = getattr(cv2, "CascadeClassifier", None)
    if cls is None:
        cls = getattr(getattr(cv2, "xobjdetect", None), "CascadeClassifier", None)
    return cls


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (Viola and Jones 2001). Fast, no landmarks, weak on in-the-wild faces.

    OpenCV 5 moved ``CascadeClassifier`` and the cascade files to opencv-contrib (``xobjdetect``); with the plain
    ``opencv-python-headless`` 5.x this backend is unavailable and says so.

    Args:
        cascade: path of the cascade XML; default ``haarcascade_frontalface_default.xml`` from ``cv2.data``.
        scale_factor: pyramid step of ``detectMultiScale``.
        min_neighbors: overlapping hits needed to keep a face.
        min_size: smallest face, in pixels of the detection frame.
        max_side: frames whose long side exceeds this are downscaled for detection; None for full resolution.

    The cascade gives no confidence: every score is 1.0.

    Raises:
        ConfigError: this OpenCV build has no cascade classifier.
        WeightsError: the cascade file is missing or unreadable.
    """

    name = "haar"

    def __init__(
        self,
        cascade: str | os.PathLike | None = None,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 20,
        max_side: int | None = 640,
    ) -> None:
        cls = _cascade_classifier_class()
        if cls is None:
            raise ConfigError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 moved it to opencv-contrib): "
                "pip install 'opencv-python-headless<5', or use another detector ('mtcnn', 'yunet')"
            )
        if cascade is None:
            data_dir = getattr(getattr(cv2, "data", None), "haarcascades", "")
            cascade = Path(data_dir) / "haarcascade_frontalface_default.xml"
        path = Path(cascade)
        if not path.is_file():
            raise WeightsError(f"Haar cascade file not found: {path}")
        self._cascade = cls(str(path))
        if self._cascade.empty():
            raise WeightsError(f"OpenCV cannot load the Haar cascade {path}")
        self.cascade = path
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.max_side = max_side

    def __repr__(self) -> str:
        return (
            f"HaarDetector(cascade={self.cascade.name!r}, scale_factor={self.scale_factor}, "
            f"min_neighbors={self.min_neighbors}, min_size={self.min_size}, max_side={self.max_side})"
        )

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one RGB ``uint8`` frame ``(H, W, 3)``, largest first (all scores 1.0).

        Raises:
            ConfigError: ``frame`` is not an ``(H, W, 3)`` uint8 array.
        """
        frame = _check_frame(frame)
        H, W = frame.shape[:2]
        small, s = _downscale(frame, self.max_side)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        rects = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size,) * 2
        )
        out = [
            Detection(_clip_box((x / s, y / s, (x + w) / s, (y + h) / s), W, H), 1.0)
            for (x, y, w, h) in np.asarray(rects).reshape(-1, 4)
        ]
        out.sort(key=lambda d: -d.area)
        return out


class DlibHOGDetector:
    """dlib's HOG + linear SVM frontal face detector (Dalal and Triggs 2005; King, dlib). No landmarks.

    Args:
        upsample: times the frame is doubled before detection (finds smaller faces, ~4x slower each).
        max_side: frames whose long side exceeds this are downscaled for detection; None for full resolution.

    Scores are dlib's SVM margins (> 0 for a detection), not probabilities.

    Raises:
        ConfigError: dlib is not installed (``pip install emocontext[dlib]``).
    """

    name = "dlib"

    def __init__(self, *, upsample: int = 1, max_side: int | None = 640) -> None:
        try:
            import dlib
        except ImportError as e:
            raise ConfigError("the 'dlib' face detector needs dlib: pip install 'emocontext[dlib]'") from e
        self._detector = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.max_side = max_side

    def __repr__(self) -> str:
        return f"DlibHOGDetector(upsample={self.upsample})"

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one RGB ``uint8`` frame ``(H, W, 3)``, most confident first.

        Raises:
            ConfigError: ``frame`` is not an ``(H, W, 3)`` uint8 array.
        """
        frame = _check_frame(frame)
        H, W = frame.shape[:2]
        small, s = _downscale(frame, self.max_side)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(small), self.upsample, 0.0)
        out = []
        for r, sc in zip(rects, scores, strict=True):
            box = _clip_box((r.left() / s, r.top() / s, (r.right() + 1) / s, (r.bottom() + 1) / s), W, H)
            if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                out.append(Detection(box, float(sc)))
        out.sort(key=lambda d: -d.score)
        return out


_DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "mtcnn": MTCNNDetector,
    "yunet": YuNetDetector,
    "haar": HaarDetector,
    "dlib": DlibHOGDetector,
}


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return list(_DETECTORS)


class GivenBoxDetector:
    """Not a detector: returns a box the dataset gives (ExpW, CAER-S annotations) for every frame.

    Args:
        box: ``(x1, y1, x2, y2)`` in pixels of the frames it will see.
        score: reported detection score.
    """

    name = "given_box"

    def __init__(self, box: Sequence[float], score: float = 1.0):
        self.box = tuple(float(v) for v in box)
        self.score = float(score)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = _check_frame(frame).shape[:2]
        return [Detection(_clip_box(self.box, w, h), self.score)]


class WholeFrameDetector:
    """Not a detector (``--detector none``): every frame IS the face, as in pre-cropped or aligned face datasets.

    Returns the whole frame as the box. :func:`~emocontext.video.pipeline.video_streams` then feeds the
    frame to the face CNN as it is, with no margin and no resize to the usual crop size, so a folder of
    FER2013 images gets exactly what the face CNN's own evaluation reads (deepface calls this
    ``detector_backend="skip"``).
    """

    name = "none"
    whole_frame = True

    def detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = _check_frame(frame).shape[:2]
        return [Detection((0.0, 0.0, float(w), float(h)), 1.0)]


_DETECTORS["none"] = WholeFrameDetector


def create_detector(name: str = "mtcnn", **kwargs) -> FaceDetector:
    """Build a face detector by name: ``"mtcnn"`` (default, offline), ``"yunet"``, ``"haar"``, ``"dlib"``, or
    ``"none"`` (:class:`WholeFrameDetector`: the frame is the face).

    Keyword arguments go to the backend's constructor (see :class:`MTCNNDetector`, :class:`YuNetDetector`,
    :class:`HaarDetector`, :class:`DlibHOGDetector`).

    Raises:
        ConfigError: unknown name or option; dlib missing.
        WeightsError: the backend's weights cannot be found or loaded.
    """
    key = str(name).strip().lower()
    if key not in _DETECTORS:
        raise ConfigError(f"unknown face detector {name!r}; choose one of: {', '.join(_DETECTORS)}")
    try:
        return _DETECTORS[key](**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad option for face detector {key!r}: {e}") from e


# --------------------------------------------------------------------------------------------------------------------
# Tracking and the subject
# --------------------------------------------------------------------------------------------------------------------


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
    from scipy.optimize import linear_sum_assignment

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
            for i, j in zip(*linear_sum_assignment(cost), strict=True):
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
