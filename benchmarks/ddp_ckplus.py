"""One process vs two DistributedDataParallel processes (gloo, CPU) on the CK+ feature store.

The CK+48 store of ``ckplus_cv.py`` (327 sequences of 3 frames, frozen face CNN features), fold 0 of
its subject-grouped 10-fold split (the next fold's subjects for validation), seed 0, the paper's
recipe (Adam 1e-4, batch 32, early stopping on validation macro mAP). Each model is trained once in
one process and once in two (``emocontext.distributed.ddp.launch``, the code path of ``train --nproc
2``), with its default dropout and with dropout 0, and the test metrics and per-clip test
probabilities are compared.

    python benchmarks/ddp_ckplus.py --out benchmarks/ddp_ckplus.md
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _machine import cpu_name
from _results import save
from ckplus_cv import build_store
from sklearn.model_selection import GroupKFold

from emocontext.distributed import ddp
from emocontext.features.store import FeatureStore
from emocontext.labels import CKPLUS7
from emocontext.training import TrainConfig, load_model, predict_probs, train_seeds


def split(entries):
    groups = np.array([e.group for e in entries])
    y = np.array([CKPLUS7.index(e.label) for e in entries])
    folds = list(GroupKFold(n_splits=10).split(entries, y, groups))
    train_idx, test_idx = folds[0]
    val_set = set(folds[1][1])
    tr = [entries[i] for i in train_idx if i not in val_set]
    va = [entries[i] for i in train_idx if i in val_set]
    te = [entries[i] for i in test_idx]
    return tr, va, te


def run(store_dir: str, entries: list, model: str, dropout: float | None, epochs: int, out: str) -> None:
    """One training run (in this process, or as one rank of a launched group)."""
    ddp.setup("cpu")
    store = FeatureStore(store_dir)
    tr, va, te = split(entries)
    kwargs = {} if dropout is None else {"dropout": dropout}
    cfg = TrainConfig(model=model, epochs=epochs, patience=20, model_kwargs=kwargs)
    train_seeds(cfg, store, tr, va, te, CKPLUS7, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")) / "ckplus48")
    ap.add_argument("--models", default="face_rnn,cnn_2d3d")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ddp_ckplus_"))
    store, entries = build_store(args.data, work / "store")
    _, _, te = split(entries)
    rows, results = [], {}
    for model in args.models.split(","):
        for dropout in (None, 0.0):
            probs, metrics = {}, {}
            for nproc in (1, 2):
                out = work / f"{model}_{dropout}_{nproc}"
                kw = dict(store_dir=str(store.root), entries=entries, model=model, dropout=dropout, epochs=args.epochs)
                load0, t0 = os.getloadavg()[0], time.perf_counter()
                if nproc == 1:
                    run(**kw, out=str(out))
                else:
                    assert ddp.launch(nproc, run, {**kw, "out": str(out)}) == 0
                minutes = (time.perf_counter() - t0) / 60
                summary = json.loads((out / "summary.json").read_text())
                m, _ = load_model(out / "seed0" / "best.pt")
                from emocontext.training.datasets import FeatureSequenceDataset

                probs[nproc] = predict_probs(m, FeatureSequenceDataset(store, te, CKPLUS7))
                r = summary["runs"][0]
                metrics[nproc] = {
                    "best_epoch": r["best_epoch"],
                    "val_map": r["val"]["macro_map"],
                    "test_accuracy": r["test"]["accuracy"],
                    "test_map": r["test"]["macro_map"],
                    "minutes": minutes,
                    "load_before": load0,
                    "load_after": os.getloadavg()[0],
                }
            diff = float(np.abs(probs[1] - probs[2]).max())
            agree = float((probs[1].argmax(1) == probs[2].argmax(1)).mean())
            key = f"{model} dropout {'default' if dropout is None else dropout}"
            results[key] = {"runs": metrics, "max_prob_diff": diff, "label_agreement": agree}
            for nproc in (1, 2):
                m = metrics[nproc]
                rows.append(
                    f"| {key} | {nproc} | {m['best_epoch']} | {m['val_map']:.4f} | {m['test_accuracy']:.4f} "
                    f"| {m['test_map']:.4f} | {m['minutes']:.2f} | {m['load_before']:.1f} / {m['load_after']:.1f} |"
                )
            rows.append(f"| {key}: 1 vs 2 | | | | | | max test prob diff {diff:.2e}, labels agree {agree:.1%} | |")
            print(key, json.dumps(results[key]), flush=True)
    lines = [
        "# DDP on CK+: one process vs two (gloo, CPU)",
        "",
        f"CK+48 store ({len(entries)} sequences), fold 0 of the subject-grouped 10-fold split of "
        f"`ckplus_cv.py` ({len(te)} test sequences), seed 0, Adam 1e-4, batch 32 (global: each of 2 processes "
        f"takes half of every batch), up to {args.epochs} epochs, patience 20.",
        "",
        "| model | processes | best epoch | val macro mAP | test accuracy | test macro mAP | minutes | load avg "
        "(1 min) before / after |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Command: `python benchmarks/ddp_ckplus.py --models {args.models} --epochs {args.epochs}`",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores shared with other jobs (load averages above), "
        f"torch {torch.__version__}; 2 processes get 1 torch thread each.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        save(args.out, text, results)


if __name__ == "__main__":
    main()
