"""DistributedDataParallel training: the single-process batches, the same gradients, rank-0 checkpoints, resume;
a real 2-process gloo run on CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from emocontext.cli import app
from emocontext.distributed import ddp
from emocontext.errors import ConfigError
from emocontext.labels import EKMAN7
from emocontext.training.datasets import FeatureSequenceDataset
from emocontext.training.fit import TrainConfig, _loader, fit, load_model, predict_probs
from tests.training.test_fit import synthetic_store

#: No dropout: a 2-process run then computes the single-process gradients (up to summation order).
SMALL = {"hidden_size": 16, "embed_dim": 16, "dropout": 0.0}


def _datasets(store, entries):
    tr = [e for e in entries if e.split == "train"]
    va = [e for e in entries if e.split == "val"]
    return FeatureSequenceDataset(store, tr, EKMAN7, train=True), FeatureSequenceDataset(store, va, EKMAN7)


def test_global_batches_are_the_single_process_loaders_and_shards_split_them(tmp_path):
    store, entries = synthetic_store(tmp_path / "s", n=30)
    ds, _ = _datasets(store, entries)
    seed = 10_003
    loader = [b["index"].tolist() for b in _loader(ds, 8, True, seed)]
    assert ddp.global_batches(len(ds), 8, seed) == loader
    for batch in loader:
        parts = [ddp.shard(batch, r, 3) for r in range(3)]
        assert sum(parts, []) == batch and max(map(len, parts)) - min(map(len, parts)) <= 1
    assert ddp.shard([5], 1, 2) == []  # fewer clips than processes: an empty share


class _OneProcessThroughDDPPath(ddp.Runtime):
    @property
    def active(self) -> bool:
        return True


@pytest.mark.parametrize("class_weights", [False, True])
def test_the_distributed_epoch_computes_the_single_process_loss(tmp_path, monkeypatch, class_weights):
    """train_epoch in one process (the code path of N processes with N = 1) follows the plain loop."""
    store, entries = synthetic_store(tmp_path / "s", n=40)
    cfg = TrainConfig(model="context_rnn", epochs=3, batch_size=7, lr=1e-2, class_weights=class_weights)
    cfg.model_kwargs = dict(SMALL)
    tr, va = _datasets(store, entries)
    plain = fit(cfg, tr, va, tmp_path / "plain", label_set=EKMAN7)
    monkeypatch.setattr(ddp, "_RUNTIME", _OneProcessThroughDDPPath())
    tr, va = _datasets(store, entries)
    via = fit(cfg, tr, va, tmp_path / "ddp", label_set=EKMAN7)
    assert [h["loss"] for h in via.history] == pytest.approx([h["loss"] for h in plain.history], rel=1e-4)
    m1, _ = load_model(plain.checkpoint)
    m2, _ = load_model(via.checkpoint)
    np.testing.assert_allclose(predict_probs(m1, va), predict_probs(m2, va), atol=1e-4)


def _train(root: str, store_root: str, epochs: int) -> None:
    """One process of a DDP run (spawned by ddp.launch): join the group, fit."""
    from emocontext.features.store import FeatureStore

    ddp.setup("cpu")
    store = FeatureStore(store_root)
    entries = _entries(store)
    tr, va = _datasets(store, entries)
    cfg = TrainConfig(model="context_rnn", epochs=4, batch_size=7, lr=1e-2, model_kwargs=dict(SMALL))
    if epochs < cfg.epochs:  # "killed" after `epochs` epochs: run them, then the checkpoint is made to ask for 4
        cfg.epochs = epochs
    fit(cfg, tr, va, root, label_set=EKMAN7)


def _entries(store):
    from emocontext.training.seeds import manifest_from_store

    m = manifest_from_store(store, EKMAN7)
    return sorted(m.entries, key=lambda e: int(e.path.split("clip")[1].split(".")[0]))


def test_two_gloo_processes_match_one_process_and_resume(tmp_path):
    store, _ = synthetic_store(tmp_path / "s", n=40)
    entries = _entries(store)
    tr, va = _datasets(store, entries)
    cfg = TrainConfig(model="context_rnn", epochs=4, batch_size=7, lr=1e-2, model_kwargs=dict(SMALL))
    one = fit(cfg, tr, va, tmp_path / "one", label_set=EKMAN7)

    run = tmp_path / "two"
    assert ddp.launch(2, _train, {"root": str(run), "store_root": str(store.root), "epochs": 2}) == 0
    ck = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 1 and sorted(p.name for p in run.iterdir()) == ["best.pt", "checkpoint.pt", "history.json"]
    ck["meta"]["config"]["epochs"] = 4  # as if the run of 4 epochs had been killed after epoch 2
    torch.save(ck, run / "checkpoint.pt")
    assert ddp.launch(2, _train, {"root": str(run), "store_root": str(store.root), "epochs": 4}) == 0

    two = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in two] == [1, 2, 3, 4]
    # the same global batches and gradients: equal up to float summation order (gloo all-reduce, per-shard sums)
    assert [h["loss"] for h in two] == pytest.approx([h["loss"] for h in one.history], rel=1e-4)
    m1, _ = load_model(one.checkpoint)
    m2, _ = load_model(run / "best.pt")
    np.testing.assert_allclose(predict_probs(m1, va), predict_probs(m2, va), atol=1e-4)
    assert ddp.current() == ddp.Runtime()  # the parent never joined a group


def test_train_nproc_2_on_the_command_line(tmp_path):
    store, _ = synthetic_store(tmp_path / "s", n=24)
    args = ["train", "-s", str(store.root), "--model", "face_rnn", "-o", str(tmp_path / "run"), "--epochs", "1"]
    r = CliRunner().invoke(app, [*args, "--nproc", "2"])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model"] == "face_rnn" and "val" in summary["median"]
    assert (tmp_path / "run" / "seed0" / "best.pt").exists()


def test_cuda_where_there_is_none_is_a_one_line_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA device"):
        ddp.setup("cuda")
    store, _ = synthetic_store(tmp_path / "s", n=12)
    args = ["train", "-s", str(store.root), "--model", "face_rnn", "-o", str(tmp_path / "run"), "--device", "cuda"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and "no CUDA device" in r.output and "Traceback" not in r.output
