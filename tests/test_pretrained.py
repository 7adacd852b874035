"""The context model file with a face-only model mixed in: exact mixture, effective fusion weights, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emocontext.errors import EmoContextError
from emocontext.labels import EKMAN7
from emocontext.models import create_model
from emocontext.pretrained import export_context_model, load_context_model

DIMS = {"face_dim": 16, "context_dim": 16}


def _checkpoint(path, **kwargs) -> str:
    torch.manual_seed(len(kwargs))
    net = create_model("caer_net_features", num_classes=len(EKMAN7), **DIMS, **kwargs)
    meta = {
        "config": {"model": "caer_net_features", "model_kwargs": kwargs},
        "dims": DIMS,
        "labels": list(EKMAN7.names),
    }
    torch.save({"model": net.state_dict(), "meta": meta}, path)
    return str(path)


def _batch(face_mask) -> dict:
    g = torch.Generator().manual_seed(1)
    t = len(face_mask)
    return {
        "face": torch.randn(1, t, 16, generator=g),
        "context": torch.randn(1, t, 16, 3, 3, generator=g),
        "mask": torch.ones(1, t, dtype=torch.bool),
        "face_mask": torch.tensor([face_mask]),
    }


@pytest.fixture()
def files(tmp_path):
    full = _checkpoint(tmp_path / "full.pt")
    face = _checkpoint(tmp_path / "face.pt", use_context=False, context_attention=False, fusion_attention=False)
    return full, face


def test_face_weight_mixes_frames_with_a_face_only(tmp_path, files):
    full, face = files
    out = export_context_model(full, {"face": {}}, tmp_path / "m.pt", face_checkpoint=face, face_weight=0.3)
    cm = load_context_model(out)
    assert cm.face_weight == pytest.approx(0.3) and cm.face_model is not None
    batch = _batch([True, True, False, True])
    probs, att, fusion = cm.frame_outputs(batch)
    with torch.inference_mode():
        p_caer = cm.model(batch).frame_logits[0].softmax(-1).numpy()
        p_face = cm.face_model(batch).frame_logits[0].softmax(-1).numpy()
        lam = cm.model(batch).fusion_weights[0].numpy()
    has_face = np.array([1, 1, 0, 1], bool)
    np.testing.assert_allclose(probs[has_face], 0.7 * p_caer[has_face] + 0.3 * p_face[has_face], atol=1e-6)
    np.testing.assert_allclose(probs[~has_face], p_caer[~has_face], atol=1e-6)  # no face: the scene alone
    np.testing.assert_allclose(fusion.sum(1), 1, atol=1e-6)
    np.testing.assert_allclose(fusion[has_face, 0], 0.3 + 0.7 * lam[has_face, 0], atol=1e-6)
    assert fusion[2, 0] == 0 and att.shape == (4, 3, 3)


def test_weight_zero_is_caer_net_and_one_is_the_face_model(tmp_path, files):
    full, face = files
    batch = _batch([True, True])
    answers = {}
    for w in (0.0, 1.0):
        cm = load_context_model(
            export_context_model(full, {}, tmp_path / f"{w}.pt", face_checkpoint=face, face_weight=w)
        )
        answers[w] = cm.clip_probabilities(batch).numpy()
        with torch.inference_mode():
            ref = (cm.model if w == 0 else cm.face_model)(batch).logits.softmax(-1).numpy()
        np.testing.assert_allclose(answers[w], ref, atol=1e-6)


def test_files_without_a_face_model_still_load(tmp_path, files):
    cm = load_context_model(export_context_model(files[0], {}, tmp_path / "plain.pt"))
    assert cm.face_model is None and cm.face_weight == 0.0
    probs, _, _ = cm.frame_outputs(_batch([True, False]))
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)


def test_bad_face_weight_and_mismatched_labels_are_refused(tmp_path, files):
    full, face = files
    with pytest.raises(EmoContextError, match="face_weight"):
        export_context_model(full, {}, tmp_path / "x.pt", face_checkpoint=face, face_weight=1.5)
    blob = torch.load(face, weights_only=False)
    blob["meta"]["labels"] = list(reversed(EKMAN7.names))
    torch.save(blob, tmp_path / "other.pt")
    with pytest.raises(EmoContextError, match="labels"):
        export_context_model(full, {}, tmp_path / "y.pt", face_checkpoint=tmp_path / "other.pt", face_weight=0.5)
