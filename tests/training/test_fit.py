"""Training loop: resume equals uninterrupted, seeds and medians, evaluation, CLI; a real-data smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from emocontext.cli import app
from emocontext.data.manifest import ClipEntry, Manifest
from emocontext.errors import ConfigError, IncompatibleFeaturesError
from emocontext.features.store import FeatureStore
from emocontext.labels import CREMAD6, EKMAN7
from emocontext.training import (
    TrainConfig,
    check_features,
    fit,
    load_model,
    manifest_from_store,
    predict_probs,
    train_seeds,
)
from emocontext.training.datasets import FeatureSequenceDataset, collate
from tests.conftest import data_path, feature_record, imbalanced_store
from tests.models.test_recipes import recipe_rows
from tests.training.test_datasets import audio_store

SIG = {"face": {"name": "synthetic"}, "context": {"name": "synthetic"}}


def synthetic_store(root, n=48, t=6, d=8, seed=0) -> tuple[FeatureStore, list[ClipEntry]]:
    """Clips whose label (0..2) is the index of the feature dimension that is high in the context stream."""
    rng = np.random.default_rng(seed)
    store = FeatureStore(root, SIG)
    entries = []
    for i in range(n):
        y = i % 3
        length = int(rng.integers(3, t + 1))
        ctx = rng.normal(size=(length, d)).astype(np.float32) * 0.3
        ctx[:, y] += 1.5
        present = rng.random(length) > 0.3
        face = rng.normal(size=(length, d)).astype(np.float32) * present[:, None]
        split = "train" if i < n * 2 // 3 else ("val" if i < n * 5 // 6 else "test")
        e = ClipEntry(f"/synthetic/clip{i}.mp4", EKMAN7.names[y], split, f"s{i % 5}")
        store.put(e.clip_id, feature_record(e, face, ctx, present=present, map_shape=(d, 2, 2)))
        entries.append(e)
    return store, entries


def _datasets(store, entries, seed=0):
    tr = [e for e in entries if e.split == "train"]
    va = [e for e in entries if e.split == "val"]
    return (
        FeatureSequenceDataset(store, tr, EKMAN7, train=True, seed=seed),
        FeatureSequenceDataset(store, va, EKMAN7),
    )


def test_collate_masks(tmp_path):
    store, entries = synthetic_store(tmp_path / "s", n=6)
    ds = FeatureSequenceDataset(store, entries, EKMAN7)
    batch = collate([ds[i] for i in range(len(ds))])
    lengths = batch["lengths"]
    assert batch["mask"].sum(1).tolist() == lengths.tolist()
    assert not (batch["face_mask"] & ~batch["mask"]).any()
    assert batch["face"].shape[:2] == batch["mask"].shape and batch["face_map"].shape[2:] == (8, 2, 2)


def test_training_learns_and_resume_is_identical(tmp_path):
    store, entries = synthetic_store(tmp_path / "s", n=96)
    cfg = TrainConfig(
        model="context_rnn", epochs=12, batch_size=8, lr=1e-2, model_kwargs={"hidden_size": 16, "embed_dim": 16}
    )
    tr, va = _datasets(store, entries)
    full = fit(cfg, tr, va, tmp_path / "full", label_set=EKMAN7)
    assert full.val_metrics["accuracy"] > 0.8  # chance is 1/3
    # interrupted after 5 epochs, then resumed with the same command
    tr, va = _datasets(store, entries)
    fit(TrainConfig(**{**cfg.__dict__, "epochs": 5}), tr, va, tmp_path / "resumed", label_set=EKMAN7)
    ck = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    ck["meta"]["config"]["epochs"] = 12  # as if the kill came after epoch 5 of 12
    torch.save(ck, tmp_path / "resumed" / "checkpoint.pt")
    tr, va = _datasets(store, entries)
    resumed = fit(cfg, tr, va, tmp_path / "resumed", label_set=EKMAN7)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history], rel=1e-5)
    m1, _ = load_model(full.checkpoint)
    m2, _ = load_model(resumed.checkpoint)
    np.testing.assert_allclose(predict_probs(m1, va), predict_probs(m2, va), atol=1e-5)


def test_resume_refuses_other_config(tmp_path):
    store, entries = synthetic_store(tmp_path / "s", n=12)
    tr, va = _datasets(store, entries)
    fit(
        TrainConfig(model="face_rnn", epochs=1, model_kwargs={"hidden_size": 8, "embed_dim": 8}),
        tr,
        va,
        tmp_path / "r",
        label_set=EKMAN7,
    )
    with pytest.raises(Exception, match="another configuration") as e:
        fit(TrainConfig(model="face_rnn", epochs=2, lr=1.0), tr, va, tmp_path / "r", label_set=EKMAN7)
    # the refusal names every setting that differs, with both values
    assert "lr: 0.0001 (checkpoint) vs 1.0 (now)" in str(e.value) and "epochs: 1 (checkpoint) vs 2" in str(e.value)
    assert "batch_size" not in str(e.value)


def test_history_counts_epochs_from_one_like_the_console(tmp_path):
    store, entries = synthetic_store(tmp_path / "s", n=12)
    tr, va = _datasets(store, entries)
    printed = []
    cfg = TrainConfig(model="face_rnn", epochs=2, patience=5, model_kwargs={"hidden_size": 8, "embed_dim": 8})
    result = fit(cfg, tr, va, tmp_path / "r", label_set=EKMAN7, on_log=printed.append)
    on_disk = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [h["epoch"] for h in on_disk] == [1, 2] and [h["epoch"] for h in result.history] == [1, 2]
    assert printed[0].startswith("epoch 1/2") and printed[1].startswith("epoch 2/2")
    assert result.best_epoch in (1, 2)


def test_checkpoint_refuses_features_of_another_extractor(tmp_path):
    """A model trained on one face CNN's features is never evaluated on another's (e.g. 7-class v3 vs 8-class v4)."""
    store, entries = synthetic_store(tmp_path / "s", n=12)
    tr, va = _datasets(store, entries)
    cfg = TrainConfig(model="face_rnn", epochs=1, model_kwargs={"hidden_size": 8, "embed_dim": 8})
    fit(cfg, tr, va, tmp_path / "r", label_set=EKMAN7)
    _, meta = load_model(tmp_path / "r" / "best.pt")
    check_features(meta, store)  # the same store: fine
    other = FeatureStore(tmp_path / "other", {**SIG, "face": {"name": "synthetic", "version": "4"}})
    with pytest.raises(IncompatibleFeaturesError, match="face"):
        check_features(meta, other)
    with pytest.warns(UserWarning, match="does not record"):
        check_features({k: v for k, v in meta.items() if k != "features"}, other)


def test_seeds_report_median(tmp_path):
    store, entries = synthetic_store(tmp_path / "s", n=24)
    manifest = manifest_from_store(store)
    assert manifest.label_set.name == "cremad6" and len(manifest) == 24  # smallest set holding the labels
    cfg = TrainConfig(model="parallel_rnn", epochs=2, batch_size=8, model_kwargs={"hidden_size": 8, "embed_dim": 8})
    s = train_seeds(
        cfg,
        store,
        manifest.split("train"),
        manifest.split("val"),
        manifest.split("test"),
        EKMAN7,
        tmp_path / "runs",
        seeds=[0, 1, 2],
    )
    accs = sorted(r["test"]["accuracy"] for r in s["runs"])
    assert s["median"]["test"]["accuracy"] == accs[1]
    assert (tmp_path / "runs" / "seed1" / "confusion_test.png").stat().st_size > 1000
    assert json.loads((tmp_path / "runs" / "summary.json").read_text())["seeds"] == [0, 1, 2]


def test_cli_train_evaluate_compare(tmp_path):
    synthetic_store(tmp_path / "s", n=24)
    runner = CliRunner()
    r = runner.invoke(
        app, ["train", "-s", str(tmp_path / "s"), "--model", "face_rnn", "-o", str(tmp_path / "r"), "--epochs", "2"]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        ["evaluate", str(tmp_path / "r" / "seed0" / "best.pt"), "-s", str(tmp_path / "s"), "-o", str(tmp_path / "e")],
    )
    assert r.exit_code == 0, r.output
    assert "macro mAP" in r.output and (tmp_path / "e" / "confusion.png").exists()
    r = runner.invoke(
        app,
        [
            "compare",
            "-s",
            str(tmp_path / "s"),
            "-o",
            str(tmp_path / "c"),
            "--models",
            "face_rnn,caca_rnn_a",
            "--ensemble",
            "face_rnn,caca_rnn_a",
            "--epochs",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    table = (tmp_path / "c" / "table.md").read_text()
    assert "| caca_rnn_a |" in table and "| face_rnn |" in table and "| ensemble(" in table
    r = runner.invoke(app, ["train", "-s", str(tmp_path / "s"), "--model", "nope", "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "unknown model" in r.output.lower() and "Traceback" not in r.output  # usage


def test_av_lstm_trains_on_audio_and_its_whitening_travels_with_the_checkpoint(tmp_path):
    from emocontext.training.datasets import fit_audio_whitening

    store, entries = audio_store(tmp_path / "s", n=24)
    train = [e for e in entries if e.split == "train"]
    val = [e for e in entries if e.split == "val"]
    cfg = TrainConfig(model="av_lstm", epochs=2, batch_size=8, lr=1e-2)
    s = train_seeds(cfg, store, train, val, None, EKMAN7, tmp_path / "runs", audio_pca=4)
    model, meta = load_model(tmp_path / "runs" / "seed0" / "best.pt")
    assert meta["dims"]["audio_dim"] == 4 and len(meta["audio_whitening"]["components"]) == 4
    # the alignment window matched to the audio rate (about 6.25 audio frames per video frame at 5 fps)
    ratio = FeatureSequenceDataset(store, train, EKMAN7).audio_frames_per_step
    assert 6 < ratio < 7 and meta["dims"]["audio_frames_per_step"] == pytest.approx(ratio)
    assert model.encoder.window == 7 and model.encoder.w_slot.shape[0] == 14
    # evaluation rebuilds the dataset with the checkpoint's whitening and gets the same numbers
    w = fit_audio_whitening(store, train, 4)
    np.testing.assert_allclose(np.array(meta["audio_whitening"]["components"]), w.components)
    va = FeatureSequenceDataset(store, val, EKMAN7, audio_whitening=meta["audio_whitening"])
    probs = predict_probs(model, va)
    assert probs.shape == (len(val), 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert s["median"]["val"]["accuracy"] == pytest.approx(s["runs"][0]["val"]["accuracy"])
    # raw features: no whitening in the checkpoint, audio_dim from the store
    train_seeds(cfg, store, train, val, None, EKMAN7, tmp_path / "raw", audio_pca=None)
    _, meta = load_model(tmp_path / "raw" / "seed0" / "best.pt")
    assert meta["dims"]["audio_dim"] == 6 and "audio_whitening" not in meta


def test_audio_training_errors(tmp_path):
    from emocontext.training.datasets import fit_audio_whitening

    store, entries = audio_store(tmp_path / "s", n=12)
    train = [e for e in entries if e.split == "train"]
    val = [e for e in entries if e.split == "val"]
    w = fit_audio_whitening(store, train, 3)
    tr = FeatureSequenceDataset(store, train, EKMAN7, train=True, audio_whitening=w)
    cfg = TrainConfig(model="av_lstm", epochs=1, batch_size=8)
    with pytest.raises(ConfigError, match="same audio whitening"):
        fit(cfg, tr, FeatureSequenceDataset(store, val, EKMAN7), tmp_path / "a", label_set=EKMAN7)
    fit(cfg, tr, FeatureSequenceDataset(store, val, EKMAN7, audio_whitening=w), tmp_path / "b", label_set=EKMAN7)
    other = fit_audio_whitening(store, train, 2)  # resuming with another whitening is another configuration
    tr2 = FeatureSequenceDataset(store, train, EKMAN7, train=True, audio_whitening=other)
    va2 = FeatureSequenceDataset(store, val, EKMAN7, audio_whitening=other)
    with pytest.raises(ConfigError, match="another configuration"):
        fit(TrainConfig(**{**cfg.__dict__, "epochs": 2}), tr2, va2, tmp_path / "b", label_set=EKMAN7)
    plain, plain_entries = synthetic_store(tmp_path / "plain", n=12)
    tr, va = _datasets(plain, plain_entries)
    with pytest.raises(ConfigError, match="no audio"):
        fit(cfg, tr, va, tmp_path / "c", label_set=EKMAN7)


@pytest.mark.realdata
@pytest.mark.slow
def test_av_lstm_on_real_clips_with_their_audio(tmp_path):
    """The 6 CREMA-D clips extracted with their audio at av_lstm's 25 fps (its recipe), then 2 epochs of av_lstm
    (no accuracy claim): 1.25 audio frames per video frame, the paper's, so the matched window is Fig. 2's."""
    from emocontext.data.datasets import load_dataset
    from emocontext.features.audio import PAPER_AUDIO
    from emocontext.features.extract import Extractors, extract
    from emocontext.models.recipes import sampling_fps
    from emocontext.training.datasets import fit_audio_whitening
    from emocontext.video.pipeline import StreamConfig

    clips = load_dataset("crema_d", data_path("videos", "crema-d"))
    assert len(clips) == 6
    manifest = Manifest(
        [ClipEntry(e.path, e.label, "train" if i < 4 else "val", e.group) for i, e in enumerate(clips)], CREMAD6
    )
    fps = sampling_fps("av_lstm")
    assert fps == 25.0
    extractors = Extractors.build(audio=PAPER_AUDIO, config=StreamConfig(fps=fps))
    summary = extract(manifest, tmp_path / "store", extractors)
    assert summary.done == 6 and not summary.failed and not summary.no_audio
    store = FeatureStore(tmp_path / "store")
    assert store.has_audio and store.signature["streams"]["fps"] == 25.0
    for e in manifest:
        r = store.get(e.clip_id)
        span = r.timestamps[-1] + 1 / fps - r.timestamps[0]
        assert r.audio.shape[1] == 47 and np.isfinite(r.audio).all()
        assert abs(len(r.audio) - (1 + span * PAPER_AUDIO.frame_rate)) <= 2  # the frames' span, 31.25 frames/s
        assert r.audio_timestamps[0] == pytest.approx(r.timestamps[0])
        assert r.audio[:, 0].max() - r.audio[:, 0].min() > 5  # speech and pauses in the log energy

    m = manifest_from_store(store, CREMAD6)
    train, val = m.split("train"), m.split("val")
    whitening = fit_audio_whitening(store, train, 50)
    tr = FeatureSequenceDataset(store, train, CREMAD6, train=True, audio_whitening=whitening)
    va = FeatureSequenceDataset(store, val, CREMAD6, audio_whitening=whitening)
    result = fit(TrainConfig(model="av_lstm", epochs=2, batch_size=4), tr, va, tmp_path / "run", label_set=CREMAD6)
    assert len(result.history) == 2 and all(np.isfinite(h["loss"]) for h in result.history)

    model, meta = load_model(result.checkpoint)
    assert meta["dims"]["audio_dim"] == whitening.output_dim == 47  # capped at D_a
    assert meta["dims"]["audio_frames_per_step"] == pytest.approx(1.25, abs=0.05) and model.encoder.window == 2
    va = FeatureSequenceDataset(store, val, CREMAD6, audio_whitening=meta["audio_whitening"])
    probs = predict_probs(model, va)
    assert probs.shape == (2, 6) and np.allclose(probs.sum(1), 1, atol=1e-5)
    batch = collate([va[0], va[1]])
    with torch.inference_mode():
        out = model(batch)
    assert out.logits.shape == (2, 6)
    mask = batch["mask"]
    alignment = out.extras["alignment"]  # (B, T, 2w)
    assert alignment.shape[:2] == mask.shape
    torch.testing.assert_close(alignment.sum(-1)[mask], torch.ones(int(mask.sum())))
    assert (alignment[~mask] == 0).all()
    attention = out.temporal_attention  # (B, K, T): per emotion, over the valid steps
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 6))


@pytest.mark.realdata
@pytest.mark.slow
def test_every_model_trains_on_real_features(tmp_path):
    """Smoke run: extract the real clips, then a few epochs of every model (no accuracy claim)."""
    from emocontext.data.datasets import crema_d
    from emocontext.features.extract import Extractors, extract
    from emocontext.models.registry import list_models

    videos = data_path("videos")
    clips = list(crema_d(videos / "crema-d"))
    manifest = Manifest(
        [ClipEntry(e.path, e.label, "train" if i < 4 else "val", e.group) for i, e in enumerate(clips)], CREMAD6
    )
    store = tmp_path / "store"
    summary = extract(
        manifest,
        store,
        Extractors.build(),
    )
    assert summary.done == 6 and not summary.failed
    again = extract(
        manifest,
        store,
        Extractors.build(),
    )
    assert again.skipped == 6 and again.done == 0  # resumable: nothing redone
    st = FeatureStore(store)
    m = manifest_from_store(st, CREMAD6)
    for name in list_models():
        if name == "ensemble" or not set(load_streams(name)) <= {"face", "context", "face_map"}:
            continue
        cfg = TrainConfig(model=name, epochs=2, batch_size=4, fps=5.0)  # every model at the store's rate
        s = train_seeds(cfg, st, m.split("train"), m.split("val"), None, CREMAD6, tmp_path / name)
        assert 0 <= s["median"]["val"]["accuracy"] <= 1, name


def load_streams(name):
    from emocontext.models.registry import model_info

    return model_info(name).streams


def _fit_losses(tmp_path, name, **cfg):
    from emocontext.training.fit import TrainConfig, fit

    store, entries = imbalanced_store(tmp_path / "s")
    tr = FeatureSequenceDataset(store, [e for e in entries if e.split == "train"], EKMAN7, train=True)
    va = FeatureSequenceDataset(store, [e for e in entries if e.split == "val"], EKMAN7)
    small = {"embed_dim": 8, "fusion_dim": 8, "feature_dim": 8, "score_hidden": 4}
    config = TrainConfig(model="caan", epochs=2, batch_size=8, model_kwargs=small, **cfg)
    result = fit(config, tr, va, tmp_path / name, label_set=EKMAN7)
    return [h["loss"] for h in result.history]


def test_class_weights_reach_caans_own_loss(tmp_path):
    """``--class-weights`` changes CAAN's training loss (before the fix ``model.loss`` never got the weights)."""
    plain = _fit_losses(tmp_path, "plain")
    weighted = _fit_losses(tmp_path, "weighted", class_weights=True)
    assert plain != weighted
    assert plain == _fit_losses(tmp_path, "again")  # the difference is the weights, not chance


