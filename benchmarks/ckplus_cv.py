"""Face-only models on CK+ with subject-grouped 10-fold cross-validation.

CK+48 (``$EMOCONTEXT_DATA/ckplus48``) holds the last 3 frames of 327 real CK+
sequences (7 classes including contempt). The frames are already face crops, so
no detection runs: every frame goes through the project's frozen face CNN
(features and 4x4 feature maps) and the sequences are written to a
FeatureStore. Then, for each of 10 folds grouped by subject (no subject in both
train and test), each model is trained with its paper's recipe (CACA-RNN family: Adam
1e-4, batch 32; early stopping on the recipe's metric, macro precision, of a validation
fold of other subjects) and tested on the held-out subjects. ``--option KEY=VALUE``
passes a model option to every model (e.g. ``caca_rnn_a`` with ``attention_input=false``;
the context stream of CK+ is a constant, so the CACA-RNNs learn from the face).

Also reported, with no training at all: the face CNN's own 8-class prediction (FER+ classes, contempt
included) averaged over the 3 frames and read on CK+'s 7 classes (``labels.restrict_probabilities``).

    python benchmarks/ckplus_cv.py --out benchmarks/ckplus_cv.md
    python benchmarks/ckplus_cv.py --models caca_rnn_a --option attention_input=false --out ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from _machine import cpu_name
from _results import save
from sklearn.model_selection import GroupKFold

from emocontext.data.datasets import ckplus_sequences
from emocontext.data.manifest import ClipEntry
from emocontext.features.face import FaceExtractor
from emocontext.features.store import FeatureStore, Record
from emocontext.labels import CKPLUS7, EKMAN8, restrict_probabilities
from emocontext.metrics import macro_map, macro_precision
from emocontext.models import model_info
from emocontext.training import TrainConfig, train_seeds


def build_store(root: Path, store_dir: Path) -> tuple[FeatureStore, list[ClipEntry]]:
    face = FaceExtractor()
    store = FeatureStore(store_dir, {"face": face.signature, "context": None, "source": "ckplus48"})
    entries = []
    for seq in ckplus_sequences(root):
        e = ClipEntry(seq.frames[0].rsplit("_", 1)[0], seq.label, None, seq.subject)
        if e.clip_id not in store:  # a store kept with --work is reused
            imgs = np.stack([cv2.imread(f, cv2.IMREAD_GRAYSCALE) for f in seq.frames])
            feats, probs, maps = face.run(imgs)
            t = len(imgs)
            store.put(
                e.clip_id,
                Record(
                    face=feats,
                    face_probs=probs,
                    face_map=maps,
                    context=np.zeros((t, 1), np.float32),
                    face_present=np.ones(t, bool),
                    timestamps=np.arange(t, dtype=np.float64),
                    boxes=np.zeros((t, 4), np.float32),
                    meta=e.to_dict(),
                ),
            )
        entries.append(e)
    return store, entries


def zero_shot(store: FeatureStore, entries: list[ClipEntry]) -> tuple[float, float, float]:
    """Accuracy, macro precision and macro mAP of the face CNN's own 8 classes read on CK+'s 7 (no CK+ training)."""
    y = np.array([CKPLUS7.index(e.label) for e in entries])
    probs = restrict_probabilities(
        np.stack([store.get(e.clip_id).face_probs.mean(0) for e in entries]), EKMAN8, CKPLUS7
    )
    k = len(CKPLUS7)
    return float((probs.argmax(1) == y).mean()), macro_precision(y, probs, k), macro_map(y, probs, k)


def option(text: str) -> tuple[str, object]:
    """``"KEY=VALUE"`` -> ``(KEY, VALUE)``, the value read as JSON when it parses (``false`` -> False)."""
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")) / "ckplus48")
    ap.add_argument("--models", default="face_rnn,cnn_2d3d")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--option", type=option, action="append", default=[], help="model option KEY=VALUE (repeatable)")
    ap.add_argument("--work", type=Path, default=None, help="keep the store and runs here (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ckplus_cv_"))
    store, entries = build_store(args.data, work / "store")
    groups = np.array([e.group for e in entries])
    y = np.array([CKPLUS7.index(e.label) for e in entries])
    folds = list(GroupKFold(n_splits=args.folds).split(entries, y, groups))
    results = {}
    options = dict(args.option)
    tag = "".join(f" {k}={json.dumps(v)}" for k, v in options.items())
    for name in args.models.split(","):
        per_fold, t0 = [], time.perf_counter()
        for k, (train_idx, test_idx) in enumerate(folds):
            # validation = the next fold's subjects, taken out of this fold's training part
            val_set = set(folds[(k + 1) % len(folds)][1])
            tr = [entries[i] for i in train_idx if i not in val_set]
            va = [entries[i] for i in train_idx if i in val_set]
            te = [entries[i] for i in test_idx]
            cfg = TrainConfig(model=name, epochs=args.epochs, patience=20, model_kwargs=options)
            s = train_seeds(cfg, store, tr, va, te, CKPLUS7, work / "runs" / name / f"fold{k}")
            per_fold.append(s["runs"][0]["test"] | {"n": len(te), "parameters": s["parameters"]})
        acc = np.array([f["accuracy"] for f in per_fold])
        prec = np.array([f["macro_precision"] for f in per_fold])
        maps = np.array([f["macro_map"] for f in per_fold])
        n = np.array([f["n"] for f in per_fold])
        results[name + tag] = {
            "selection": model_info(name).recipe.selection,
            "accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std()),
            "accuracy_pooled": float((acc * n).sum() / n.sum()),
            "macro_precision_mean": float(prec.mean()),
            "macro_precision_std": float(prec.std()),
            "macro_map_mean": float(maps.mean()),
            "macro_map_std": float(maps.std()),
            "parameters": per_fold[0]["parameters"],
            "minutes": (time.perf_counter() - t0) / 60,
            "folds": per_fold,
        }
        print(name + tag, json.dumps({k: v for k, v in results[name + tag].items() if k != "folds"}), flush=True)
    zs_acc, zs_prec, zs_map = zero_shot(store, entries)
    selections = sorted({r["selection"] for r in results.values()})
    lines = [
        f"# CK+ (CK+48, 327 sequences of 3 frames): face-only models, subject-grouped {args.folds}-fold CV",
        "",
        f"{len(entries)} sequences, {len(set(groups))} subjects, {len(CKPLUS7)} classes "
        f"({', '.join(CKPLUS7.names)}). Folds: scikit-learn GroupKFold by subject; in each fold the next "
        f"fold's subjects are the validation set (early stopping on {', '.join(selections)}, patience 20) and "
        "the held-out fold is the test set. Recipe: Adam 1e-4, batch 32, up to "
        f"{args.epochs} epochs, seed 0. Features: the project's face CNN "
        "(version 4: FER+ votes on FER2013 faces), frozen. Macro precision: the mean over classes of "
        "TP / (TP + FP) (MEC's metric); macro mAP: the mean over classes of the average precision.",
        "",
        "| model | parameters | accuracy (mean +- std over folds) | accuracy (pooled) "
        "| macro precision (mean +- std) | macro mAP (mean +- std) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['parameters']:,} | {r['accuracy_mean']:.3f} +- {r['accuracy_std']:.3f} "
            f"| {r['accuracy_pooled']:.3f} | {r['macro_precision_mean']:.3f} +- {r['macro_precision_std']:.3f} "
            f"| {r['macro_map_mean']:.3f} +- {r['macro_map_std']:.3f} |"
        )
    lines += [
        "| face CNN alone, no CK+ training (its 8 classes read on CK+'s 7, mean over 3 frames) | - "
        f"| {zs_acc:.3f} (all 327) "
        f"| {zs_acc:.3f} | {zs_prec:.3f} (all 327) | {zs_map:.3f} (all 327) |",
        "",
        f"Command: `python benchmarks/ckplus_cv.py --models {args.models} --folds {args.folds} --epochs {args.epochs}"
        + "".join(f" --option {k}={json.dumps(v)}" for k, v in options.items())
        + "`",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        save(args.out, text, results)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
