"""YuNet through OpenCV (:class:`YuNetDetector`) and the resolution of its ONNX file.

Wu, Peng and Yu, "YuNet: A Tiny Millisecond-level Face Detector", Machine Intelligence Research 20, 2023,
run through OpenCV's ``cv2.FaceDetectorYN``. Its ONNX file (opencv_zoo, MIT licence) is resolved by
:func:`resolve_yunet_weights`: a path, ``$EMOCONTEXT_YUNET``, the cache, or an explicit download checked
against its SHA-256.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ...errors import ConfigError, WeightsError
from ...hub import cache_dir, resolve
from ...weights import YUNET_WEIGHTS
from .base import BaseFaceDetector, Candidate

__all__ = ["YuNetDetector", "resolve_yunet_weights", "default_cache_dir", "YUNET_URL", "YUNET_SHA256", "YUNET_FILENAME"]


#: The file, its source and its checksum, from the record :data:`emocontext.weights.YUNET_WEIGHTS`.
YUNET_FILENAME = YUNET_WEIGHTS.filename
YUNET_URL = YUNET_WEIGHTS.url
YUNET_SHA256 = YUNET_WEIGHTS.sha256[YUNET_FILENAME]

#: The download cache folder (:func:`emocontext.hub.cache_dir`), under its old name.
default_cache_dir = cache_dir


def resolve_yunet_weights(path: str | os.PathLike | None = None, *, download: bool = False) -> Path:
    """Find the YuNet ONNX file (``face_detection_yunet_2023mar.onnx``): :func:`emocontext.hub.resolve` of
    :data:`~emocontext.weights.YUNET_WEIGHTS`.

    Looked for, in order:

    1. ``path`` if given (must exist);
    2. ``$EMOCONTEXT_YUNET`` if set (must exist);
    3. ``<cache>/face_detection_yunet_2023mar.onnx`` with ``<cache>`` = ``$EMOCONTEXT_CACHE`` or
       ``~/.cache/emocontext``, accepted only if its SHA-256 is the record's;
    4. only when ``download=True``: fetched from the record's URL (opencv_zoo, MIT licence) into the cache,
       checked against its SHA-256 and written atomically.

    Returns:
        Path of the ONNX file.

    Raises:
        WeightsError: not found (with the ways to provide it), the cached file fails its checksum, or the download
            fails or fails its checksum.
    """
    return resolve(YUNET_WEIGHTS, path, download=download)


class YuNetDetector(BaseFaceDetector):
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
