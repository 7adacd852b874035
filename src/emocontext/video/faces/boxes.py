"""Box geometry for face detection and tracking: pairwise IoU (numpy) and non-maximum suppression (numpy)."""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError

__all__ = ["box_iou", "nms"]


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


def _pairwise_overlap(boxes: np.ndarray, others: np.ndarray, mode: str) -> np.ndarray:
    """``(N, M)`` overlap of float32 ``xyxy`` boxes: intersection over union (``"union"``) or over the smaller
    area (``"min"``); 0 where the denominator is 0."""
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    area_o = np.clip(others[:, 2] - others[:, 0], 0, None) * np.clip(others[:, 3] - others[:, 1], 0, None)
    lt = np.maximum(boxes[:, None, :2], others[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    denom = area[:, None] + area_o[None, :] - inter if mode == "union" else np.minimum(area[:, None], area_o[None, :])
    return np.divide(inter, np.maximum(denom, 1e-12), out=np.zeros_like(inter), where=denom > 0)


_NMS_MATRIX_MAX = 4096  # up to this many boxes, NMS computes one N x N overlap matrix; beyond, row by row


def nms(boxes, scores, iou_threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression (the torchvision ``nms`` semantics, plus MTCNN's "min" overlap).

    Boxes are visited by decreasing score (ties in input order); a box is kept unless its overlap with an
    already kept box is strictly greater than ``iou_threshold``. Computed in float32.

    Args:
        boxes: ``(N, 4)`` ``xyxy`` boxes (array-like).
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
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ConfigError(f"nms got {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    n = boxes.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    keep: list[int] = []
    if n <= _NMS_MATRIX_MAX:
        # One overlap matrix, then a cheap sequential pass over its rows.
        over = _pairwise_overlap(boxes, boxes, mode) > iou_threshold
        removed = np.zeros(n, dtype=bool)
        for i in range(n):
            if not removed[i]:
                keep.append(i)
                removed |= over[i]
        return order[np.asarray(keep, dtype=np.int64)]
    remaining = np.arange(n)
    while remaining.size:
        i = int(remaining[0])
        keep.append(i)
        rest = remaining[1:]
        remaining = rest[_pairwise_overlap(boxes[i : i + 1], boxes[rest], mode)[0] <= iou_threshold]
    return order[np.asarray(keep, dtype=np.int64)]
