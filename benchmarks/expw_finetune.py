"""Does fine-tuning the CNNs make the scene help on ExpW? The last stages of both trunks trained on ExpW.

The frozen-feature rows of ``benchmarks/expw_ablation.py`` find no gain from the context stream.
Here the last two resolution stages of each EfficientNet-Lite0 (blocks 11-15 and the 1x1 head
convolution, 2.67M parameters per trunk) are trained on ExpW together with the CAER-Net head
(``caer_net_features``); blocks 0-10 stay frozen, and their outputs are computed once and cached
(``--cache``, float16, about 1 GB), for each face/photo and its mirror image.

* Face stream: the project's FER2013 face CNN on the labelled face (80 px grey), 5x5 map, pooled.
* Context stream: the ImageNet EfficientNet-Lite0 on the 224-px centre square with the face
  hidden, 7x7 map, CAER-Net spatial attention (rows with ``cA``).

Recipe: AdamW, learning rate 1e-4 for the trunk stages and 3e-4 for the head, weight decay 1e-4,
batch 32, a random choice of the image or its mirror per step, batch norms kept in inference mode
(4,007 photos are too few to re-estimate them), 8 epochs, the epoch with the best validation
macro mAP kept; test predictions average the image and its mirror. 95 % intervals: percentile
bootstrap over the test faces (1,000 resamples).

    python benchmarks/expw_finetune.py --rows 0-2 --out benchmarks/expw_finetune.md
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _machine import cpu_name
from torch import nn
from torch.nn import functional as F

from emocontext.data.datasets import load_dataset
from emocontext.features.backbones import _to_input, build_efficientnet_lite, load_face_cnn
from emocontext.features.specs import EFFNET_LITE0_IMAGENET, FACE_CNN
from emocontext.labels import EKMAN7
from emocontext.metrics import accuracy, bootstrap_ci, macro_map
from emocontext.models import create_model
from emocontext.models.caer_net import TABLE3_ABLATIONS as T3
from emocontext.training.pixels import load_pixel_clips
from emocontext.video.pipeline import StreamConfig

SPLIT = 11  # first trained block: the stage that ends at the 7x7 (context) / 5x5 (face) map
ROWS = [
    ("F (face only), face CNN tail fine-tuned", T3["F"]),
    ("C (context only), context CNN tail fine-tuned", T3["C"]),
    ("F+C+cA+fA = CAER-Net, both tails fine-tuned", T3["F+C+cA+fA"]),
]


def trunks() -> dict[str, nn.Module]:
    return {"face": load_face_cnn().trunk.eval(), "context": build_efficientnet_lite(pretrained=True).eval()}


def stem(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = net._swish(net._bn0(net._conv_stem(x)))
    for block in net._blocks[:SPLIT]:
        x = block(x)
    return x


class Tail(nn.Module):
    """Blocks ``SPLIT..`` and the head convolution of an EfficientNet-Lite trunk -> ``(B, 1280, h, w)``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.blocks = nn.ModuleList(net._blocks[SPLIT:])
        self.conv, self.bn, self.act = net._conv_head, net._bn1, net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.act(self.bn(self.conv(x)))