def test_caan_loss_options_come_from_the_config(tmp_path):
    from emocontext.errors import ConfigError
    from emocontext.training.fit import TrainConfig, fit

    default = _fit_losses(tmp_path, "default")
    no_triplet = _fit_losses(tmp_path, "nt", loss_kwargs={"triplet_weight": 0.0, "frame_weight": 0.5})
    assert default != no_triplet
    store, entries = imbalanced_store(tmp_path / "s2")
    ds = FeatureSequenceDataset(store, entries, EKMAN7)
    with pytest.raises(ConfigError, match="takes no loss options"):
        fit(
            TrainConfig(model="face_rnn", epochs=1, loss_kwargs={"margin": 1.0}),
            ds,
            ds,
            tmp_path / "x",
            label_set=EKMAN7,
        )


def test_train_runs_the_recipe_the_cli_shows(tmp_path, monkeypatch):
    """`emocontext train` with no recipe option runs exactly the recipe `models --recipes` shows."""
    from emocontext import cli

    shown = recipe_rows(monkeypatch)["caer_net_features"]
    imbalanced_store(tmp_path / "s")
    r = CliRunner().invoke(
        cli.app,
        ["train", "-s", str(tmp_path / "s"), "--model", "caer_net_features", "-o", str(tmp_path / "r")]
        + ["--model-option", "attention_channels=4", "--model-option", "fusion_hidden=4"],
    )
    assert r.exit_code == 0, r.output
    assert "recipe: sgd lr 0.005 x0.1 every 4 epochs" in r.output and "10 frames/s, whole clips" in r.output
    ck = torch.load(tmp_path / "r" / "seed0" / "checkpoint.pt", weights_only=False)
    cfg = ck["meta"]["config"]
    assert {
        "optimizer": cfg["optimizer"],
        "lr": f"{cfg['lr']:g}",
        "schedule": f"x{cfg['lr_gamma']:g} every {cfg['lr_step']} epochs",
        "weight decay": f"{cfg['weight_decay']:g}",
        "batch": str(cfg["batch_size"]),
        "epochs": str(cfg["epochs"]),
        "patience": str(cfg["patience"]),
        "select on val": cfg["selection"],
        "frames/s": f"{cfg['fps']:g}",
        "frames": "all" if cfg["max_frames"] is None else str(cfg["max_frames"]),
    } == {k: v for k, v in shown.items() if k != "name"}
    # the optimiser really is that one, and the schedule really ran: 5e-3 divided by 10 every 4 epochs
    group = ck["opt"]["param_groups"][0]
    assert group["momentum"] == 0.9 and "nesterov" in group  # torch.optim.SGD's state
    lrs = [h["lr"] for h in ck["history"]]
    assert len(lrs) == int(shown["epochs"])
    assert lrs[:5] == pytest.approx([5e-3, 5e-3, 5e-3, 5e-3, 5e-4])
    assert lrs[-1] == pytest.approx(5e-6)


