"""Training loop: resume equals uninterrupted, seeds and medians, evaluation, CLI; a real-data smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from emocontext.cli import app
from emocontext.data.datasets import FeatureSequenceDataset, collate
from emocontext.data.manifest import ClipEntry, Manifest
from emocontext.features.store import FeatureStore, Record
from emocontext.labels import CREMAD6, EKMAN7
from emocontext.train import TrainConfig, fit, load_model, manifest_from_store, predict_probs, train_seeds
from tests.conftest import data_path

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
        store.put(
            e.clip_id,
            Record(
                face=face,
                face_probs=np.zeros((length, 7), np.float32),
                face_map=np.zeros((length, d, 2, 2), np.float32),
                context=ctx,
                face_present=present,
                timestamps=np.arange(length) * 0.2,
                boxes=np.zeros((length, 4), np.float32),
                meta=e.to_dict(),
            ),
        )
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
    with pytest.raises(Exception, match="another configuration"):
        fit(TrainConfig(model="face_rnn", epochs=2, lr=1.0), tr, va, tmp_path / "r", label_set=EKMAN7)


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
    assert r.exit_code == 1 and "unknown model" in r.output.lower() and "Traceback" not in r.output


@pytest.mark.realdata
@pytest.mark.slow
def test_every_model_trains_on_real_features(tmp_path):
    """Smoke run: extract the real clips, then a few epochs of every model (no accuracy claim)."""
    from emocontext.data.adapters import crema_d
    from emocontext.features.extract import Extractors, extract
    from emocontext.models.registry import list_models

    videos = data_path("videos")
    clips = list(crema_d(videos / "crema-d"))
    manifest = Manifest(
        [ClipEntry(e.path, e.label, "train" if i < 4 else "val", e.group) for i, e in enumerate(clips)], CREMAD6
    )
    store = tmp_path / "store"
    summary = extract(manifest, store, Extractors.build(), progress=False)
    assert summary.done == 6 and not summary.failed
    again = extract(manifest, store, Extractors.build(), progress=False)
    assert again.skipped == 6 and again.done == 0  # resumable: nothing redone
    st = FeatureStore(store)
    m = manifest_from_store(st, CREMAD6)
    for name in list_models():
        if name == "ensemble" or not set(load_streams(name)) <= {"face", "context", "face_map"}:
            continue
        cfg = TrainConfig(model=name, epochs=2, batch_size=4)
        s = train_seeds(cfg, st, m.split("train"), m.split("val"), None, CREMAD6, tmp_path / name)
        assert 0 <= s["median"]["val"]["accuracy"] <= 1, name


def load_streams(name):
    from emocontext.models.registry import model_info

    return model_info(name).streams
