"""Per-frame audio features (librosa) and PCA whitening (Chao et al. 2016, section 3.3)."""

from __future__ import annotations

import dataclasses
import importlib
import json

import numpy as np
import pytest

from emocontext.errors import ConfigError
from emocontext.features import audio as fa
from emocontext.features.audio import (
    EGEMAPS_AUDIO,
    PAPER_AUDIO,
    SPEECH_AUDIO,
    AudioFeatureSpec,
    PCAWhitening,
    audio_features,
)
from tests.conftest import data_path, encode_video, numbered_frames

SR = 16000


def tone(freq: float = 440.0, seconds: float = 1.0, amp: float | np.ndarray = 0.3, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noisy_tone(seed: int = 0, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (tone(220 + 200 * seed, seconds) + 0.05 * rng.standard_normal(int(seconds * SR))).astype(np.float32)


def col(spec: AudioFeatureSpec, name: str) -> int:
    return spec.feature_names.index(name)


def test_paper_framing_shapes_and_times():
    y = noisy_tone(seconds=2.0)
    feats, times = audio_features(y)
    n = 1 + len(y) // PAPER_AUDIO.hop_length  # centred frames
    assert feats.shape == (n, 47) == (n, PAPER_AUDIO.feature_dim)
    assert feats.dtype == np.float32 and np.isfinite(feats).all()
    assert len(PAPER_AUDIO.feature_names) == 47 and len(set(PAPER_AUDIO.feature_names)) == 47
    np.testing.assert_allclose(times, np.arange(n) * 512 / SR)  # frame a centred at a * hop / sr
    assert PAPER_AUDIO.frame_rate == pytest.approx(31.25)
    assert (PAPER_AUDIO.frame_length, PAPER_AUDIO.hop_length, PAPER_AUDIO.fft_size) == (1024, 512, 1024)


def test_speech_framing_is_10_ms():
    feats, times = audio_features(noisy_tone(seconds=0.5), spec=SPEECH_AUDIO)
    assert (SPEECH_AUDIO.frame_length, SPEECH_AUDIO.hop_length, SPEECH_AUDIO.fft_size) == (400, 160, 512)
    assert feats.shape == (1 + 8000 // 160, 47)
    np.testing.assert_allclose(np.diff(times), 0.01)


def test_deltas_follow_a_rising_and_a_falling_amplitude():
    n = SR
    rising = tone(300.0, amp=0.01 * 50 ** (np.arange(n) / n))  # amplitude x50 over one second
    feats, _ = audio_features(rising)
    mid = slice(5, -5)
    e, de, dde = (col(PAPER_AUDIO, k) for k in ("log_energy", "d_log_energy", "dd_log_energy"))
    assert np.all(np.diff(feats[mid, e]) > 0)
    # d/dframe of log power: 2 * ln(50) over 31.25 frames
    np.testing.assert_allclose(feats[mid, de], 2 * np.log(50) / 31.25, rtol=0.05)
    assert np.abs(feats[mid, dde]).max() < 0.02
    falling, _ = audio_features(rising[::-1].copy())
    assert np.all(falling[mid, de] < 0)
    # On broadband noise an amplitude change is a constant shift of the log-mel spectrum: it moves the
    # log energy (and the dropped c0) but not MFCC 1..13 (a pure tone leaves most mel bands at the floor).
    noise = np.random.default_rng(0).standard_normal(n) * 0.01 * 50 ** (np.arange(n) / n)
    nf, _ = audio_features(noise.astype(np.float32))
    np.testing.assert_allclose(nf[mid, de].mean(), 2 * np.log(50) / 31.25, rtol=0.02)
    d1 = col(PAPER_AUDIO, "d_mfcc1")
    assert np.abs(nf[mid, d1 : d1 + 13].mean(0)).max() < 0.3  # vs ~7 per frame for c0


def test_spectral_descriptors_follow_pitch():
    low, _ = audio_features(tone(300.0))
    high, _ = audio_features(tone(3000.0))
    c, r, z = (col(PAPER_AUDIO, k) for k in ("spectral_centroid", "spectral_rolloff", "zcr"))
    nyq = SR / 2
    assert np.median(low[:, c]) * nyq == pytest.approx(300, rel=0.1)
    assert np.median(high[:, c]) * nyq == pytest.approx(3000, rel=0.05)
    assert np.median(high[:, r]) > np.median(low[:, r])
    assert np.median(high[:, z]) == pytest.approx(2 * 3000 / SR, rel=0.05)  # two crossings per period
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    nf, _ = audio_features(noise)
    f = col(PAPER_AUDIO, "spectral_flatness")
    assert np.median(nf[:, f]) > 100 * np.median(low[:, f])


@pytest.mark.filterwarnings("ignore:n_fft=1024 is too large")
def test_silence_short_and_empty_inputs():
    silent, _ = audio_features(np.zeros(SR, np.float32))
    assert np.isfinite(silent).all()
    short, t = audio_features(np.zeros(100, np.float32) + 0.1)
    assert short.shape == (1, 47) and t.tolist() == [0.0]
    empty, t = audio_features(np.zeros(0, np.float32))
    assert empty.shape == (0, 47) and t.shape == (0,)


def test_other_sample_rates_are_resampled():
    feats, times = audio_features(tone(440.0, sr=8000), sample_rate=8000)
    ref, _ = audio_features(tone(440.0))
    assert feats.shape == ref.shape
    c = col(PAPER_AUDIO, "spectral_centroid")
    assert np.median(feats[:, c]) == pytest.approx(np.median(ref[:, c]), rel=0.05)


def test_bad_waveforms_are_config_errors():
    with pytest.raises(ConfigError, match="mono"):
        audio_features(np.zeros((2, 100), np.float32))
    with pytest.raises(ConfigError, match="NaN"):
        audio_features(np.array([0.0, np.nan], np.float32))


def test_spec_validation_and_signature():
    sig = PAPER_AUDIO.signature()
    assert sig["feature_dim"] == 47 and sig["hop_length"] == 512 and sig["frame_length"] == 1024
    json.dumps(sig)
    assert AudioFeatureSpec.speech().signature() != sig
    assert AudioFeatureSpec(delta_order=0, spectral=False).feature_dim == 14
    assert AudioFeatureSpec(drop_c0=False).feature_names[1] == "mfcc0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER_AUDIO.hop_length = 160
    for bad in ({"hop_length": 0}, {"delta_order": 3}, {"delta_width": 4}, {"fmax": 9000.0}, {"backend": "yaafe"}):
        with pytest.raises(ConfigError):
            AudioFeatureSpec(**bad)
    assert EGEMAPS_AUDIO.feature_dim == 25 and EGEMAPS_AUDIO.signature()["feature_set"] == "eGeMAPSv02"


def test_opensmile_backend_without_the_package_says_how_to_install(monkeypatch):
    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "opensmile":
            raise ImportError("No module named 'opensmile'")
        return real(name, *a, **k)

    monkeypatch.setattr(fa.importlib, "import_module", fake)
    with pytest.raises(ConfigError, match="pip install opensmile"):
        audio_features(tone(), spec=EGEMAPS_AUDIO)


def test_path_input_decodes_the_audio_track(tmp_path):
    y = noisy_tone(seconds=1.0)
    path = encode_video(tmp_path / "a.mp4", numbered_frames(5, 32, 32), fps=5, audio=y)
    feats, times = audio_features(path)
    ref, _ = audio_features(y)
    assert feats.shape[1] == 47 and abs(len(feats) - len(ref)) <= 2
    c = col(PAPER_AUDIO, "spectral_centroid")
    assert np.median(feats[:, c]) == pytest.approx(np.median(ref[:, c]), rel=0.1)


# ---------------------------------------------------------------------------------------------
# PCA whitening
# ---------------------------------------------------------------------------------------------


def test_pca_whitening_gives_identity_covariance_on_training_data(tmp_path):
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((8, 8)) * np.array([100, 10, 1, 1, 0.1, 0.1, 0.01, 0.001])  # very unequal scales
    x = rng.standard_normal((3000, 8)) @ mix + 5.0
    pca = PCAWhitening(n_components=50).fit(x)
    assert pca.output_dim == 8 == pca.input_dim  # capped at D
    z = pca.transform(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(8), atol=1e-4)
    np.testing.assert_allclose(pca.inverse_transform(z), x, rtol=1e-4, atol=1e-3)
    assert np.all(np.diff(pca.variance) <= 0)

    kept = PCAWhitening(n_components=3).fit(x)
    np.testing.assert_allclose(np.cov(kept.transform(x), rowvar=False), np.eye(3), atol=1e-4)

    path = pca.save(tmp_path / "pca" / "audio_pca.npz")
    again = PCAWhitening.load(path)
    np.testing.assert_array_equal(again.transform(x[:5]), z[:5])
    assert again.n_samples == 3000


def test_pca_whitening_on_audio_features_of_several_clips():
    clips = [audio_features(noisy_tone(seed, seconds=1.5))[0] for seed in range(4)]
    pca = PCAWhitening().fit(clips)  # a list of (T_i, D) arrays: all their frames
    assert pca.n_samples == sum(len(c) for c in clips) and pca.output_dim == 47
    z = pca.transform(np.concatenate(clips))
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(47), atol=1e-3)
    assert pca.transform(clips[0][None]).shape == (1, len(clips[0]), 47)  # any leading shape


def test_pca_whitening_errors():
    pca = PCAWhitening()
    with pytest.raises(ConfigError, match="not fitted"):
        pca.transform(np.zeros((2, 3)))
    pca.fit(np.random.default_rng(0).standard_normal((10, 3)))
    with pytest.raises(ConfigError, match="3-d"):
        pca.transform(np.zeros((2, 4)))
    with pytest.raises(ConfigError):
        PCAWhitening().fit(np.zeros((1, 3)))
    with pytest.raises(ConfigError):
        PCAWhitening(n_components=0)


@pytest.mark.realdata
def test_real_clip_audio_features():
    from emocontext.video.decode import read_audio

    path = data_path("videos", "crema-d", "1001_DFA_HAP_XX.flv")
    y = read_audio(path, sample_rate=SR)
    feats, times = audio_features(y)
    assert len(y) > SR // 2  # CREMA-D sentences last about 2-3 s
    assert feats.shape == (1 + len(y) // 512, 47) and np.isfinite(feats).all()
    assert times[-1] == pytest.approx(len(y) / SR, abs=0.05)
    e = col(PAPER_AUDIO, "log_energy")
    assert feats[:, e].max() - feats[:, e].min() > 5  # speech and pauses
    same, _ = audio_features(path)
    np.testing.assert_allclose(same, feats, rtol=1e-5, atol=1e-4)
