"""CPU training throughput (clips per second) of every registered feature-sequence model.

Synthetic batches of the project's real feature sizes: 32 clips of 25 frames (5 s at
5 fps), face and context features of 1280, face maps 1280x2x2, 8 classes, 20 % of
frames without a face. One step = forward, cross-entropy, backward, Adam update.
Models that read other inputs (pixels, audio) are listed as not measured here.

    python benchmarks/train_throughput.py --out benchmarks/train_throughput.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _machine import cpu_name
from torch.nn import functional as F

from emocontext.models.registry import count_parameters, create_model, list_models, model_info

SHAPES = {"face": (1280,), "context": (1280,), "face_map": (1280, 2, 2)}


def measure(name: str, batch: int, frames: int, steps: int) -> tuple[int, float]:
    torch.manual_seed(0)
    model = create_model(name, num_classes=8, face_dim=1280, context_dim=1280)
    data = {k: torch.randn(batch, frames, *shape) for k, shape in SHAPES.items()}
    lengths = torch.randint(frames // 2, frames + 1, (batch,))
    data["mask"] = torch.arange(frames)[None] < lengths[:, None]
    data["face_mask"] = data["mask"] & (torch.rand(batch, frames) > 0.2)
    label = torch.randint(0, 8, (batch,))
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    model.train()
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(data).logits, label)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return count_parameters(model), steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=25)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows, skipped = [], []
    for name in list_models():
        streams = set(model_info(name).streams)
        if not streams or not streams <= set(SHAPES) or name == "ensemble":
            skipped.append(name)
            continue
        params, cps = measure(name, args.batch, args.frames, args.steps)
        rows.append(f"| {name} | {'+'.join(model_info(name).streams)} | {params:,} | {cps:.0f} |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# Training throughput on CPU",
            "",
            f"Batches of {args.batch} clips x {args.frames} frames, 1280-d face and context features, "
            f"8 classes; mean over {args.steps} steps after 2 warm-up steps.",
            f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads.",
            "",
            "| model | streams | parameters | train clips / s |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Not measured here (other inputs, or made of trained members): {', '.join(skipped) or 'none'}.",
            "",
            f"Command: `python benchmarks/train_throughput.py --batch {args.batch} --frames {args.frames}`",
            "",
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
