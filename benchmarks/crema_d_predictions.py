"""Predicted emotion of each CREMA-D clip with the default face-only model and the context-aware one.

Six clips of actor 1001 (``$EMOCONTEXT_DATA/videos/crema-d``), one per emotion, 5 fps, MTCNN.
Six clips are a sanity check, not an accuracy estimate: one actor, one sentence, a green screen
(so the context stream sees almost nothing but the actor's shoulders).

    python benchmarks/crema_d_predictions.py --out benchmarks/crema_d_predictions.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _machine import cpu_name

from emocontext.data.datasets import load_dataset, map_labels
from emocontext.inference import Predictor
from emocontext.labels import EKMAN7


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    manifest = load_dataset("crema_d", args.data / "videos" / "crema-d")
    truth = {e.path: e.label for e in map_labels(manifest, EKMAN7).entries}
    models = ["face", "context"]  # the default (face, :func:`default_model`) and the shipped ExpW context model
    preds, secs = {}, {}
    for model in models:
        predictor = Predictor(model=model)
        t0 = time.perf_counter()
        preds[model] = {p: predictor.predict(p) for p in sorted(truth)}
        secs[model] = time.perf_counter() - t0
    rows = []
    for path, label in sorted(truth.items()):
        cells = [Path(path).name, label]
        for model in models:
            p = preds[model][path]
            cells.append(f"**{p.label}** ({p.confidence:.2f})" if p.label else "no face")
            if model == "context":
                lam = [fr.fusion_weights["face"] for fr in p.frames if fr.fusion_weights and fr.face_present]
                cells.append(f"{sum(lam) / max(1, len(lam)):.2f}")
        first = preds[models[0]][path]
        cells.append(f"{first.frames_with_face}/{first.num_frames}")
        rows.append("| " + " | ".join(cells) + " |")
    header = ["clip", "truth"]
    for model in models:
        header += [f"`{model}` model"] + (["mean lambda_face"] if model == "context" else [])
    header.append("frames with a face")
    n = len(truth)
    correct = {m: sum(preds[m][p].label == truth[p] for p in truth) for m in models}
    text = "\n".join(
        [
            "# CREMA-D clips: predicted emotion",
            "",
            "Six clips of actor 1001, one per emotion; 5 fps, MTCNN. A sanity check, not an accuracy "
            "estimate (one actor, one sentence, green screen: a context stream would see almost only the "
            "actor's shoulders).",
            "",
            "`face` is `predict`'s default; `context` is the shipped ExpW model (`--model context`).",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
            *rows,
            "",
            "Correct: "
            + ", ".join(f"`{m}` {correct[m]}/{n}" for m in models)
            + ". Wall time for the six clips: "
            + ", ".join(f"`{m}` {secs[m]:.1f} s" for m in models)
            + ".",
            "",
            "Command: `python benchmarks/crema_d_predictions.py --out benchmarks/crema_d_predictions.md`",
            "",
            f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads.",
            "",
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
