"""The weights records: the shipped files are the ones recorded, and README and the model card quote the records."""

from __future__ import annotations

import json

import pytest

from emocontext import hub
from emocontext.errors import ConfigError
from emocontext.weights import (
    CONTEXT_MODEL_WEIGHTS,
    FACE_CNN_ONNX_WEIGHTS,
    FACE_CNN_WEIGHTS,
    MTCNN_WEIGHTS,
    YUNET_WEIGHTS,
    Weights,
    get_weights,
    list_weights,
)
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
CARD = (REPO / "src" / "emocontext" / "weights" / "MODEL_CARD.md").read_text()


def test_every_record_by_name():
    names = ["face_cnn", "face_cnn_onnx", "efficientnet_lite0", "efficientnet_lite2", "context_model", "mtcnn"]
    names += ["mtcnn_keras", "yunet"]
    assert list_weights() == names
    for name in list_weights():
        w = get_weights(name)
        assert isinstance(w, Weights) and w.name == name and w.files and w.source and w.licence
        assert w.metrics and w.benchmark and w.preprocessing
        json.dumps(w.to_dict())  # JSON-ready
    with pytest.raises(ConfigError, match="known: face_cnn"):
        get_weights("nope")


def test_records_are_read_only():
    with pytest.raises(AttributeError):
        FACE_CNN_WEIGHTS.licence = "x"
    with pytest.raises(TypeError):
        FACE_CNN_WEIGHTS.metrics["FER2013 PrivateTest accuracy (%)"] = 100.0


@pytest.mark.parametrize(
    "weights",
    [
        FACE_CNN_WEIGHTS,
        get_weights("face_cnn_onnx"),
        get_weights("efficientnet_lite0"),
        CONTEXT_MODEL_WEIGHTS,
        MTCNN_WEIGHTS,
    ],
    ids=lambda w: w.name,
)
def test_installed_files_have_the_recorded_sha256(weights):
    """A retrained or replaced file must come with its record (checksum, and the metrics measured on it)."""
    where = hub.packaged_path(weights)
    assert where is not None
    for name, digest in weights.sha256.items():
        path = where if len(weights.files) == 1 else where / name
        assert hub.sha256(path) == digest, f"{path}: update {weights.name}'s record (sha256 and metrics)"


def test_every_file_of_the_records_is_found_offline(monkeypatch):
    for var in ("EMOCONTEXT_FACE_WEIGHTS", "EMOCONTEXT_CONTEXT_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    for var in ("EMOCONTEXT_MTCNN",):
        monkeypatch.delenv(var, raising=False)
    for name in ("face_cnn", "face_cnn_onnx", "efficientnet_lite0", "context_model", "mtcnn"):
        assert hub.resolve(get_weights(name)).exists(), name


def _quoted(key: str, value) -> list[str]:
    """How a document may write one metric: ``69.4 %`` or ``0.694``; a CI ``[32.2, 37.9]`` or ``[0.322, 0.379]``."""
    if "(%)" in key:
        if isinstance(value, tuple):
            return [f"[{value[0]:.1f}, {value[1]:.1f}]", f"[{value[0] / 100:.3f}, {value[1] / 100:.3f}]"]
        return [f"{value:.1f} %", f"{value / 100:.3f}"]
    if isinstance(value, tuple):
        return [f"[{value[0]:.3f}, {value[1]:.3f}]"]
    return [f"{value:.3f}"]


@pytest.mark.parametrize(
    "document, records",
    [
        ("README.md", [FACE_CNN_WEIGHTS, FACE_CNN_ONNX_WEIGHTS, CONTEXT_MODEL_WEIGHTS, MTCNN_WEIGHTS, YUNET_WEIGHTS]),
        ("MODEL_CARD.md", [FACE_CNN_WEIGHTS, FACE_CNN_ONNX_WEIGHTS, CONTEXT_MODEL_WEIGHTS]),
    ],
)
def test_documents_quote_the_recorded_metrics(document, records):
    text = README if document == "README.md" else CARD
    missing = [
        f"{w.name}: {key} = {value}"
        for w in records
        for key, value in w.metrics.items()
        if not any(q in text for q in _quoted(key, value))
    ]
    assert not missing, f"{document} does not quote: {missing}"
