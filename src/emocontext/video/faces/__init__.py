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
    run through OpenCV's ``cv2.FaceDetectorYN``. Its ONNX file is found by :func:`emocontext.hub.resolve`
    (a path, ``$EMOCONTEXT_YUNET``, the cache, or an explicit download checked against its SHA-256).
``"haar"`` -> :class:`HaarDetector`
    Viola and Jones (2001) boosted cascade, OpenCV's ``haarcascade_frontalface_default.xml`` (OpenCV 4; OpenCV 5
    moved cascades to opencv-contrib).
``"dlib"`` -> :class:`DlibHOGDetector`
    Dalal and Triggs (2005) HOG + linear SVM as shipped by dlib (the ``dlib`` extra).

Measured recall on 400 ExpW test faces (IoU >= 0.3 with the labelled box) and speed are in
``benchmarks/face_detection_recall.md``.

Tracking: :func:`track_faces` links the detections of consecutive sampled frames into :class:`Track` s
(predicted motion, IoU and appearance; short gaps allowed); :func:`select_subject` keeps the most persistent
one as a :class:`FaceTrack` of fixed length ``T`` whose frames without a face are masked (``present`` False),
never dropped. :func:`detect_track` does detection, tracking and selection in one call.

Modules (one per backend, as PyTorchVideo has one decoder per backend): :mod:`.base` (:class:`Detection`,
the protocol, :class:`BaseFaceDetector`: check, downscale, detect, rescale, sort), :mod:`.boxes` (IoU, NMS),
:mod:`.mtcnn`, :mod:`.yunet`, :mod:`.opencv` (Haar, dlib), :mod:`.tracking`. This package re-exports their
public names and holds the registry (:func:`create_detector`).
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import ConfigError
from .base import BaseFaceDetector, Detection, FaceDetector, GivenBoxDetector, WholeFrameDetector
from .boxes import box_iou, nms
from .mtcnn import MTCNNDetector
from .opencv import DlibHOGDetector, HaarDetector
from .tracking import FaceTrack, Track, appearance_vector, detect_track, select_subject, subject_track, track_faces
from .yunet import YuNetDetector

__all__ = [
    "Detection",
    "FaceDetector",
    "BaseFaceDetector",
    "MTCNNDetector",
    "YuNetDetector",
    "HaarDetector",
    "GivenBoxDetector",
    "DlibHOGDetector",
    "create_detector",
    "list_detectors",
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
]

_DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "mtcnn": MTCNNDetector,
    "yunet": YuNetDetector,
    "haar": HaarDetector,
    "dlib": DlibHOGDetector,
    "none": WholeFrameDetector,
}


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return list(_DETECTORS)


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