def _store_at(root, fps: float, n: int = 12, suffix: str = ".mp4"):
    """A synthetic store whose signature says it was sampled at ``fps`` (as ``extract`` records it)."""
    rng = np.random.default_rng(0)
    store = FeatureStore(root, {**SIG, "streams": {"fps": fps}})
    entries = []
    for i in range(n):
        y = i % 3
        ctx = rng.normal(size=(4, 5)).astype(np.float32)
        ctx[:, y] += 2
        e = ClipEntry(f"/synthetic/at{i}{suffix}", EKMAN7.names[y], "train" if i < 8 else "val", None)
        store.put(e.clip_id, feature_record(e, rng.normal(size=(4, 5)).astype(np.float32), ctx))
        entries.append(e)
    return _datasets(store, entries)


def test_a_store_sampled_at_another_rate_than_the_recipe_is_refused(tmp_path):
    """Issue 25: each paper's sampling is in its recipe; a store made at another rate is not silently used."""
    tr, va = _store_at(tmp_path / "s5", 5.0)
    small = {"hidden_size": 4, "embed_dim": 4}
    caan_small = {"embed_dim": 4, "fusion_dim": 4, "feature_dim": 4, "score_hidden": 4}
    with pytest.raises(IncompatibleFeaturesError, match=r"extract --model caan.*--fps 5"):
        fit(TrainConfig(model="caan", epochs=1, model_kwargs=caan_small), tr, va, tmp_path / "a", label_set=EKMAN7)
    with pytest.raises(IncompatibleFeaturesError, match="trains at 25"):
        fit(
            TrainConfig(model="face_rnn", epochs=1, fps=25, model_kwargs=small),
            tr,
            va,
            tmp_path / "b",
            label_set=EKMAN7,
        )
    assert not (tmp_path / "a").exists()  # refused before anything is written
    # the recipe's rate, or the store's rate given: trained, and the checkpoint records the rate
    fit(TrainConfig(model="face_rnn", epochs=1, model_kwargs=small), tr, va, tmp_path / "c", label_set=EKMAN7)
    assert torch.load(tmp_path / "c" / "best.pt", weights_only=False)["meta"]["config"]["fps"] == 5.0
    fit(TrainConfig(model="caan", epochs=1, fps=5, model_kwargs=caan_small), tr, va, tmp_path / "d", label_set=EKMAN7)
    # still images are one frame at any rate
    tr, va = _store_at(tmp_path / "img", 5.0, suffix=".jpg")
    fit(TrainConfig(model="caan", epochs=1, model_kwargs=caan_small), tr, va, tmp_path / "e", label_set=EKMAN7)


