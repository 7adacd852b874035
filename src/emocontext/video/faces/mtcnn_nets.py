"""MTCNN's three networks in PyTorch, their Keras weight loader and their export to ONNX.

Zhang, Zhang, Li and Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", IEEE Signal Processing Letters 23(10), 2016. The trained weights are the Keras arrays of the PyPI
package ``mtcnn`` (MIT; :data:`~emocontext.weights.MTCNN_KERAS_WEIGHTS`), whose TensorFlow code is never
imported. The detector (:class:`~.mtcnn.MTCNNDetector`) runs the ONNX graphs that :func:`mtcnn_onnx` makes of
them (shipped as :data:`~emocontext.weights.MTCNN_WEIGHTS`, written by ``scripts/export_onnx.py``), so
prediction does not import torch; this module is for the export and the tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ... import runtime
from ...errors import WeightsError
from ...hub import packaged_path
from ...weights import MTCNN_KERAS_WEIGHTS

__all__ = ["load_mtcnn_nets", "mtcnn_onnx", "STAGES"]

#: The stages in cascade order: (name, input shape of the example used for the export).
STAGES = (("pnet", (1, 3, 37, 51)), ("rnet", (2, 3, 24, 24)), ("onet", (2, 3, 48, 48)))


def _face_probability(logits: torch.Tensor) -> torch.Tensor:
    """Softmax probability of class 1 ("face") of 2-class logits on dim 1, as ``sigmoid(l1 - l0)``."""
    return torch.sigmoid(logits[:, 1] - logits[:, 0])


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
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
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
    (:data:`~emocontext.weights.MTCNN_KERAS_WEIGHTS`, found by :func:`emocontext.hub.packaged_path`)."""
    folder = Path(weights_dir) if weights_dir is not None else packaged_path(MTCNN_KERAS_WEIGHTS)
    if folder is None:
        raise WeightsError(f"{MTCNN_KERAS_WEIGHTS.title}: {MTCNN_KERAS_WEIGHTS.hint}")
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


def mtcnn_onnx(weights_dir: str | os.PathLike | None = None) -> dict[str, bytes]:
    """The three networks as ONNX graphs (opset 17, float32): stage name -> serialised graph.

    Inputs ``x``: P-Net ``(1, 3, H, W)`` (any size), R-Net ``(N, 3, 24, 24)``, O-Net ``(N, 3, 48, 48)``,
    normalised RGB. Outputs as the modules' ``forward``: box offsets, (O-Net) landmarks, face probability.
    """
    graphs = {}
    for (stage, shape), net in zip(STAGES, load_mtcnn_nets(weights_dir), strict=True):
        dynamic = {2: "height", 3: "width"} if stage == "pnet" else {0: "crops"}
        outputs = ["offsets", "landmarks", "probability"] if stage == "onet" else ["offsets", "probability"]
        graphs[stage] = runtime.torch_to_onnx(net, torch.zeros(shape), inputs=["x"], outputs=outputs, dynamic=dynamic)
    return graphs
