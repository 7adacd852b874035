"""YuNet through OpenCV (:class:`YuNetDetector`) and the resolution of its ONNX file.

Wu, Peng and Yu, "YuNet: A Tiny Millisecond-level Face Detector", Machine Intelligence Research 20, 2023,
run through OpenCV's ``cv2.FaceDetectorYN``. Its ONNX file (opencv_zoo, MIT licence) is resolved by
:func:`emocontext.hub.resolve` of :data:`emocontext.weights.YUNET_WEIGHTS`: a path, ``$EMOCONTEXT_YUNET``, the
cache, or an explicit download checked against its SHA-256.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ...errors import ConfigError, WeightsError
from ...hub import resolve
from ...weights import YUNET_WEIGHTS
from .base import BaseFaceDetector, Candidate

__all__ = ["YuNetDetector"]


class YuNetDetector(BaseFaceDetector):
    """YuNet face detector (Wu, Peng and Yu, Machine Intelligence Research 2023) via ``cv2.FaceDetectorYN``.

    Args:
        weights: path of the ONNX file; default ``$EMOCONTEXT_YUNET``, then the cache
            (:func:`emocontext.hub.resolve` of :data:`~emocontext.weights.YUNET_WEIGHTS`).
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
        self.weights = resolve(YUNET_WEIGHTS, weights, download=download)
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

    def _find(self, image: np.ndarray) -> list[Candidate]:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
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
            out.append(((x, y, x + w, y + h), float(f[14]), f[4:14].reshape(5, 2)))
        return out
