"""Face vs context on ExpW: the CAER-Net Table 3 ablation and CAAN, on frozen features.

ExpW (``$EMOCONTEXT_DATA/expw``): 5,705 labelled faces in 5,408 web photos, the
dataset's own face boxes and train/val/test splits, 7 Ekman classes. Each face is
one single-frame clip. Features (``emocontext extract --dataset expw --spatial
--hide-face``): the project's face CNN on the labelled face (1280-d) and the ImageNet
EfficientNet-Lite0 map (1280x7x7) of the centre-cropped photo **with the face hidden**.

Rows (``caer_net_features`` switches, CAER-Net Table 3; and CAAN as a one-frame model):
F = face only, C+cA = context only with spatial attention, F+C = both, plain
concatenation, F+C+cA = + context spatial attention, F+C+cA+fA = + adaptive fusion;
``caan`` and ``ffaa`` read the pooled context. Each row: Adam 1e-4, batch 32, early
stopping on validation macro mAP; test accuracy and macro mAP with 95 % percentile
bootstrap intervals (1,000 resamples of the test faces).

    python benchmarks/expw_ablation.py --store runs/expw_store --out benchmarks/expw_ablation.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from _machine import cpu_name

from emocontext.data.adapters import load_dataset
from emocontext.data.datasets import FeatureSequenceDataset
from emocontext.features.extract import Extractors, extract
from emocontext.features.store import FeatureStore
from emocontext.labels import EKMAN7
from emocontext.metrics import accuracy, bootstrap_ci, macro_map
from emocontext.models.caer_net import TABLE3_ABLATIONS
from emocontext.train import TrainConfig, load_model, manifest_from_store, predict_probs, train_seeds
from emocontext.video.pipeline import StreamConfig

ROWS = [
    ("F (face only)", "caer_net_features", TABLE3_ABLATIONS["F"]),
    ("C (context only)", "caer_net_features", TABLE3_ABLATIONS["C"]),
    ("C+cA (context only, attention)", "caer_net_features", TABLE3_ABLATIONS["C+cA"]),
    ("F+C (concatenation)", "caer_net_features", TABLE3_ABLATIONS["F+C"]),
    ("F+C+cA (+ context attention)", "caer_net_features", TABLE3_ABLATIONS["F+C+cA"]),
    ("F+C+cA+fA (+ adaptive fusion) = CAER-Net", "caer_net_features", TABLE3_ABLATIONS["F+C+cA+fA"]),
    ("CAAN (one frame)", "caan", {}),
    ("FFAA (one frame)", "ffaa", {}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")) / "expw")
    ap.add_argument("--store", type=Path, default=Path("runs/expw_store"))
    ap.add_argument("--runs", type=Path, default=Path("runs/expw_ablation"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N faces (smoke runs)")
    ap.add_argument("--rows", default="", help="comma-separated row numbers to run (default all)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    manifest = load_dataset("expw", args.data)
    if args.limit:
        manifest.entries = manifest.entries[: args.limit]
    ex = Extractors.build(spatial=True, config=StreamConfig(hide_face=True))
    t0 = time.perf_counter()
    summary = extract(manifest, args.store, ex)
    print(
        f"extract: {summary.done} new, {summary.skipped} cached, {len(summary.failed)} failed, "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    store = FeatureStore(args.store)
    m = manifest_from_store(store, EKMAN7)
    train, val, test = m.split("train"), m.split("val"), m.split("test")
    test_ds = FeatureSequenceDataset(store, test, EKMAN7)
    chosen = {int(i) for i in args.rows.split(",") if i} or set(range(len(ROWS)))
    results = []
    for i, (title, model, options) in enumerate(ROWS):
        if i not in chosen:
            continue
        cfg = TrainConfig(model=model, epochs=args.epochs, patience=args.patience, model_kwargs=dict(options))
        t1 = time.perf_counter()
        s = train_seeds(cfg, store, train, val, test, EKMAN7, args.runs / f"row{i}_{model}", progress=print)
        net, _ = load_model(args.runs / f"row{i}_{model}" / "seed0" / "best.pt")
        probs = predict_probs(net, test_ds)
        y = test_ds.labels
        row = {
            "row": title,
            "model": model,
            "options": options,
            "parameters": s["parameters"],
            "accuracy": accuracy(y, probs),
            "accuracy_ci": bootstrap_ci(y, probs, accuracy),
            "macro_map": macro_map(y, probs, len(EKMAN7)),
            "macro_map_ci": bootstrap_ci(y, probs, lambda a, b: macro_map(a, b, len(EKMAN7))),
            "best_epoch": s["runs"][0]["best_epoch"],
            "minutes": (time.perf_counter() - t1) / 60,
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    lines = [
        "# ExpW: face vs context (CAER-Net Table 3 ablation, CAAN), frozen features",
        "",
        f"{len(train)} train / {len(val)} val / {len(test)} test faces (ExpW's own splits, grouped by photo). "
        "Face: the project's FER2013 face CNN on the labelled box; context: ImageNet EfficientNet-Lite0 "
        "1280x7x7 map of the centre-cropped photo with the face hidden. Adam 1e-4, batch 32, early stopping "
        f"on val macro mAP (patience {args.patience}, at most {args.epochs} epochs), seed 0. 95 % intervals: "
        "percentile bootstrap over the test faces (1,000 resamples).",
        "",
        "| row | model | parameters | test accuracy [95 % CI] | test macro mAP [95 % CI] | best epoch |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        a, (al, ah) = r["accuracy"], r["accuracy_ci"]
        p, (pl, ph) = r["macro_map"], r["macro_map_ci"]
        lines.append(
            f"| {r['row']} | `{r['model']}` | {r['parameters']:,} | {a:.3f} [{al:.3f}, {ah:.3f}] "
            f"| {p:.3f} [{pl:.3f}, {ph:.3f}] | {r['best_epoch']} |"
        )
    lines += [
        "",
        f"Command: `python benchmarks/expw_ablation.py --epochs {args.epochs} --patience {args.patience}`",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
