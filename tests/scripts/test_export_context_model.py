"""``scripts/export_context_model.py``: the face weight is chosen on validation and does not pick noise."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def ecm():
    return load_script("export_context_model")


def _one_hot_scores(y: np.ndarray, right: np.ndarray, k: int = 7, confidence: float = 0.6) -> np.ndarray:
    """Scores that put ``confidence`` on the true class where ``right``, on the next class elsewhere."""
    answer = np.where(right, y, (y + 1) % k)
    p = np.full((len(y), k), (1 - confidence) / (k - 1))
    p[np.arange(len(y)), answer] = confidence
    return p


def _val(face_right: np.ndarray, caer_right: np.ndarray, seed: int = 0) -> dict:
    y = np.random.default_rng(seed).integers(0, 7, len(face_right))
    return {"y": y, "face": _one_hot_scores(y, face_right), "caer": _one_hot_scores(y, caer_right, confidence=0.7)}


def test_a_mix_a_few_faces_ahead_is_not_kept(ecm):
    n = 562
    face_right = np.arange(n) < 250
    caer_right = face_right.copy()
    caer_right[250:262] = True  # right on 12 faces the face gets wrong ...
    caer_right[:8] = False  # ... wrong on 8 it gets right: 4 more of 562, noise
    w, why = ecm.choose_face_weight(_val(face_right, caer_right))
    assert why["best_on_grid"] < 1.0  # the bare maximum would have mixed the context in
    assert why["gain_over_face_ci95"][0] <= 0 < why["gain_over_face_ci95"][1]
    assert w == 1.0


def test_a_mix_clearly_ahead_is_kept(ecm):
    n = 562
    face_right = np.arange(n) < 250
    caer_right = np.arange(n) < 350  # 100 more faces right: separated
    w, why = ecm.choose_face_weight(_val(face_right, caer_right))
    assert w == why["best_on_grid"] < 1.0
    assert why["gain_over_face_ci95"][0] > 0
    assert why["val_accuracy_by_face_weight"][w] > why["val_accuracy_by_face_weight"][1.0]


def test_ties_lean_on_the_face(ecm):
    face_right = np.arange(300) < 150
    w, why = ecm.choose_face_weight(_val(face_right, face_right.copy()))
    assert why["best_on_grid"] == 1.0 and w == 1.0
