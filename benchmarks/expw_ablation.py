"""Face vs context on ExpW: the CAER-Net Table 3 ablation (frozen features and from pixels) and CAAN.

ExpW (``$EMOCONTEXT_DATA/expw``): 5,705 labelled faces in 5,408 web photos, the dataset's own
face boxes and train/val/test splits, 7 Ekman classes. Each face is one single-frame clip.

Frozen-feature rows (``emocontext extract --dataset expw --spatial --hide-face``): the project's
face CNN on the labelled face (1280-d) and the ImageNet EfficientNet-Lite0 map (1280x7x7) of the
centre-cropped photo **with the face hidden**; ``caer_net_features`` with the Table 3 switches
(F = face only, C = context only, cA = context spatial attention, fA = adaptive fusion), and
``caan`` / ``ffaa`` as one-frame models on the pooled context.

Pixel rows (``emocontext.training.pixels``): ``caer_net_s`` with the paper's trainable 2D encoders
(channels 32-64-128-256-256), trained from scratch on the 96x96 face crop and the whole photo
with the face hidden at 128x171, cropped to 112x112 (random crop, flip and colour jitter in
training). The decoded pixels are cached in ``--cache`` (uint8, about 0.5 GB).

Each row: Adam (1e-4 on features, 3e-4 from pixels), batch 32, early stopping on validation
macro mAP; test accuracy and macro mAP with 95 % percentile bootstrap intervals (1,000 resamples
of the test faces). Results accumulate in ``--out``'s JSON: a row already there is not retrained,
and every run directory checkpoints each epoch, so a killed run resumes.

    python benchmarks/expw_ablation.py --rows 0-7 --out benchmarks/expw_ablation.md     # frozen features
    python benchmarks/expw_ablation.py --rows 8,13 --out benchmarks/expw_ablation.md    # + pixel rows
    python benchmarks/expw_ablation.py --rows 14,15 --out benchmarks/expw_ablation.md   # + face dropout
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _machine import cpu_name

from emocontext.data.datasets import load_dataset
from emocontext.features.extract import Extractors, extract
from emocontext.features.specs import FACE_CNN
from emocontext.features.store import FeatureStore
from emocontext.labels import EKMAN7
from emocontext.metrics import accuracy, bootstrap_ci, macro_map
from emocontext.models.caer_net import TABLE3_ABLATIONS
from emocontext.training import TrainConfig, fit, load_model, manifest_from_store, predict_probs
from emocontext.training.datasets import FeatureSequenceDataset
from emocontext.training.pixels import PixelClip, PixelClipDataset, load_pixel_clips
from emocontext.video.pipeline import StreamConfig

T3 = TABLE3_ABLATIONS
#: the row ``scripts/export_context_model.py`` ships: CAER-Net whose context-only path (frames
#: without a face) is trained too (``face_dropout``, see ``emocontext.models.caer_net``)
SHIPPED = "F+C+cA+fA = CAER-Net, face dropout 0.2"
#: (title, input, model, options); input "features" (frozen CNNs) or "pixels" (trained from scratch)
ROWS = [
    ("F (face only)", "features", "caer_net_features", T3["F"]),
    ("C (context only)", "features", "caer_net_features", T3["C"]),
    ("C+cA (context only, attention)", "features", "caer_net_features", T3["C+cA"]),
    ("F+C (concatenation)", "features", "caer_net_features", T3["F+C"]),
    ("F+C+cA (+ context attention)", "features", "caer_net_features", T3["F+C+cA"]),
    ("F+C+cA+fA (+ adaptive fusion) = CAER-Net", "features", "caer_net_features", T3["F+C+cA+fA"]),
    ("CAAN (one frame)", "features", "caan", {}),
    ("FFAA (one frame)", "features", "ffaa", {}),
    ("F (face only)", "pixels", "caer_net_s", T3["F"]),
    ("C (context only)", "pixels", "caer_net_s", T3["C"]),
    ("C+cA (context only, attention)", "pixels", "caer_net_s", T3["C+cA"]),
    ("F+C (concatenation)", "pixels", "caer_net_s", T3["F+C"]),
    ("F+C+cA (+ context attention)", "pixels", "caer_net_s", T3["F+C+cA"]),
    ("F+C+cA+fA (+ adaptive fusion) = CAER-Net-S", "pixels", "caer_net_s", T3["F+C+cA+fA"]),
    ("F+C (concatenation), face dropout 0.2", "features", "caer_net_features", {**T3["F+C"], "face_dropout": 0.2}),
    (SHIPPED, "features", "caer_net_features", {**T3["F+C+cA+fA"], "face_dropout": 0.2}),
]
LR = {"features": 1e-4, "pixels": 3e-4}


def parse_rows(text: str) -> list[int]:
    """``"0-7,13"`` -> ``[0, ..., 7, 13]``; empty = all rows."""
    out: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out or list(range(len(ROWS)))


def feature_datasets(manifest, store_dir: Path) -> dict[str, FeatureSequenceDataset]:
    ex = Extractors.build(spatial=True, config=StreamConfig(hide_face=True))
    t0 = time.perf_counter()
    s = extract(manifest, store_dir, ex)
    print(f"extract: {s.done} new, {s.skipped} cached, {len(s.failed)} failed, {time.perf_counter() - t0:.0f} s")
    store = FeatureStore(store_dir)
    m = manifest_from_store(store, EKMAN7)
    return {
        split: FeatureSequenceDataset(store, m.split(split), EKMAN7, train=split == "train")
        for split in ("train", "val", "test")
    }


def pixel_datasets(manifest, cache: Path) -> dict[str, PixelClipDataset]:
    """One frame per face, decoded once and kept in ``cache``."""
    f = cache / "expw_pixels.npz"
    if f.exists():
        z = np.load(f)
        ids, face, context = z["ids"].tolist(), z["face"], z["context"]
        by_id = {e.clip_id: e for e in manifest}
        entries = [by_id[i] for i in ids]
        clips = [PixelClip(face[i : i + 1], context[i : i + 1], np.ones(1, bool)) for i in range(len(ids))]
    else:
        t0 = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if done % 1000 == 0 or done == total:
                print(f"decoded {done}/{total} ({time.perf_counter() - t0:.0f} s)", flush=True)

        entries, clips, failed = load_pixel_clips(list(manifest), on_progress=progress)
        for path, why in failed:
            print(f"skipped {path}: {why}")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / "expw_pixels.tmp.npz"
        face, context = np.concatenate([c.face for c in clips]), np.concatenate([c.context for c in clips])
        np.savez(tmp, ids=np.array([e.clip_id for e in entries]), face=face, context=context)
        os.replace(tmp, f)
    out = {}
    for split in ("train", "val", "test"):
        idx = [i for i, e in enumerate(entries) if e.split == split]
        out[split] = PixelClipDataset(
            [clips[i] for i in idx], [entries[i].label for i in idx], label_set=EKMAN7, train=split == "train"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")) / "expw")
    ap.add_argument("--store", type=Path, default=Path("runs/expw_store"))
    ap.add_argument("--cache", type=Path, default=Path("runs/expw_pixels"))
    ap.add_argument("--runs", type=Path, default=Path("runs/expw_ablation"))
    ap.add_argument("--epochs", type=int, default=30, help="at most this many epochs (frozen-feature rows)")
    ap.add_argument("--pixel-epochs", type=int, default=12, help="at most this many epochs (pixel rows)")
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N faces (smoke runs)")
    ap.add_argument("--rows", default="", help="row numbers to run, e.g. 0-7,13 (default all; see ROWS)")
    ap.add_argument("--out", type=Path, default=Path("runs/expw_ablation/results.md"))
    args = ap.parse_args()

    manifest = load_dataset("expw", args.data)
    if args.limit:
        manifest.entries = manifest.entries[: args.limit]
    results_file = args.out.with_suffix(".json")
    results = json.loads(results_file.read_text()) if results_file.exists() else []
    done = {(r["row"], r["input"]) for r in results}
    data: dict[str, dict] = {}
    for i in parse_rows(args.rows):
        title, source, model, options = ROWS[i]
        if (title, source) in done:
            continue
        if source not in data:
            data[source] = (
                feature_datasets(manifest, args.store) if source == "features" else pixel_datasets(manifest, args.cache)
            )
        ds = data[source]
        cfg = TrainConfig(
            model=model,
            epochs=args.epochs if source == "features" else args.pixel_epochs,
            patience=args.patience,
            lr=LR[source],
            model_kwargs=dict(options),
            # the recipe these rows were measured with (Adam, constant rate, macro mAP): the models'
            # paper recipes (emocontext models --recipes) came later and would change the rows
            optimizer="adam",
            lr_step=0,
            batch_size=32,
            weight_decay=0.0,
            selection="macro_map",
            loss_kwargs={"triplet": "batch_hard"} if model == "caan" else {},
        )
        t1 = time.perf_counter()
        res = fit(cfg, ds["train"], ds["val"], args.runs / f"row{i}_{model}", label_set=EKMAN7, on_log=print)
        net, _ = load_model(res.checkpoint)
        probs, y = predict_probs(net, ds["test"]), ds["test"].labels
        row = {
            "row": title,
            "input": source,
            "model": model,
            "options": options,
            "checkpoint": str(res.checkpoint),
            "parameters": res.parameters,
            "accuracy": accuracy(y, probs),
            "accuracy_ci": bootstrap_ci(y, probs, accuracy),
            "macro_map": macro_map(y, probs, len(EKMAN7)),
            "macro_map_ci": bootstrap_ci(y, probs, lambda a, b: macro_map(a, b, len(EKMAN7))),
            "val_macro_map": res.val_metrics.get("macro_map"),
            "best_epoch": res.best_epoch,
            "epochs_run": len(res.history),
            "train_clips_per_second": res.clips_per_second,
            "minutes": (time.perf_counter() - t1) / 60,
            "sizes": {k: len(v) for k, v in ds.items()},
            "command": "python " + shlex.join(sys.argv),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results_file.write_text(json.dumps(results, indent=2))
    args.out.write_text(report(results, args))
    print(args.out.read_text())


def report(results: list[dict], args) -> str:
    order = {(t, s): i for i, (t, s, _, _) in enumerate(ROWS)}
    results = sorted(results, key=lambda r: order.get((r["row"], r["input"]), 99))
    sizes = results[0]["sizes"] if results else {}
    lines = [
        "# ExpW: face vs context (CAER-Net Table 3 ablation, CAAN)",
        "",
        f"{sizes.get('train')} train / {sizes.get('val')} val / {sizes.get('test')} test faces (ExpW's own splits, "
        "grouped by photo), 7 classes. **Frozen features**: the project's face CNN (`FACE_CNN.version` "
        f"{FACE_CNN.version}) on the labelled face, aligned with the landmarks MTCNN finds near the box "
        "(a box crop where it finds none); "
        "the ImageNet EfficientNet-Lite0 1280x7x7 map of the centre-cropped photo with the face hidden; Adam 1e-4. "
        "**Pixels**: CAER-Net-S's own 2D encoders trained from scratch on the 96x96 face and the whole face-hidden "
        "photo (128x171, 112x112 crops); Adam 3e-4. Batch 32, early stopping on val macro mAP "
        f"(patience {args.patience}), seed 0. 95 % intervals: percentile bootstrap over the test faces "
        "(1,000 resamples).",
        "",
        "| row | input | model | parameters | test accuracy [95 % CI] | test macro mAP [95 % CI] | best epoch / run "
        "| train clips / s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        a, (al, ah) = r["accuracy"], r["accuracy_ci"]
        p, (pl, ph) = r["macro_map"], r["macro_map_ci"]
        lines.append(
            f"| {r['row']} | {r['input']} | `{r['model']}` | {r['parameters']:,} | {a:.3f} [{al:.3f}, {ah:.3f}] "
            f"| {p:.3f} [{pl:.3f}, {ph:.3f}] | {r['best_epoch']} / {r['epochs_run']} "
            f"| {r['train_clips_per_second']:.0f} |"
        )
    commands = dict.fromkeys(r.get("command", "?") for r in results)  # in row order, each once
    lines += ["", "Commands (a row already in the JSON beside this file is kept, not retrained):", ""]
    lines += [f"    {c}" for c in commands] + [""]
    lines += [
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
