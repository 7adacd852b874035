"""OpenCV's Haar cascade (:class:`HaarDetector`) and dlib's HOG detector (:class:`DlibHOGDetector`).

Viola and Jones (2001) boosted cascade, OpenCV's ``haarcascade_frontalface_default.xml`` (OpenCV 4; OpenCV 5
moved cascades to opencv-contrib); Dalal and Triggs (2005) HOG + linear SVM as shipped by dlib (the ``dlib``
extra). Neither gives landmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ...errors import ConfigError, WeightsError
from .base import BaseFaceDetector, Candidate

__all__ = ["HaarDetector", "DlibHOGDetector"]


def _cascade_classifier_class():
    """``cv2.CascadeClassifier`` (OpenCV 4) or its OpenCV 5 home in opencv-contrib (``cv2.xobjdetect``), or None."""
    cls = getattr(cv2, "CascadeClassifier", None)
    if cls is None:
        cls = getattr(getattr(cv2, "xobjdetect", None), "CascadeClassifier", None)
    return cls


class HaarDetector(BaseFaceDetector):
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
    order = "area"  # the cascade gives no confidence: largest first

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

    def _find(self, image: np.ndarray) -> list[Candidate]:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size,) * 2
        )
        return [((x, y, x + w, y + h), 1.0, None) for (x, y, w, h) in np.asarray(rects).reshape(-1, 4)]


class DlibHOGDetector(BaseFaceDetector):
    """dlib's HOG + linear SVM frontal face detector (Dalal and Triggs 2005; King, dlib). No landmarks.

    Args:
        upsample: times the frame is doubled before detection (finds smaller faces, ~4x slower each).
        max_side: frames whose long side exceeds this are downscaled for detection; None for full resolution.

    Scores are dlib's SVM margins (> 0 for a detection), not probabilities.

    Raises:
        ConfigError: dlib is not installed (``pip install dlib-bin``, prebuilt wheels of dlib, or the ``dlib``
            extra of a checkout: ``pip install -e ".[dlib]"``).
    """

    name = "dlib"

    def __init__(self, *, upsample: int = 1, max_side: int | None = 640) -> None:
        try:
            import dlib
        except ImportError as e:
            raise ConfigError(
                "the 'dlib' face detector needs dlib: pip install dlib-bin (prebuilt dlib wheels; from a checkout "
                "of emocontext: pip install -e '.[dlib]')"
            ) from e
        self._detector = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.max_side = max_side

    def __repr__(self) -> str:
        return f"DlibHOGDetector(upsample={self.upsample})"

    def _find(self, image: np.ndarray) -> list[Candidate]:
        rects, scores, _ = self._detector.run(np.ascontiguousarray(image), self.upsample, 0.0)
        return [
            ((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(sc), None)
            for r, sc in zip(rects, scores, strict=True)
        ]
