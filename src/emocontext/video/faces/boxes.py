"""Box geometry for face detection and tracking: pairwise IoU (numpy) and non-maximum suppression (torch)."""

from __future__ import annotations

import numpy as np
import torch

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
