"""CAER-Net-S trained from pixels on ExpW: the CAER-Net Table 3 rows with trainable 2D encoders.

ExpW (``$EMOCONTEXT_DATA/expw``): 5,705 labelled faces in 5,408 web photos, the dataset's own
face boxes and train/val/test splits, 7 Ekman classes. Inputs (``emocontext.data.pixels``,
CAER-Net section 5.1): the face crop at 96x96 and the whole photo with the face hidden, resized to
128x171, cropped to 112x112 (random crop, flip and colour jitter in training; centre crop in
evaluation). The network is trained from scratch, as in the paper.

Each row: Adam, batch 32, early stopping on validation macro mAP; test accuracy and macro mAP
with 95 % percentile bootstrap intervals (1,000 resamples of the test faces). The decoded
pixel streams are cached in ``--cache`` (uint8, about 0.5 GB) so reruns skip decoding; every
row's run directory checkpoints each epoch and resumes after a kill.

    python benchmarks/expw_caer_net_s.py --rows 5 --epochs 12 --out benchmarks/expw_caer_net_s.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from _machine import cpu_name

from emocontext.data.adapters import load_dataset
from emocontext.data.pixels import PixelClip, PixelClipDataset, load_pixel_clips
from emocontext.labels import EKMAN7
from emocontext.metrics import accuracy, bootstrap_ci, macro_map
from emocontext.models.caer_net import TABLE3_ABLATIONS
from emocontext.train import TrainConfig, fit, load_model, predict_probs

ROWS = ["F", "C", "C+cA", "F+C", "F+C+cA", "F+C+cA+fA"]


def cached_clips(manifest, cache: Path) -> tuple[list, list[PixelClip]]:
    """The manifest's pixel clips (one frame per ExpW face), decoded once and kept in ``cache``."""
    f = cache / "expw_pixels.npz"
    if f.exists():
        z = np.load(f)
        ids, face, context = z["ids"].tolist(), z["face"], z["context"]
        by_id = {e.clip_id: e for e in manifest}
        entries = [by_id[i] for i in ids]
        clips = [PixelClip(face[i : i + 1], context[i : i + 1], np.ones(1, bool)) for i in range(len(ids))]
        return entries, clips
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"decoded {done}/{total} ({time.perf_counter() - t0:.0f} s)", flush=True)

    entries, clips, failed = load_pixel_clips(list(manifest), progress=progress)
    for path, why in failed:
        print(f"skipped {path}: {why}", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / "expw_pixels.tmp.npz"
    np.savez(
        tmp,
        ids=np.array([e.clip_id for e in entries]),
        face=np.concatenate([c.face for c in clips]),
        context=np.concatenate([c.context for c in clips]),
    )
    os.replace(tmp, f)
    return entries, clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")) / "expw")
    ap.add_argument("--cache", type=Path, default=Path("runs/expw_pixels"))
    ap.add_argument("--runs", type=Path, default=Path("runs/expw_caer_net_s"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N faces (smoke runs)")
    ap.add_argument("--rows", default="", help=f"comma-separated row numbers of {ROWS} (default all)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    manifest = load_dataset("expw", args.data)
    if args.limit:
        manifest.entries = manifest.entries[: args.limit]
    entries, clips = cached_clips(manifest, args.cache if not args.limit else args.cache / f"limit{args.limit}")
    by_split = {s: [i for i, e in enumerate(entries) if e.split == s] for s in ("train", "val", "test")}

    def dataset(split: str, train: bool) -> PixelClipDataset:
        idx = by_split[split]
        return PixelClipDataset(
            [clips[i] for i in idx], [entries[i].label for i in idx], label_set=EKMAN7, train=train, seed=0
        )

    train, val, test = dataset("train", True), dataset("val", False), dataset("test", False)
    chosen = [int(i) for i in args.rows.split(",") if i] or list(range(len(ROWS)))
    results_file = (args.out or args.runs / "results.md").with_suffix(".json")
    results = json.loads(results_file.read_text()) if results_file.exists() else []
    done = {r["row"] for r in results}
    for i in chosen:
        row = ROWS[i]
        if row in done:
            continue
        cfg = TrainConfig(
            model="caer_net_s",
            epochs=args.epochs,
            patience=args.patience,
            lr=args.lr,
            model_kwargs=dict(TABLE3_ABLATIONS[row]),
        )
        t1 = time.perf_counter()
        res = fit(cfg, train, val, args.runs / f"row{i}", label_set=EKMAN7, progress=lambda m: print(m, flush=True))
        net, _ = load_model(res.checkpoint)
        probs = predict_probs(net, test)
        y = test.labels
        r = {
            "row": row,
            "parameters": res.parameters,
            "accuracy": accuracy(y, probs),
            "accuracy_ci": bootstrap_ci(y, probs, accuracy),
            "macro_map": macro_map(y, probs, len(EKMAN7)),
            "macro_map_ci": bootstrap_ci(y, probs, lambda a, b: macro_map(a, b, len(EKMAN7))),
            "best_epoch": res.best_epoch,
            "epochs_run": len(res.history),
            "train_images_per_second": res.clips_per_second,
            "minutes": (time.perf_counter() - t1) / 60,
        }
        results.append(r)
        print(json.dumps(r), flush=True)
        results_file.parent.mkdir(parents=True, exist_ok=True)
        results_file.write_text(json.dumps(results, indent=2))
    lines = [
        "# ExpW: CAER-Net-S trained from pixels (CAER-Net Table 3 rows)",
        "",
        f"{len(train)} train / {len(val)} val / {len(test)} test faces (ExpW's own splits, grouped by photo). "
        "Face crops 96x96, the whole photo with the face hidden at 128x171 cropped to 112x112 "
        "(`emocontext.data.pixels`); `caer_net_s` with the paper's channels (32, 64, 128, 256, 256), trained "
        f"from scratch: Adam {args.lr:g}, batch 32, early stopping on val macro mAP (patience {args.patience}, "
        f"at most {args.epochs} epochs), seed 0. 95 % intervals: percentile bootstrap over the test faces "
        "(1,000 resamples).",
        "",
        "| row | parameters | test accuracy [95 % CI] | test macro mAP [95 % CI] | best epoch / run | "
        "train images / s | minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        a, (al, ah) = r["accuracy"], r["accuracy_ci"]
        p, (pl, ph) = r["macro_map"], r["macro_map_ci"]
        lines.append(
            f"| {r['row']} | {r['parameters']:,} | {a:.3f} [{al:.3f}, {ah:.3f}] | {p:.3f} [{pl:.3f}, {ph:.3f}] "
            f"| {r['best_epoch']} / {r['epochs_run']} | {r['train_images_per_second']:.1f} | {r['minutes']:.0f} |"
        )
    lines += [
        "",
        f"Command: `python benchmarks/expw_caer_net_s.py --rows {args.rows or 'all'} --epochs {args.epochs} "
        f"--patience {args.patience} --lr {args.lr:g}`",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