def test_the_cli_names_the_option_when_a_store_has_another_rate(tmp_path):
    _store_at(tmp_path / "s", 5.0)
    r = CliRunner().invoke(app, ["train", "-s", str(tmp_path / "s"), "--model", "caa", "-o", str(tmp_path / "x")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    text = " ".join(r.output.split())
    assert "sampled at 5 frames/s but caa trains at every frame" in text and "--fps 5" in text
    r = CliRunner().invoke(
        app,
        ["train", "-s", str(tmp_path / "s"), "--model", "caa", "-o", str(tmp_path / "y"), "--fps", "5", "--epochs", "1"]
        + ["--model-option", "hidden=4"],
    )
    assert r.exit_code == 0, r.output


def test_caca_rnn_selects_its_checkpoint_on_macro_precision(tmp_path):
    """MEC's metric (mean over classes of TP / (TP + FP)) picks best.pt for the CACA-RNN family; macro mAP,
    accuracy and macro precision are all in the history and in the summaries (issue 25)."""
    store, entries = synthetic_store(tmp_path / "s", n=30)
    tr, va = _datasets(store, entries)
    cfg = TrainConfig(model="caca_rnn_a", epochs=6, lr=3e-3, model_kwargs={"hidden_size": 4, "embed_dim": 4})
    res = fit(cfg, tr, va, tmp_path / "r", label_set=EKMAN7)
    precision = [h["val_precision"] for h in res.history]
    keys = [(h["val_precision"], h["val_map"], h["val_accuracy"]) for h in res.history]
    assert res.best_epoch == 1 + keys.index(max(keys))  # precision first, then mAP, then accuracy
    assert precision[res.best_epoch - 1] == max(precision)
    assert res.val_metrics["macro_precision"] == pytest.approx(max(precision))
    summary = train_seeds(cfg, store, tr.entries, va.entries, None, EKMAN7, tmp_path / "seeds")
    assert set(summary["median"]["val"]) == {"accuracy", "macro_precision", "macro_map"}
    assert summary["median"]["val"]["macro_precision"] == pytest.approx(summary["runs"][0]["val"]["macro_precision"])
