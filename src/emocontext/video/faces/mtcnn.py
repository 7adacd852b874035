"""MTCNN face detection (:class:`MTCNNDetector`): the cascade of P-Net, R-Net and O-Net, run with ONNX Runtime.

Zhang, Zhang, Li and Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", IEEE Signal Processing Letters 23(10), 2016. The three networks are ONNX graphs shipped with the
package (:data:`~emocontext.weights.MTCNN_WEIGHTS`), made from the Keras arrays of the PyPI package ``mtcnn``
(MIT) by :mod:`.mtcnn_nets` (their torch definitions, for the export and the tests). This module imports
neither torch nor TensorFlow.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from ... import hub, runtime
from ...errors import ConfigError
from ...weights import MTCNN_WEIGHTS
from .base import BaseFaceDetector, Candidate
from .boxes import nms

__all__ = ["MTCNNDetector"]


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


def _crop_patches(levels: list[_Level], boxes: np.ndarray, size: int) -> np.ndarray:
    """Crop ``(N, 4)`` boxes (frame pixels) and resize them to ``size`` x ``size``, batched for R-Net/O-Net.

    Each box is sampled bilinearly (sub-pixel, via one ``cv2.warpAffine`` per box) from the smallest pyramid level
    on which it still spans at least ``size`` pixels, so the last step shrinks by less than 1/0.709 and needs no
    further anti-aliasing; ``levels[0]`` must be the full-resolution image. Parts of a box outside the image are 0
    (mid-grey after normalisation), as in the reference implementation (``tf.image.crop_and_resize``).

    Returns:
        ``(N, 3, size, size)`` float32.
    """
    out = np.zeros((len(boxes), size, size, 3), dtype=np.float32)
    if len(boxes) == 0:
        return out.transpose(0, 3, 1, 2)
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
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


class MTCNNDetector(BaseFaceDetector):
    """MTCNN face detector (Zhang et al., IEEE SPL 2016), the offline default, run with ONNX Runtime.

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
    (anti-aliased, sub-pixel), with mid-grey outside the image; the networks are ONNX graphs run by ONNX Runtime
    (as fast as the torch modules were, measured: 19.6 vs 18.7 ms of CPU time a 480x360 frame, one thread, on a
    loaded machine, with the same boxes; without torch's import).

    Args:
        min_face_size: smallest face searched, in pixels of the (possibly downscaled) detection frame.
        thresholds: P-Net, R-Net, O-Net face-probability thresholds.
        scale_factor: pyramid step (0.709 ~ 1/sqrt(2), halves the area per level).
        max_side: frames whose long side exceeds this are downscaled to it for detection (boxes are scaled back);
            None to always detect at full resolution.
        weights_dir: folder with the three ONNX graphs (:data:`~emocontext.weights.MTCNN_WEIGHTS` ``.files``);
            default ``$EMOCONTEXT_MTCNN``, else the ones shipped in the package.
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
        folder = hub.resolve(MTCNN_WEIGHTS, weights_dir)
        self.pnet, self.rnet, self.onet = (runtime.session(folder / f) for f in MTCNN_WEIGHTS.files)

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
            x = np.ascontiguousarray(lv.image.transpose(2, 0, 1)[None])
            reg, prob = self.pnet.run(None, {"x": x})
            prob = prob[0]
            ys, xs = np.nonzero(prob > t0)
            if ys.size == 0:
                continue
            score = prob[ys, xs]
            offsets = reg[0][:, ys, xs].T
            # Window of each output cell: stride 2, size 12, in pyramid pixels -> frame pixels.
            win = np.stack([xs * 2, ys * 2, xs * 2 + 12, ys * 2 + 12], axis=1).astype(np.float32) / np.float32(lv.scale)
            keep = nms(win, score, 0.5)
            per_scale.append(np.concatenate([win[keep], score[keep, None], offsets[keep]], axis=1))
        if not per_scale:
            return np.zeros((0, 5), dtype=np.float32)
        cand = np.concatenate(per_scale)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        boxes = _square(_regress(cand[:, :4], cand[:, 5:9]))
        return np.concatenate([boxes, cand[:, 4:5]], axis=1)

    def _run_batched(self, net, patches: np.ndarray) -> list[np.ndarray]:
        outs = [net.run(None, {"x": patches[i : i + self.batch_size]}) for i in range(0, len(patches), self.batch_size)]
        return [np.concatenate(parts) for parts in zip(*outs, strict=True)]

    def _stage2(self, levels: list[_Level], cand: np.ndarray) -> np.ndarray:
        reg, prob = self._run_batched(self.rnet, _crop_patches(levels, cand[:, :4], 24))
        ok = prob > self.thresholds[1]
        if not ok.any():
            return np.zeros((0, 5), dtype=np.float32)
        boxes, score, reg = cand[ok, :4], prob[ok], reg[ok]
        keep = nms(boxes, score, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        return np.concatenate([boxes, score[keep, None]], axis=1)

    def _stage3(self, levels: list[_Level], cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reg, lms, prob = self._run_batched(self.onet, _crop_patches(levels, cand[:, :4], 48))
        ok = prob > self.thresholds[2]
        if not ok.any():
            return np.zeros((0, 5), dtype=np.float32), np.zeros((0, 5, 2), dtype=np.float32)
        boxes, score, reg, lms = cand[ok, :4], prob[ok], reg[ok], lms[ok]
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        lm = np.stack([boxes[:, 0:1] + lms[:, 0:5] * w, boxes[:, 1:2] + lms[:, 5:10] * h], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms(boxes, score, 0.7, mode="min")
        return np.concatenate([boxes[keep], score[keep, None]], axis=1), lm[keep]

    def _find(self, image: np.ndarray) -> list[Candidate]:
        """P-Net, R-Net, O-Net on ``image``: boxes with their O-Net probability and landmarks, most probable first."""
        image_f = (image.astype(np.float32) - 127.5) * (1.0 / 128.0)
        levels = self._pyramid(image_f)
        cand = self._stage1(levels)
        if len(cand):
            cand = self._stage2(levels, cand)
        if not len(cand):
            return []
        final, lms = self._stage3(levels, cand)
        return [(row[:4], float(row[4]), lm) for row, lm in zip(final, lms, strict=True)]
