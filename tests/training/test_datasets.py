"""FeatureSequenceDataset and collate with audio: cropping to the frames' span, padding, masks, PCA whitening."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emocontext.data.manifest import ClipEntry
from emocontext.errors import ConfigError
from emocontext.features.audio import PCAWhitening
from emocontext.features.store import FeatureStore
from emocontext.labels import EKMAN7
from emocontext.training.datasets import FeatureSequenceDataset, as_whitening, collate, fit_audio_whitening
from tests.conftest import feature_record

FPS, HOP = 5.0, 0.032
SIG = {"face": {"name": "synthetic"}, "context": {"name": "synthetic"}}
AUDIO_SIG = {**SIG, "audio": {"name": "synthetic", "feature_dim": 6}}


def audio_store(root, n=12, d=8, d_a=6, seed=0, audio=True, silent=()):
    """Clips of 3..8 frames at 5 fps from 0.4 s; audio frames every 32 ms over the same span.

    The label (0..2) of clip ``i`` is ``i % 3``; its audio is high in column ``label`` (and has
    very unequal column scales, as raw librosa features do). Clips in ``silent`` have 0 audio frames.
    Column ``d_a - 1`` of the audio holds the frame's time, so tests can see which frames a sample got.
    """
    rng = np.random.default_rng(seed)
    store = FeatureStore(root, AUDIO_SIG if audio else SIG)
    entries = []
    for i in range(n):
        y = i % 3
        t = int(rng.integers(3, 9))
        ts = 0.4 + np.arange(t) / FPS
        t_a = 0 if i in silent else 1 + int(round(t / FPS / HOP))
        a_times = ts[0] + np.arange(t_a) * HOP
        a = rng.normal(size=(t_a, d_a)) * np.array([100.0, 10, 1, 0.1, 0.01, 0])[:d_a]
        a[:, y] += 3 * [100.0, 10, 1][y]
        a[:, -1] = a_times
        present = rng.random(t) > 0.3
        split = "train" if i < n * 2 // 3 else "val"
        e = ClipEntry(f"/synthetic/av{i}.mp4", EKMAN7.names[y], split, f"s{i % 4}")
        record = feature_record(
            e,
            rng.normal(size=(t, d)).astype(np.float32) * present[:, None],
            rng.normal(size=(t, d)).astype(np.float32),
            present=present,
            timestamps=ts,
            map_shape=(d, 2, 2),
            audio=a.astype(np.float32) if audio else None,
            audio_timestamps=a_times if audio else None,
        )
        store.put(e.clip_id, record)
        entries.append(e)
    return store, entries


def test_collate_pads_audio_and_masks_it(tmp_path):
    store, entries = audio_store(tmp_path / "s", n=6, silent={2})
    ds = FeatureSequenceDataset(store, entries, EKMAN7)
    assert ds.has_audio and ds.audio_dim == 6
    items = [ds[i] for i in range(len(ds))]
    batch = collate(items)
    lengths = [len(it["audio"]) for it in items]
    assert lengths[2] == 0 and batch["audio"].shape == (6, max(lengths), 6)
    assert batch["audio"].dtype == torch.float32 and batch["audio_mask"].dtype == torch.bool
    assert batch["audio_mask"].sum(1).tolist() == lengths == batch["audio_lengths"].tolist()
    assert not batch["audio_mask"][2].any()
    assert (batch["audio"][~batch["audio_mask"]] == 0).all()  # padding is zeros
    for j, it in enumerate(items):
        torch.testing.assert_close(batch["audio"][j, : lengths[j]], it["audio"])
    assert batch["mask"].sum(1).tolist() == batch["lengths"].tolist()  # the visual masks as before


def test_a_batch_of_clips_without_audio_frames_keeps_one_masked_column(tmp_path):
    store, entries = audio_store(tmp_path / "s", n=3, silent={0, 1, 2})
    batch = collate([FeatureSequenceDataset(store, entries, EKMAN7)[i] for i in range(3)])
    assert batch["audio"].shape == (3, 1, 6) and not batch["audio_mask"].any()


def test_audio_is_cropped_to_the_span_of_the_kept_frames(tmp_path):
    store, entries = audio_store(tmp_path / "s", n=12)
    full = FeatureSequenceDataset(store, entries, EKMAN7)
    short = FeatureSequenceDataset(store, entries, EKMAN7, max_frames=2)
    train = FeatureSequenceDataset(store, entries, EKMAN7, train=True, seed=3)
    starts = 0
    for i, rec in enumerate(full.records):
        ts = rec.timestamps
        np.testing.assert_array_equal(full[i]["audio"].numpy(), rec.audio)  # all of it
        times = short[i]["audio"][:, -1].numpy()  # column 5 holds each frame's time
        assert times[0] == pytest.approx(ts[0]) and times[-1] < ts[2] <= times[-1] + HOP + 1e-6
        sample = train[i]
        start = len(ts) - len(sample["face"])  # the random start frame (no max_frames: to the end)
        starts += start > 0
        times = sample["audio"][:, -1].numpy()
        assert ts[start] - 1e-6 <= times[0] < ts[start] + HOP and times[-1] == pytest.approx(rec.audio_timestamps[-1])
    assert starts > 0  # some samples did start later


def test_whitening_is_fitted_on_training_clips_and_applied(tmp_path):
    store, entries = audio_store(tmp_path / "s", n=12, d_a=6)
    train = [e for e in entries if e.split == "train"]
    w = fit_audio_whitening(store, train, n_components=4)
    assert w.input_dim == 6 and w.output_dim == 4
    ds = FeatureSequenceDataset(store, train, EKMAN7, audio_whitening=w)
    assert ds.audio_dim == 4
    z = np.concatenate([ds[i]["audio"].numpy() for i in range(len(ds))])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(4), atol=1e-3)  # as the paper: on the training data
    # a checkpoint keeps the state as lists: the same transform comes back
    state = {k: np.asarray(v).tolist() for k, v in w.state_dict().items()}
    again = FeatureSequenceDataset(store, train, EKMAN7, audio_whitening=state)
    torch.testing.assert_close(again[0]["audio"], ds[0]["audio"])
    assert isinstance(as_whitening(state), PCAWhitening) and as_whitening(None) is None


def test_stores_without_audio(tmp_path):
    store, entries = audio_store(tmp_path / "s", n=3, audio=False)
    ds = FeatureSequenceDataset(store, entries, EKMAN7)
    assert not ds.has_audio and "audio" not in ds[0] and "audio" not in collate([ds[0], ds[1]])
    with pytest.raises(ConfigError, match="no audio"):
        _ = ds.audio_dim
    with pytest.raises(ConfigError, match="no audio"):
        fit_audio_whitening(store, entries)
    with pytest.raises(ConfigError, match="no audio"):
        FeatureSequenceDataset(store, entries, EKMAN7, audio_whitening=PCAWhitening(2).fit(np.eye(3)))


def counting_store(root, n=20, t=40):
    """Clips whose face feature at frame ``j`` is ``j``: a sample's first value is its start frame."""
    store = FeatureStore(root, SIG)
    entries = []
    for i in range(n):
        e = ClipEntry(f"/synthetic/count{i}.mp4", EKMAN7.names[i % 3], "train", None)
        frames = np.arange(t, dtype=np.float32)[:, None].repeat(2, 1)
        store.put(e.clip_id, feature_record(e, frames, frames.copy()))
        entries.append(e)
    return store, entries


def _starts(ds: FeatureSequenceDataset, epoch: int) -> list[int]:
    ds.set_epoch(epoch)
    return [int(ds[i]["face"][0, 0]) for i in range(len(ds))]


def test_seeds_draw_different_start_frames_at_every_epoch(tmp_path):
    """Seeds 0 and 1 draw other start frames at every epoch, and seed s at epoch e is not seed s+1 at e-1.

    Before the fix the draw was seeded by ``(seed + epoch) * 1_000_003 + i``: seed 0 at epoch 1 drew
    exactly what seed 1 drew at epoch 0, so the "independent" seeds shared their augmentation.
    """
    store, entries = counting_store(tmp_path / "s")
    ds0 = FeatureSequenceDataset(store, entries, EKMAN7, train=True, seed=0)
    ds1 = FeatureSequenceDataset(store, entries, EKMAN7, train=True, seed=1)
    for epoch in range(6):
        assert _starts(ds0, epoch) != _starts(ds1, epoch), epoch
        assert _starts(ds0, epoch + 1) != _starts(ds1, epoch), epoch
    # still reproducible: the same seed and epoch give the same starts
    assert _starts(ds0, 3) == _starts(FeatureSequenceDataset(store, entries, EKMAN7, train=True, seed=0), 3)
