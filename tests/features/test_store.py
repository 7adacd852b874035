from __future__ import annotations

import json

import numpy as np
import pytest

from emocontext.errors import EmoContextError, IncompatibleFeaturesError
from emocontext.features.store import FeatureStore, Record, atomic_write_bytes, record_key

SIG = {"face": {"name": "f", "version": "1"}, "context": {"name": "c", "version": "1"}, "streams": {"fps": 5.0}}


def _record(t=4, spatial=False):
    rng = np.random.default_rng(t)
    ctx = rng.normal(size=(t, 8, 2, 2) if spatial else (t, 8)).astype(np.float32)
    return Record(
        face=rng.normal(size=(t, 6)).astype(np.float32),
        face_probs=np.full((t, 7), 1 / 7, np.float32),
        face_map=rng.normal(size=(t, 6, 2, 2)).astype(np.float32),
        context=ctx,
        face_present=np.array([True, False] * (t // 2)),
        timestamps=np.arange(t) * 0.2,
        boxes=np.zeros((t, 4), np.float32),
        meta={"path": "/x/a.mp4", "label": "happy"},
    )


def test_roundtrip(tmp_path):
    store = FeatureStore(tmp_path / "s", SIG)
    rec = _record(spatial=True)
    store.put("/x/a.mp4", rec)
    assert "/x/a.mp4" in store and len(store) == 1
    got = FeatureStore(tmp_path / "s").get("/x/a.mp4")
    np.testing.assert_allclose(got.face, rec.face, atol=1e-2)
    assert got.context.shape == (4, 8, 2, 2) and got.context.dtype == np.float32
    assert got.face_present.tolist() == rec.face_present.tolist()
    assert got.meta["label"] == "happy" and got.meta["clip_id"] == "/x/a.mp4"
    assert store.clip_ids() == ["/x/a.mp4"]


def test_refuses_other_extractors(tmp_path):
    FeatureStore(tmp_path / "s", SIG)
    other = json.loads(json.dumps(SIG))
    other["context"]["version"] = "2"
    with pytest.raises(IncompatibleFeaturesError, match="context"):
        FeatureStore(tmp_path / "s", other)


def test_open_missing_store_is_clear(tmp_path):
    with pytest.raises(EmoContextError, match="not a feature store"):
        FeatureStore(tmp_path / "nothing")


def test_keys_are_safe_and_distinct():
    a, b = record_key("/data/x y/clip.mp4"), record_key("/data/x_y/clip.mp4")
    assert a != b and "/" not in a and " " not in a


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "r.npz"

    class Boom(Exception):
        pass

    def fail(*a, **k):
        raise Boom

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(Boom):
        atomic_write_bytes(target, b"x" * 100)
    assert list(tmp_path.iterdir()) == []


def test_failures_are_logged(tmp_path):
    store = FeatureStore(tmp_path / "s", SIG)
    store.log_failure("a", "/x/a.mp4", "broken")
    line = json.loads((tmp_path / "s" / "failures.jsonl").read_text().splitlines()[0])
    assert line["error"] == "broken"


def _with_audio(rec, t_a=7, d_a=5):
    rng = np.random.default_rng(t_a)
    rec.audio = (rng.normal(size=(t_a, d_a)) * [100, 1, 1e-3, 1e-6, 0]).astype(np.float32)
    rec.audio_timestamps = 0.2 + np.arange(t_a) * 0.032
    return rec


def test_roundtrip_with_audio_keeps_float32(tmp_path):
    store = FeatureStore(tmp_path / "s", {**SIG, "audio": {"name": "librosa_lld", "feature_dim": 5}})
    assert store.has_audio
    rec = _with_audio(_record())
    store.put("a", rec)
    empty = _with_audio(_record(), t_a=0)  # a clip without an audio track
    store.put("b", empty)
    got = FeatureStore(tmp_path / "s").get("a")
    assert got.has_audio and got.audio.dtype == np.float32 and got.audio_timestamps.dtype == np.float64
    np.testing.assert_array_equal(got.audio, rec.audio)  # exact: tiny spectral values survive
    np.testing.assert_array_equal(got.audio_timestamps, rec.audio_timestamps)
    b = store.get("b")
    assert b.audio.shape == (0, 5) and b.audio_timestamps.shape == (0,) and len(b) == 4


def test_records_without_audio_still_load(tmp_path):
    store = FeatureStore(tmp_path / "s", SIG)  # as before audio existed: no "audio" in the signature
    assert not store.has_audio
    store.put("a", _record())
    got = store.get("a")
    assert got.audio is None and got.audio_timestamps is None and not got.has_audio


def test_put_checks_the_audio_arrays(tmp_path):
    store = FeatureStore(tmp_path / "s", SIG)
    half = _record()
    half.audio = np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError, match="together"):
        store.put("a", half)
    bad = _with_audio(_record())
    bad.audio_timestamps = bad.audio_timestamps[:-1]
    with pytest.raises(ValueError, match="T_a"):
        store.put("a", bad)
    assert "a" not in store


def test_refuses_to_mix_audio_and_no_audio(tmp_path):
    with_audio = {**SIG, "audio": {"name": "librosa_lld", "hop_length": 512}}
    FeatureStore(tmp_path / "a", with_audio)
    with pytest.raises(IncompatibleFeaturesError, match="audio"):
        FeatureStore(tmp_path / "a", SIG)
    with pytest.raises(IncompatibleFeaturesError, match="hop_length"):
        FeatureStore(tmp_path / "a", {**SIG, "audio": {"name": "librosa_lld", "hop_length": 160}})
    FeatureStore(tmp_path / "plain", SIG)
    with pytest.raises(IncompatibleFeaturesError, match="audio"):
        FeatureStore(tmp_path / "plain", with_audio)