def cached_activations(data: Path, cache: Path) -> dict[str, np.ndarray]:
    """Block-10 outputs of both trunks for every face and photo and their mirrors, and labels/splits."""
    f = cache / f"expw_block{SPLIT}.npz"
    if f.exists():
        return dict(np.load(f))
    t0 = time.perf_counter()
    manifest = load_dataset("expw", data)
    entries, clips, failed = load_pixel_clips(list(manifest), config=StreamConfig(hide_face=True))
    for path, why in failed:
        print(f"skipped {path}: {why}")
    print(f"decoded {len(clips)} photos ({time.perf_counter() - t0:.0f} s)", flush=True)
    images = {"face": np.concatenate([c.face for c in clips]), "context": np.concatenate([c.context for c in clips])}
    specs = {"face": FACE_CNN, "context": EFFNET_LITE0_IMAGENET}
    out = {
        "labels": np.array([EKMAN7.index(e.label) for e in entries]),
        "splits": np.array([e.split for e in entries]),
    }
    with torch.inference_mode():
        for name, net in trunks().items():
            acts = []
            for i in range(0, len(images[name]), 16):  # small batches: big ones thrash memory at 224 px
                x = _to_input(images[name][i : i + 16], specs[name])
                a = stem(net, torch.cat([x, x.flip(-1)]))
                acts.append(torch.stack(a.chunk(2), 1).half())
            out[name] = torch.cat(acts).numpy()  # (N, 2, 112, h, w): image, mirror
            print(f"{name}: {out[name].shape} ({time.perf_counter() - t0:.0f} s)", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"expw_block{SPLIT}.tmp.npz"
    np.savez(tmp, **out)
    os.replace(tmp, f)
    return out


class FineTuned(nn.Module):
    """The trunk tails (only those of the streams in use) and the ``caer_net_features`` head."""

    def __init__(self, options: dict):
        super().__init__()
        nets = trunks()
        self.use_face, self.use_context = options["use_face"], options["use_context"]
        self.face = Tail(nets["face"]) if self.use_face else None
        self.context = Tail(nets["context"]) if self.use_context else None
        self.head = create_model(
            "caer_net_features", num_classes=len(EKMAN7), face_dim=1280, context_dim=1280, **options
        )

    def forward(self, face: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        n = len(face)
        batch = {"mask": torch.ones(n, 1, dtype=torch.bool)}
        if self.use_face:
            batch["face"] = self.face(face.float()).mean((2, 3))[:, None]
        if self.use_context:
            batch["context"] = self.context(context.float())[:, None]
        return self.head(batch).logits

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.modules():  # batch norms keep their ImageNet / FER2013 statistics
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


@torch.inference_mode()
def predict(model: FineTuned, acts: dict, idx: np.ndarray) -> np.ndarray:
    """Mean of the probabilities of the image and its mirror, ``(len(idx), K)``."""
    model.eval()
    out = []
    for i in range(0, len(idx), 128):
        j = idx[i : i + 128]
        p = sum(model(acts["face"][j, v], acts["context"][j, v]).softmax(-1) for v in (0, 1)) / 2
        out.append(p)
    return torch.cat(out).numpy()


def run_row(options: dict, acts: dict, epochs: int, seed: int) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = FineTuned(options)
    tails = [p for t in (model.face, model.context) if t is not None for p in t.parameters()]
    opt = torch.optim.AdamW(
        [{"params": tails, "lr": 1e-4}, {"params": model.head.parameters(), "lr": 3e-4}], weight_decay=1e-4
    )
    y, splits = acts["labels"], acts["splits"]
    tr, va, te = (np.flatnonzero(splits == s) for s in ("train", "val", "test"))
    yt = torch.from_numpy(y)
    best, history = (-1.0, -1, None), []
    for epoch in range(epochs):
        model.train()
        t0, total = time.perf_counter(), 0.0
        order = rng.permutation(tr)
        for i in range(0, len(order), 32):
            j = order[i : i + 32]
            view = torch.from_numpy(rng.integers(0, 2, len(j)))
            loss = F.cross_entropy(model(acts["face"][j, view], acts["context"][j, view]), yt[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(j)
        val = macro_map(y[va], predict(model, acts, va), len(EKMAN7))
        history.append({"epoch": epoch + 1, "loss": total / len(tr), "val_macro_map": val})
        print(
            f"epoch {epoch + 1}/{epochs} loss {total / len(tr):.4f} val mAP {val:.4f} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        if val > best[0]:
            best = (val, epoch + 1, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    probs = predict(model, acts, te)
    k = len(EKMAN7)
    return {
        "trained_parameters": sum(p.numel() for p in model.parameters()),
        "accuracy": accuracy(y[te], probs),
        "accuracy_ci": bootstrap_ci(y[te], probs, accuracy),
        "macro_map": macro_map(y[te], probs, k),
        "macro_map_ci": bootstrap_ci(y[te], probs, lambda a, b: macro_map(a, b, k)),
        "val_macro_map": best[0],
        "best_epoch": best[1],
        "history": history,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")) / "expw")
    ap.add_argument("--cache", type=Path, default=Path("runs/expw_finetune"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", default="0-2", help="row numbers, e.g. 0,2 or 0-2 (see ROWS)")
    ap.add_argument("--out", type=Path, default=Path("runs/expw_finetune/results.md"))
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    rows = []
    for part in filter(None, args.rows.split(",")):
        lo, _, hi = part.partition("-")
        rows += range(int(lo), int(hi or lo) + 1)
    results_file = args.out.with_suffix(".json")
    results = json.loads(results_file.read_text()) if results_file.exists() else []
    done = {r["row"] for r in results}
    acts = None
    for i in rows:
        title, options = ROWS[i]
        if title in done:
            continue
        if acts is None:
            acts = {
                k: torch.from_numpy(v) if k in ("face", "context") else v
                for k, v in cached_activations(args.data, args.cache).items()
            }
        t0 = time.perf_counter()
        print(f"row {i}: {title}", flush=True)
        r = {"row": title, "options": options, **run_row(options, acts, args.epochs, args.seed)}
        r["minutes"] = (time.perf_counter() - t0) / 60
        r["command"] = "python " + shlex.join(sys.argv)
        results.append(r)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results_file.write_text(json.dumps(results, indent=2))
    args.out.write_text(report(results))
    print(args.out.read_text())


def report(results: list[dict]) -> str:
    order = {t: i for i, (t, _) in enumerate(ROWS)}
    lines = [
        "# ExpW: fine-tuning the last stages of the face and context CNNs",
        "",
        "ExpW's own splits, 7 classes; blocks 11-15 and the head convolution of each EfficientNet-Lite0 trained "
        "with the CAER-Net head (`caer_net_features`), blocks 0-10 frozen. Recipe in the script's docstring.",
        "",
        "| row | trained parameters | test accuracy [95 % CI] | test macro mAP [95 % CI] | best epoch / run "
        "| val macro mAP | minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: order.get(r["row"], 99)):
        (al, ah), (pl, ph) = r["accuracy_ci"], r["macro_map_ci"]
        lines.append(
            f"| {r['row']} | {r['trained_parameters']:,} | {r['accuracy']:.3f} [{al:.3f}, {ah:.3f}] "
            f"| {r['macro_map']:.3f} [{pl:.3f}, {ph:.3f}] | {r['best_epoch']} / {len(r['history'])} "
            f"| {r['val_macro_map']:.3f} | {r['minutes']:.0f} |"
        )
    lines += ["", "Commands (a row already in the JSON beside this file is kept, not retrained):", ""]
    lines += [f"    {c}" for c in dict.fromkeys(r["command"] for r in results)] + [""]
    lines += [f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
