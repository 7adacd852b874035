"""The face CNN on faces it was not trained on: ExpW (web photos) and CK+ (posed, lab), no training on either.

* **ExpW zero-shot**: every labelled face of ExpW's val and test splits, cropped from the photo with the
  dataset's box by the library's ``face_crop`` (the geometry ``predict`` uses around a detector box: a square
  of ``max(w, h) * (1 + 2 * margin)``, 128 px) at each ``--margins`` value, read by ``FaceExtractor`` (flip
  pass, temperature); the 8-class probabilities are read on ExpW's 7 classes with
  ``labels.restrict_probabilities`` (contempt mapped out). Accuracy and macro mAP with 95 % bootstrap CIs.
* **CK+ zero-shot**: the 327 CK+48 sequences (3 frames each), probabilities averaged over the frames and read
  on CK+'s 7 classes (contempt included: the 8-class model has it).

    python benchmarks/face_cnn_transfer.py --out benchmarks/face_cnn_transfer.md

``--weights`` measures another face CNN file (default: the installed one). Nothing is trained or written
besides ``--out`` and its ``.json`` twin.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from _machine import cpu_name
from _results import save

from emocontext.data.datasets import ckplus_sequences, load_dataset
from emocontext.features.face import FaceExtractor
from emocontext.features.specs import FACE_CNN, face_weights_path
from emocontext.labels import CKPLUS7, EKMAN7, EKMAN8, restrict_probabilities
from emocontext.metrics import accuracy, bootstrap_ci, macro_map
from emocontext.video.streams import face_crop


def summary(y: np.ndarray, p: np.ndarray) -> dict:
    return {
        "n": int(len(y)),
        "accuracy": accuracy(y, p),
        "accuracy_ci95": bootstrap_ci(y, p, accuracy),
        "macro_map": macro_map(y, p),
        "macro_map_ci95": bootstrap_ci(y, p, macro_map),
    }


def expw_zero_shot(extractor: FaceExtractor, root: Path, margins: list[float]) -> dict:
    manifest = load_dataset("expw", root)
    out = {}
    for split in ("val", "test"):
        entries = [e for e in manifest.entries if e.split == split]
        y = np.array([EKMAN7.index(e.label) for e in entries])
        images: dict[str, np.ndarray] = {}
        for margin in margins:
            crops = []
            for e in entries:
                if e.path not in images:
                    images[e.path] = cv2.cvtColor(cv2.imread(e.path), cv2.COLOR_BGR2RGB)
                crops.append(face_crop(images[e.path], e.box, margin=margin))
            _, probs = extractor(np.stack(crops))
            out[f"{split}_margin_{margin}"] = summary(y, restrict_probabilities(probs, EKMAN8, EKMAN7))
    return out


def ckplus_zero_shot(extractor: FaceExtractor, root: Path) -> dict:
    seqs = ckplus_sequences(root)
    y = np.array([CKPLUS7.index(s.label) for s in seqs])
    probs = []
    for s in seqs:
        crops = np.stack([cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB) for f in s.frames])
        probs.append(extractor(crops)[1].mean(0))
    return {"sequences": summary(y, restrict_probabilities(np.stack(probs), EKMAN8, CKPLUS7))}


def fmt(r: dict, key: str) -> str:
    lo, hi = r[f"{key}_ci95"]
    return f"{r[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")))
    ap.add_argument("--weights", type=Path, default=None, help="face CNN weights file (default: the installed one)")
    ap.add_argument("--margins", type=float, nargs="+", default=[0.1, 0.2])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    weights = args.weights or face_weights_path()
    extractor = FaceExtractor(weights)
    t0 = time.perf_counter()
    res = {
        "weights": str(weights),
        "weights_sha256": extractor.weights_sha256,
        "face_cnn_version": FACE_CNN.version,
        "expw": expw_zero_shot(extractor, args.data / "expw", args.margins),
        "ckplus": ckplus_zero_shot(extractor, args.data / "ckplus48"),
        "seconds": time.perf_counter() - t0,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_name(),
    }
    print(json.dumps(res, indent=2))
    if args.out is None:
        return
    rows = [
        f"| ExpW {key.split('_')[0]} | {key.split('_')[-1]} | {r['n']} | {fmt(r, 'accuracy')} | {fmt(r, 'macro_map')} |"
        for key, r in res["expw"].items()
    ]
    ck = res["ckplus"]["sequences"]
    rows.append(
        f"| CK+ sequences (mean of 3 frames), 7 classes | - | {ck['n']} | "
        f"{fmt(ck, 'accuracy')} | {fmt(ck, 'macro_map')} |"
    )
    text = f"""# The face CNN on faces it was not trained on (zero-shot)

Face CNN `{Path(res["weights"]).name}` (version {res["face_cnn_version"]}, sha256 {res["weights_sha256"]}), read
through `FaceExtractor` (flip pass, temperature). ExpW: the dataset's face boxes, cropped by `face_crop` at the margin
given (the geometry `predict` uses around a detector box), 7 classes (contempt mapped out). No ExpW or CK+ training.
95 % bootstrap intervals (1,000 resamples).

| data | crop margin | faces | accuracy [95 % CI] | macro mAP [95 % CI] |
|---|---|---|---|---|
{chr(10).join(rows)}

`python benchmarks/face_cnn_transfer.py --out {args.out}` ({res["seconds"] / 60:.1f} minutes, {res["torch_threads"]}
torch threads, {res["cpu"]}).
"""
    save(args.out, text, res)


if __name__ == "__main__":
    main()
