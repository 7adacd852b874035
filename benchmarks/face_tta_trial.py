"""Trial (issue 20): test-time augmentation of one face CNN, chosen on FER2013 PublicTest, and its cost.

Each variant is one more pass of the network over the 48 px grey faces: ``flip`` (mirrored), ``s72`` / ``s88`` /
``s96`` (upsampled to another side than the network's 80 px), ``zin`` / ``zout`` (a 2 px tighter / looser square
before the upsampling, edge pixels repeated), ``up`` / ``down`` / ``left`` / ``right`` (shifted 2 px, edges
repeated). The answer of a set of variants is the mean of their softmax probabilities. Variants are added greedily
by PublicTest accuracy (PrivateTest and CK+ never choose anything). A *gated* set runs the extra passes only on the
faces whose one-pass top probability is under a threshold (chosen on PublicTest), so confident faces cost one pass;
the table gives the mean passes a face on each set, the cost that the speed bar of issue 22 (CK+ crops) sees.

    python benchmarks/face_tta_trial.py WEIGHTS [--out benchmarks/face_tta_trial.json]

Writes nothing but ``--out`` (JSON) and a cache of the passes' probabilities (``runs/face_tta/<name>.npz``).
Needs ``$EMOCONTEXT_DATA`` (default ``../shared/data``) and the training extras (``pip install -e ".[train]"``).
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

import face_teacher_ensemble  # noqa: E402  (the proxy sets: FER2013 PublicTest / PrivateTest, CK+)
import train_face_cnn as tfc  # noqa: E402


def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    p = np.pad(x, ((0, 0), (2, 2), (2, 2)), mode="edge")
    return np.ascontiguousarray(p[:, 2 + dy : 2 + dy + 48, 2 + dx : 2 + dx + 48])


#: variant -> (faces transform, input side)
VARIANTS = {
    "id": (lambda x: x, 80),
    "flip": (lambda x: np.ascontiguousarray(x[:, :, ::-1]), 80),
    "s72": (lambda x: x, 72),
    "s88": (lambda x: x, 88),
    "s96": (lambda x: x, 96),
    "zin": (lambda x: np.ascontiguousarray(x[:, 2:-2, 2:-2]), 80),
    "zout": (lambda x: np.pad(x, ((0, 0), (2, 2), (2, 2)), mode="edge"), 80),
    "up": (lambda x: _shift(x, 2, 0), 80),
    "down": (lambda x: _shift(x, -2, 0), 80),
    "left": (lambda x: _shift(x, 0, 2), 80),
    "right": (lambda x: _shift(x, 0, -2), 80),
}


def passes(weights: str, faces: dict[str, np.ndarray], cache: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{variant: {set: (N, 8) softmax}}``, cached in ``cache``."""
    if cache.is_file():
        z = np.load(cache)
        return {v: {k: z[f"{v}/{k}"] for k in faces} for v in VARIANTS}
    net = tfc.inference_net(weights)
    out = {}
    with torch.no_grad():
        for v, (transform, side) in VARIANTS.items():
            logits = {k: tfc.logits_of(net, transform(x), side=side) for k, x in faces.items()}
            out[v] = {k: torch.from_numpy(z).softmax(-1).numpy() for k, z in logits.items()}
            print("pass", v, flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{v}/{k}": p for v, d in out.items() for k, p in d.items()})
    tmp.replace(cache)
    return out


def accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float((p[:, :7].argmax(1) == y).mean())


def answer(P: dict, chosen: list[str], k: str, tau: float = 1.0) -> tuple[np.ndarray, float]:
    """Probabilities of the set ``chosen`` on set ``k``, the extra passes only where the plain top probability is
    under ``tau``; and the mean passes a face."""
    one = P["id"][k]
    full = np.mean([P[v][k] for v in chosen], axis=0)
    gate = one.max(1) < tau
    return np.where(gate[:, None], full, one), 1 + (len(chosen) - 1) * float(gate.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--max-passes", type=int, default=4, help="largest set tried in the greedy search")
    args = ap.parse_args()
    torch.set_num_threads(2)
    faces, labels = face_teacher_ensemble.proxy_sets()
    name = Path(args.weights).parent.name + "_" + Path(args.weights).stem
    P = passes(args.weights, faces, REPO / "runs" / "face_tta" / f"{name}.npz")

    def row(chosen, tau=1.0):
        r = {"variants": "+".join(chosen), "tau": tau}
        for k in faces:
            p, cost = answer(P, chosen, k, tau)
            r[f"{k}_acc"] = round(100 * accuracy(p, labels[k]), 2)
            r[f"{k}_passes"] = round(cost, 2)
        return r

    rows = [row([v]) for v in VARIANTS] + [row(["id", "flip"])]
    chosen = ["id"]
    while len(chosen) < args.max_passes:
        best = max((v for v in VARIANTS if v not in chosen), key=lambda v: row(chosen + [v])["val_acc"])
        chosen = chosen + [best]
        rows.append(row(chosen))
    for s in (["id", "flip"], chosen):
        taus = [round(t, 2) for t in np.arange(0.3, 1.0, 0.05)]
        best_tau = max(taus, key=lambda t: (row(s, t)["val_acc"], -t))
        rows += [row(s, t) for t in taus if t in (0.5, 0.6, 0.7, 0.8, best_tau)]
    for r in rows:
        print(json.dumps(r))
    if args.out:
        args.out.write_text(json.dumps({"weights": args.weights, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
