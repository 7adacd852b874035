"""Probe (issue 20): can per-class offsets on the face CNN's log-probabilities, chosen on PublicTest alone, move
the two missed bars (FER2013 PrivateTest accuracy >= 68 %, CK+ 6-class macro recall >= 65 %)?

The offsets ``b`` (7 values, Ekman 7; contempt mapped out as the bars read it) are fitted by coordinate search on
FER2013 PublicTest to maximise the mean of accuracy and macro recall (the training script's selection score); the
held-out rows are FER2013 PrivateTest (own labels) and the CK+ peak crops (6 classes, "neutral" a possible answer).
Faces go to the face CNN whole, as ``predict --detector none`` gives them (48 px grey, replicated to RGB).

    python benchmarks/head_bias_probe.py [--weights FILE] [--out benchmarks/head_bias_probe.md]

Writes nothing but ``--out`` (markdown + .json). Needs ``$EMOCONTEXT_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np

from emocontext.features.face import FaceExtractor
from emocontext.labels import EKMAN7

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMOCONTEXT_DATA", REPO.parent / "shared" / "data"))
CKPLUS_NAMES = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}


def _faces(files: list[Path]) -> np.ndarray:
    grey = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    return np.stack([np.repeat(g[:, :, None], 3, axis=2) for g in grey])


def fer2013(split: str) -> tuple[np.ndarray, np.ndarray]:
    files, labels = [], []
    for k, name in enumerate(EKMAN7.names):
        for f in sorted((DATA / "fer2013" / split / name).glob("*.jpg")):
            files.append(f)
            labels.append(k)
    return _faces(files), np.array(labels)


def ckplus6() -> tuple[np.ndarray, np.ndarray]:
    files, labels = [], []
    for folder, name in CKPLUS_NAMES.items():
        for f in sorted((DATA / "ckplus48" / folder).glob("*.png")):
            files.append(f)
            labels.append(EKMAN7.index(name))
    return _faces(files), np.array(labels)


def scores(logp: np.ndarray, y: np.ndarray, b: np.ndarray) -> dict[str, float]:
    pred = (logp + b).argmax(1)
    classes = np.unique(y)
    recall = {EKMAN7.names[c]: float((pred[y == c] == c).mean()) for c in classes}
    return {
        "accuracy": float((pred == y).mean()),
        "macro_recall": float(np.mean(list(recall.values()))),
        "neutral": float((pred == EKMAN7.index("neutral")).mean()),
        "recall": recall,
    }


def fit_offsets(logp: np.ndarray, y: np.ndarray, passes: int = 3) -> np.ndarray:
    b = np.zeros(logp.shape[1])
    grid = np.round(np.arange(-1.0, 1.0001, 0.05), 2)

    def objective(v):
        s = scores(logp, y, v)
        return (s["accuracy"] + s["macro_recall"]) / 2

    best = objective(b)
    for _ in range(passes):
        for k in range(len(b)):
            for g in grid:
                trial = b.copy()
                trial[k] = g
                value = objective(trial)
                if value > best + 1e-9:
                    best, b = value, trial
    return b - b.mean()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    face = FaceExtractor(args.weights)
    sets = {"val": fer2013("val"), "test": fer2013("test"), "ckplus6": ckplus6()}
    logp = {}
    for name, (x, _) in sets.items():
        _, probs = face(x)
        logp[name] = np.log(np.maximum(probs[:, :7], 1e-12))  # contempt mapped out: argmax over the Ekman 7
    b = fit_offsets(logp["val"], sets["val"][1])
    rows = {}
    for name, (_, y) in sets.items():
        rows[name] = {"as shipped": scores(logp[name], y, np.zeros(7)), "with offsets": scores(logp[name], y, b)}
    result = {
        "offsets": dict(zip(EKMAN7.names, np.round(b, 3).tolist(), strict=True)),
        "rows": rows,
        "weights": str(args.weights or "shipped"),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        lines = [
            "# Per-class offsets on the face CNN's answer, fitted on PublicTest (issue 20 probe)",
            "",
            __doc__.split("\n\n")[0].replace("\n", " "),
            "",
            f"Command: `python benchmarks/head_bias_probe.py --out {args.out}`; weights: {result['weights']}.",
            "",
            "Offsets (log-probability): " + ", ".join(f"{k} {v:+.2f}" for k, v in result["offsets"].items()),
            "",
            "| set | answer | accuracy % | macro recall % | answered neutral % |",
            "|---|---|---|---|---|",
        ]
        for name, r in rows.items():
            for kind, s in r.items():
                lines.append(
                    f"| {name} | {kind} | {100 * s['accuracy']:.1f} | {100 * s['macro_recall']:.1f} | "
                    f"{100 * s['neutral']:.1f} |"
                )
        args.out.write_text("\n".join(lines) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
