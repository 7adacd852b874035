from __future__ import annotations

import numpy as np
import pytest

from emocontext.errors import ManifestError
from emocontext.labels import (
    CHEAVD8,
    CKPLUS7,
    CREMAD6,
    EKMAN7,
    EKMAN8,
    RAVDESS8,
    canonical,
    get_label_set,
    label_mapping,
    restrict_probabilities,
)


def test_canonical_spellings():
    assert [canonical(s) for s in ["Anger", " SADNESS ", "afraid", "Worry", "anxiety", "HAP", "calm"]] == [
        "angry",
        "sad",
        "fear",
        "worried",
        "anxious",
        "happy",
        "calm",
    ]


def test_get_label_set():
    assert get_label_set("EKMAN7") is EKMAN7 and get_label_set(CHEAVD8) is CHEAVD8
    with pytest.raises(ManifestError, match="unknown label set"):
        get_label_set("emotic26")


def test_label_mapping_defaults_and_overrides():
    r = label_mapping(RAVDESS8, EKMAN7)
    assert r["calm"] == "neutral" and r["surprise"] == "surprise" and set(r) == set(RAVDESS8.names)
    assert label_mapping(CKPLUS7, EKMAN7)["contempt"] is None
    c = label_mapping(CHEAVD8, EKMAN7)
    assert "worried" not in c and "anxious" not in c and c["happy"] == "happy"
    c = label_mapping(CHEAVD8, EKMAN7, {"Worry": "Fearful", "anxious": None})
    assert c["worried"] == "fear" and c["anxious"] is None
    assert label_mapping(None, EKMAN7) == {n: n for n in EKMAN7.names}
    with pytest.raises(ManifestError, match=r"'worried' -> 'calm'"):
        label_mapping(CHEAVD8, "ekman7", {"worried": "calm"})


def test_ekman8_extends_ekman7_with_contempt_last():
    assert EKMAN8.names[:7] == EKMAN7.names and EKMAN8.names[7] == "contempt"
    assert label_mapping(EKMAN8, EKMAN7)["contempt"] is None
    assert label_mapping(CKPLUS7, EKMAN8)["contempt"] == "contempt"


def test_restrict_probabilities_maps_contempt_out_and_renormalises():
    p = np.array([[0.1, 0.0, 0.0, 0.2, 0.0, 0.0, 0.2, 0.5], [0, 0, 0, 0, 0, 0, 0, 1.0]])
    q = restrict_probabilities(p, EKMAN8, EKMAN7)
    assert q.shape == (2, 7)
    np.testing.assert_allclose(q[0], [0.2, 0, 0, 0.4, 0, 0, 0.4])
    np.testing.assert_array_equal(q[1], 0)  # nothing left: zeros, not NaN
    six = restrict_probabilities(p[:1], EKMAN8, CREMAD6)
    assert six.shape == (1, 6) and abs(six.sum() - 1) < 1e-9


def test_restrict_probabilities_refuses_missing_classes_and_wrong_width():
    with pytest.raises(ManifestError, match="no contempt"):
        restrict_probabilities(np.ones((1, 7)) / 7, EKMAN7, CKPLUS7)
    with pytest.raises(ManifestError, match="8 columns"):
        restrict_probabilities(np.ones((1, 8)) / 8, EKMAN7, EKMAN7)


def test_one_colour_per_emotion_everywhere():
    """The palette lives in labels.py; the report's plots and the annotated video draw with the same function,
    and the service sends its CSS form (emotion_hex) to the page."""
    from emocontext.labels import EMOTION_COLORS, emotion_color, emotion_hex
    from emocontext.report import annotate, plots

    assert plots.emotion_color is emotion_color and annotate.emotion_color is emotion_color
    assert plots.EMOTION_COLORS is EMOTION_COLORS
    assert emotion_hex("happy") == "#ffaa00" and emotion_hex("Anger") == emotion_hex("angry") == "#d62728"
    names = [*EKMAN8.names, "calm", "worried", "anxious"]
    assert len({emotion_color(n) for n in names}) == len(names)  # no two emotions share a colour
    assert emotion_color("boredom") == emotion_color("boredom") and len(emotion_hex("boredom")) == 7
