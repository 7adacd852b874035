"""Trial (issue 20): face CNNs and their ensemble (mean probability), in one process, on the proxies that pick a
distillation teacher: FER2013 PublicTest (selection) and PrivateTest (own labels, contempt mapped out), and the 927
six-class CK+ peak crops (answers over the Ekman 7, so "neutral" counts wrong).

Each network reads the 48 px grey faces upsampled to its own input side (``WEIGHTS@SIDE``, default the library's
``FACE_CNN.input_size``), as ``scripts/train_face_cnn.py``'s ``logits_of`` does (one pass, and with the mirrored
pass); these in-process numbers reproduce ``predict``'s for the float network (``benchmarks/face_kd_trial.md``).

    python benchmarks/face_teacher_ensemble.py WEIGHTS[@SIDE] ... [--out benchmarks/face_teacher_trial.json]

Writes nothing but ``--out`` (JSON). Needs ``$EMOCONTEXT_DATA`` (default ``../shared/data``) and the training
extras (``pip install -e ".[train]"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import head_bias_probe  # noqa: E402  (CK+ crops and their labels)
import train_face_cnn as tfc  # noqa: E402


def probabilities(name: str, faces: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """``{set: {"one": (N, 8), "flip": (N, 8)}}`` softmax of the network ``name`` (``WEIGHTS[@SIDE]``).

    The flip pass's logits are the mean of the plain and the mirrored face's (``feature_map(mirrored=True)``
    averages the two maps, and the pooling and the head after it are linear), so each face goes through the
    trunk twice, not three times.
    """
    path, side = tfc.teacher_spec(name, tfc.FACE_CNN.input_size[0])
    net = tfc.inference_net(path)
    out = {}
    for k, x in faces.items():
        one = tfc.logits_of(net, x, side=side)
        flip = (one + tfc.logits_of(net, np.ascontiguousarray(x[:, :, ::-1]), side=side)) / 2
        out[k] = {"one": torch.from_numpy(one).softmax(-1).numpy(), "flip": torch.from_numpy(flip).softmax(-1).numpy()}
    return out


def row(p: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Accuracy / macro recall (and CK+'s "neutral" share) in % of one network's or the ensemble's answers
    (``head_bias_probe.scores`` over the Ekman 7: contempt mapped out)."""
    res = {}
    for k, y in labels.items():
        s = head_bias_probe.scores(p[k][:, :7], y, np.zeros(7))
        res[f"{k}_acc"] = round(100 * s["accuracy"], 2)
        res[f"{k}_macro_recall"] = round(100 * s["macro_recall"], 2)
        if k == "ckplus6":
            res["ckplus6_neutral"] = round(100 * s["neutral"], 2)
    return res


def proxy_sets() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``({set: faces}, {set: labels})`` for ``val`` / ``test`` (FER2013 PublicTest / PrivateTest, 48 px grey, own
    labels) and ``ckplus6`` (the CK+ crops, grey); the FER2013 splits cached in ``runs/face_teacher_cache``."""
    cache = REPO / "runs" / "face_teacher_cache"
    data = head_bias_probe.DATA / "fer2013"
    va, te = tfc.load_split(data, "val", cache), tfc.load_split(data, "test", cache)
    ck_x, ck_y = head_bias_probe.ckplus6()
    faces = {"val": va["x"], "test": te["x"], "ckplus6": ck_x[..., 0]}
    labels = {"val": va["y7"], "test": te["y7"], "ckplus6": ck_y}
    return faces, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", nargs="+", help="WEIGHTS or WEIGHTS@SIDE (input side in px)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    faces, labels = proxy_sets()
    probs = {name: probabilities(name, faces) for name in args.weights}
    result = {}
    for name, p in probs.items():
        result[name] = {mode: row({k: v[mode] for k, v in p.items()}, labels) for mode in ("one", "flip")}
        print(name, json.dumps(result[name]), flush=True)
    if len(probs) > 1:
        mean = {
            mode: {k: np.mean([p[k][mode] for p in probs.values()], axis=0) for k in faces} for mode in ("one", "flip")
        }
        result["ensemble"] = {mode: row(mean[mode], labels) for mode in ("one", "flip")}
        print("ensemble", json.dumps(result["ensemble"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
