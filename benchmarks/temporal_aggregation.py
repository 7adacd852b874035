"""Clip emotion from per-frame probabilities: the mean (what ``predict`` does) against the alternatives.

Aggregators over the frames with a face, each giving a clip distribution whose argmax is the answer:

* ``mean``: the mean of the frame probabilities (``predict``'s clip answer);
* ``mean_log``: the mean of the log-probabilities (a product of experts: a geometric mean);
* ``confidence_weighted``: frames weighted by their top probability;
* ``size_weighted``: frames weighted by the face box area (a larger face is a better-resolved face;
  ``predict`` only, where boxes come from the detector);
* ``trimmed``: per class, the mean after dropping the lowest and highest 20 % of frames
  (``scipy.stats.trim_mean``);
* ``vote``: the most frequent frame argmax (ties: the higher mean probability).

Labelled sequences available here: the 327 CK+ sequences (3 frames each, read as crops, CK+'s 7 classes) and
the 6 CREMA-D clips and 1 RAVDESS clip (``predict`` with MTCNN at 5 fps; 8-class answers read on Ekman 7).
Accuracy with 95 % bootstrap CIs, and the number of clips where each aggregator disagrees with the
mean.

    python benchmarks/temporal_aggregation.py --out benchmarks/temporal_aggregation.md
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from _machine import cpu_name
from scipy.stats import trim_mean

from emocontext.data.datasets import ckplus_sequences, load_dataset, map_labels
from emocontext.features.face import FaceExtractor
from emocontext.labels import CKPLUS7, EKMAN7, EKMAN8, restrict_probabilities
from emocontext.metrics import accuracy, bootstrap_ci


def _vote(p: np.ndarray, _w: np.ndarray) -> np.ndarray:
    counts = np.bincount(p.argmax(1), minlength=p.shape[1]).astype(float)
    return counts + 1e-3 * p.mean(0)  # ties broken by the mean probability


AGGREGATORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean": lambda p, w: p.mean(0),
    "mean_log": lambda p, w: np.log(np.clip(p, 1e-6, 1)).mean(0),
    "confidence_weighted": lambda p, w: (p * p.max(1, keepdims=True)).sum(0),
    "size_weighted": lambda p, w: (p * w[:, None]).sum(0),
    "trimmed": lambda p, w: trim_mean(p, 0.2, axis=0),
    "vote": _vote,
}


def ckplus_frames(data: Path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    extractor = FaceExtractor()
    seqs = ckplus_sequences(data / "ckplus48")
    probs, sizes = [], []
    for s in seqs:
        crops = np.stack([cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB) for f in s.frames])
        probs.append(restrict_probabilities(extractor(crops)[1], EKMAN8, CKPLUS7))
        sizes.append(np.ones(len(crops)))
    return probs, sizes, np.array([CKPLUS7.index(s.label) for s in seqs])


def video_frames(data: Path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[str]]:
    from emocontext.inference import Predictor

    predictor = Predictor(model="face")
    probs, sizes, labels, names = [], [], [], []
    for dataset, root in (("crema_d", data / "videos" / "crema-d"), ("ravdess", data / "videos" / "ravdess")):
        manifest = map_labels(load_dataset(dataset, root), EKMAN7)  # RAVDESS calm -> neutral
        target = EKMAN7
        for e in manifest.entries:
            pred = predictor.predict(e.path)
            frames = [f for f in pred.frames if f.probabilities]
            p = np.array([[f.probabilities[n] for n in pred.probabilities] for f in frames])
            p = restrict_probabilities(p, EKMAN8, target)  # the 8-class answers read on Ekman 7
            probs.append(p)
            sizes.append(np.array([(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in frames]))
            labels.append(target.index(e.label))
            names.append(Path(e.path).name)
    return probs, sizes, np.array(labels), names


def compare(probs: list[np.ndarray], sizes: list[np.ndarray], y: np.ndarray) -> dict:
    out, base = {}, None
    for name, agg in AGGREGATORS.items():
        pred = np.array([int(agg(p, w).argmax()) for p, w in zip(probs, sizes, strict=True)])
        base = pred if base is None else base
        out[name] = {
            "accuracy": accuracy(y, pred),
            "accuracy_ci95": bootstrap_ci(y, pred, accuracy) if len(y) > 10 else None,
            "differs_from_mean": int((pred != base).sum()),
            "right": int((pred == y).sum()),
            "n": int(len(y)),
        }
    return out


HEADER = (
    "| aggregator | CK+ 327 sequences: accuracy [95 % CI] | CK+: answers that differ from `mean` "
    "| CREMA-D + RAVDESS clips right | clips that differ from `mean` |"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    ck = compare(*ckplus_frames(args.data))
    vp, vs, vy, names = video_frames(args.data)
    vid = compare(vp, vs, vy)
    res = {"ckplus_sequences": ck, "videos": vid, "video_clips": names, "cpu": cpu_name()}
    print(json.dumps(res, indent=2))
    if args.out is None:
        return
    rows = []
    for name in AGGREGATORS:
        c, v = ck[name], vid[name]
        lo, hi = c["accuracy_ci95"]
        rows.append(
            f"| `{name}` | {c['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | {c['differs_from_mean']} | "
            f"{v['right']} of {v['n']} | {v['differs_from_mean']} |"
        )
    args.out.write_text(
        f"""# Temporal aggregation: the clip answer from per-frame probabilities

{__doc__.split("Labelled sequences", 1)[0].strip()}

{HEADER}
|---|---|---|---|---|
{chr(10).join(rows)}

Clips: {", ".join(names)}. `python benchmarks/temporal_aggregation.py --out {args.out}` ({res["cpu"]}).
"""
    )
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
