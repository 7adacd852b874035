"""What one face costs in the int8 graph ``predict`` runs, for each trunk and input side of the face CNN.

Issue 20 / issue 22: a larger face network may ship only if ``predict`` stays within the speed bar (CK+ crops: at
most half the ``fer`` package's wall time; version 7 measured 0.44, the face CNN 66 % of our time there,
``benchmarks/vs_fer.md``). This prices the candidates before any is trained or shipped: for each (trunk, side) the
face graph as the library builds it (:class:`~emocontext.features.backbones.FaceExpressionCNN`, the last stage at
stride 1, batch norms folded, static padding), quantised to int8 exactly as the shipped graph is
(``scripts/export_onnx.py``'s ``quantise_face_graph``, ranges from 512 real training faces at that side), run by
ONNX Runtime on one thread (what each of ``predict``'s workers uses) in batches of 16. The weights are random: the
time of a convolution does not depend on its values. The graphs are timed in interleaved rounds (every graph once a
round) so that the machine's drift falls on all of them alike; the table gives the median and the range over rounds.

Run: python benchmarks/face_trunk_cost.py --out benchmarks/face_trunk_cost.md
Data: $EMOCONTEXT_DATA/fer2013/train and packs/expw_faces64.npz (the calibration faces).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

CANDIDATES = (
    ("efficientnet_lite0", 80),
    ("efficientnet_lite2", 64),
    ("efficientnet_lite2", 72),
    ("efficientnet_lite2", 80),
)


def int8_graph(trunk: str, side: int, calibration: np.ndarray) -> bytes:
    """The int8 face graph of a randomly initialised network on ``trunk`` reading ``side`` px faces."""
    import cv2
    import torch
    from export_onnx import quantise_face_graph

    from emocontext.features.backbones import FaceExpressionCNN, trace_face_graph
    from emocontext.features.specs import FACE_CNN

    torch.manual_seed(0)
    net = FaceExpressionCNN(trunk=trunk).eval()
    graph = trace_face_graph(net, (side, side), flip=False)
    faces = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_LINEAR) for f in calibration])
    return quantise_face_graph(graph, faces, dataclasses.replace(FACE_CNN, input_size=(side, side)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("face_trunk_cost.md"))
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()

    from _machine import cpu_name
    from _results import save
    from export_onnx import calibration_faces

    from emocontext import runtime

    runtime.set_threads(1)  # what each of predict's workers uses
    calibration = calibration_faces()
    sessions = {}
    for trunk, side in CANDIDATES:
        print(f"building {trunk} at {side} px", flush=True)
        sessions[trunk, side] = runtime.session_from_bytes(int8_graph(trunk, side, calibration), trunk)
    rng = np.random.default_rng(0)
    inputs = {key: rng.standard_normal((args.batch, 3, key[1], key[1])).astype(np.float32) for key in sessions}
    for key, s in sessions.items():  # warm-up
        for _ in range(3):
            s.run(None, {"x": inputs[key]})
    ms: dict[tuple[str, int], list[float]] = {key: [] for key in sessions}
    for r in range(args.rounds):
        for key, s in sessions.items():
            t0 = time.perf_counter()
            for _ in range(5):
                s.run(None, {"x": inputs[key]})
            ms[key].append((time.perf_counter() - t0) / (5 * args.batch) * 1000)
        print(f"round {r + 1}/{args.rounds}", flush=True)
    base = float(np.median(ms[CANDIDATES[0]]))
    rows = []
    for (trunk, side), m in ms.items():
        med = float(np.median(m))
        rows.append(
            {
                "trunk": trunk,
                "side": side,
                "ms_median": med,
                "ms_min": min(m),
                "ms_max": max(m),
                "x_shipped": med / base,
            }
        )
    md = [
        "# Cost of one face in the int8 face graph, by trunk and input side",
        "",
        f"Command: `python benchmarks/face_trunk_cost.py --out {args.out}`; machine: {cpu_name()}; ONNX Runtime, one "
        f"thread, batches of {args.batch}, {args.rounds} interleaved rounds of 5 runs; int8 as shipped (ranges from "
        "512 training faces); random weights.",
        "",
        "| trunk | side px | ms a face, median (range) | x version 7's network (Lite0, 80 px) |",
        "|---|---|---|---|",
    ]
    md += [
        f"| {r['trunk']} | {r['side']} | {r['ms_median']:.3f} ({r['ms_min']:.3f}-{r['ms_max']:.3f}) "
        f"| {r['x_shipped']:.2f} |"
        for r in rows
    ]
    save(args.out, "\n".join(md) + "\n", {"machine": cpu_name(), "batch": args.batch, "rows": rows})
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
