"""Predictor: the context-aware model's explanations, the face-only model, and refusing mismatched weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emocontext.errors import EmoContextError, IncompatibleFeaturesError
from emocontext.features.backbones import ContextExtractor, FaceExtractor
from emocontext.labels import EKMAN7
from emocontext.models import create_model
from emocontext.predict import Predictor
from emocontext.pretrained import export_context_model, load_context_model
from emocontext.video.faces import Detection, GivenBoxDetector
from emocontext.video.pipeline import StreamConfig
from tests.conftest import encode_video, numbered_frames


class FaceInFirstHalf:
    """A face at a fixed box in the first 5 frames only."""

    name = "first_half"

    def __init__(self):
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        return [Detection((20.0, 10.0, 60.0, 50.0), 0.99)] if self.calls <= 5 else []


@pytest.fixture(scope="module")
def extractors():
    return FaceExtractor(), ContextExtractor(spatial=True)


def _extraction(extractors, *, hide_face=True, face_sig=None):
    face, context = extractors
    return {
        "face": face_sig or face.signature,
        "context": context.signature,
        "detector": "mtcnn",
        "streams": StreamConfig(hide_face=hide_face).signature(),
    }


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, extractors):
    torch.manual_seed(0)
    dims = {"face_dim": 1280, "context_dim": 1280}
    net = create_model("caer_net_features", num_classes=len(EKMAN7), **dims)
    ck = tmp_path_factory.mktemp("ck") / "best.pt"
    meta = {"config": {"model": "caer_net_features", "model_kwargs": {}}, "dims": dims, "labels": list(EKMAN7.names)}
    torch.save({"model": net.state_dict(), "meta": meta}, ck)
    return export_context_model(ck, _extraction(extractors), ck.parent / "context.pt", card={"note": "test"})


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return encode_video(tmp_path_factory.mktemp("v") / "clip.mp4", numbered_frames(10), fps=5)


def test_export_round_trip_is_float16_and_loads(model_file):
    blob = torch.load(model_file, weights_only=False)
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    m = load_context_model(model_file)
    assert m.name == "caer_net_features" and m.labels == EKMAN7.names and m.card == {"note": "test"}


def test_context_model_explains_every_frame_and_falls_back_to_context(model_file, video):
    p = Predictor(model="context", detector=FaceInFirstHalf(), context_weights=model_file).predict(video)
    assert p.num_frames == 10 and p.frames_with_face == 5
    assert p.label in EKMAN7.names and abs(sum(p.probabilities.values()) - 1) < 1e-3
    h, w = p.frame_size
    assert p.context_box == [float((w - h) // 2), 0.0, float((w - h) // 2 + h), float(h)]
    for i, f in enumerate(p.frames):
        att = np.array(f.attention)
        assert att.shape == (7, 7) and abs(att.sum() - 1) < 1e-3
        assert abs(sum(f.fusion_weights.values()) - 1) < 1e-3
        assert f.probabilities is not None
        if i < 5:
            assert f.source == "face+context" and f.box is not None and 0 < f.fusion_weights["face"] < 1
        else:
            assert f.source == "context" and f.box is None and f.fusion_weights["face"] == 0
    # the clip is the mean of the frame probabilities
    mean = np.mean([[f.probabilities[k] for k in EKMAN7.names] for f in p.frames], 0)
    assert np.allclose(mean, [p.probabilities[k] for k in EKMAN7.names], atol=1e-3)


def test_context_model_answers_without_any_face(model_file, video):
    p = Predictor(model="context", detector=FaceInFirstHalf(), context_weights=model_file)
    p.detector.calls = 100  # never a face
    pred = p.predict(video)
    assert pred.no_face and pred.label is not None
    assert all(f.source == "context" for f in pred.frames)


def test_face_model_has_no_context_explanations(video):
    pred = Predictor(model="face", detector=GivenBoxDetector((20, 10, 60, 50))).predict(video)
    assert pred.model == "face_cnn_temporal_mean" and pred.context_box is None
    assert all(f.source == "face" and f.attention is None and f.fusion_weights is None for f in pred.frames)


def test_mismatched_extractors_are_refused(tmp_path, extractors, model_file):
    ck = tmp_path / "best.pt"
    blob = torch.load(model_file, weights_only=False)
    meta = {"config": {"model": blob["model"], "model_kwargs": {}}, "dims": blob["dims"], "labels": blob["labels"]}
    torch.save({"model": {k: v.float() for k, v in blob["state_dict"].items()}, "meta": meta}, ck)
    other_face = {**extractors[0].signature, "weights_sha256": "0" * 16}
    bad = export_context_model(ck, _extraction(extractors, face_sig=other_face), tmp_path / "bad.pt")
    with pytest.raises(IncompatibleFeaturesError, match="face CNN"):
        Predictor(model="context", context_weights=bad, detector=FaceInFirstHalf())
    not_hidden = export_context_model(ck, _extraction(extractors, hide_face=False), tmp_path / "nh.pt")
    # a model trained without hiding the face is used without hiding it (its own setting wins)
    assert Predictor(model="context", context_weights=not_hidden, detector=FaceInFirstHalf()).config.hide_face is False


def test_bad_model_files(tmp_path):
    with pytest.raises(EmoContextError, match="no context model file"):
        load_context_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(EmoContextError, match="not a readable model file"):
        load_context_model(tmp_path / "junk.pt")
    with pytest.raises(EmoContextError, match="unknown model"):
        Predictor(model="scene")


def test_shipped_context_model_matches_the_shipped_extractors(extractors, video, monkeypatch):
    """The ExpW model in the package pairs with this install's face CNN and context CNN (re-export it
    with scripts/export_context_model.py after retraining either), answers, and is not the default."""
    shipped = load_context_model()
    shipped.check_extractors(extractors[0].signature, extractors[1].signature, hide_face=True)
    assert shipped.labels == EKMAN7.names
    assert shipped.card["test_accuracy_no_face"] > 1 / len(EKMAN7)  # its context-only path was trained
    monkeypatch.delenv("EMOCONTEXT_CONTEXT_WEIGHTS", raising=False)
    assert Predictor(detector=FaceInFirstHalf()).model_name == "face_cnn_temporal_mean"
    pred = Predictor(model="context", detector=FaceInFirstHalf()).predict(video)
    assert pred.model == "caer_net_features_expw" and pred.label in EKMAN7.names
    assert {f.source for f in pred.frames} == {"face+context", "context"}
