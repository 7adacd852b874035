from __future__ import annotations

import pytest

from emocontext.errors import ManifestError
from emocontext.labels import (
    CHEAVD8,
    CKPLUS7,
    EKMAN7,
    RAVDESS8,
    canonical,
    get_label_set,
    label_mapping,
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
