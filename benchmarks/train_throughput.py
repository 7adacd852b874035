"""CPU training throughput (clips per second) of every registered model.

Synthetic batches of the inputs each model reads, at the project's real sizes: clips of
25 frames (5 s at 5 fps), face and context features of 1280, face maps 1280x2x2, context
maps 1280x7x7 (``caer_net_features``), 47-d audio features at 31.25 frames/s
(``av_lstm*``), and for the pixel models the CAER-Net paper's inputs (16-frame clips,
faces 96x96, context 112x112; one frame for CAER-Net-S). 8 classes, 20 % of frames
without a face. One step = forward, the model's training loss, backward, Adam update.

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
# per-model inputs that differ from SHAPES: (frames, extra create_model options, {key: per-frame shape})
SPECIAL = {
    "caer_net_features": (25, {}, {"context": (1280, 7, 7)}),
    "caer_net": (16, {}, {"face_pixels": (3, 96, 96), "context_pixels": (3, 112, 112)}),
    "caer_net_s": (1, {}, {"face_pixels": (3, 96, 96), "context_pixels": (3, 112, 112)}),
    "av_lstm": (25, {"audio_dim": 47}, {}),
    "av_lstm_last": (25, {"audio_dim": 47}, {}),
    "av_lstm_mean": (25, {"audio_dim": 47}, {}),
}
AUDIO_PER_FRAME = 6.25  # 31.25 audio frames/s over 5 video frames/s


def measure(name: str, batch: int, frames: int, steps: int) -> tuple[int, float]:
    torch.manual_seed(0)
    frames, options, shapes = SPECIAL.get(name, (frames, {}, {}))
    model = create_model(name, num_classes=8, face_dim=1280, context_dim=1280, **options)
    data = {k: torch.randn(batch, frames, *shape) for k, shape in {**SHAPES, **shapes}.items()}
    lengths = torch.randint(max(1, frames // 2), frames + 1, (batch,))
    data["mask"] = torch.arange(frames)[None] < lengths[:, None]
    data["face_mask"] = data["mask"] & (torch.rand(batch, frames) > 0.2)
    if "audio_dim" in options:
        t_a = int(frames * AUDIO_PER_FRAME)
        data["audio"] = torch.randn(batch, t_a, options["audio_dim"])
        data["audio_mask"] = torch.arange(t_a)[None] < (lengths[:, None] * AUDIO_PER_FRAME).long()
    label = torch.randint(0, 8, (batch,))
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    model.train()
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        out = model(data)
        loss = model.loss(out, label) if hasattr(model, "loss") else F.cross_entropy(out.logits, label)
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
        if name == "ensemble":
            skipped.append(name)
            continue
        frames = SPECIAL.get(name, (args.frames,))[0]
        params, cps = measure(name, args.batch, args.frames, args.steps)
        rows.append(f"| {name} | {'+'.join(model_info(name).streams)} | {frames} | {params:,} | {cps:.1f} |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# Training throughput on CPU",
            "",
            f"Batches of {args.batch} clips (inputs as in the script's docstring), 8 classes; "
            f"mean over {args.steps} steps after 2 warm-up steps.",
            f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads.",
            "",
            "| model | streams | frames per clip | parameters | train clips / s |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"Not measured: {', '.join(skipped) or 'none'} (made of trained members; its cost is theirs).",
            "",
            "Command: `python benchmarks/train_throughput.py "
            f"--batch {args.batch} --frames {args.frames} --steps {args.steps}`",
            "",
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
