"""How the crop of a found face is made, and what each way costs the face CNN (issue 20, framing bar).

``face_proxies.py --rows framing`` measures one thing through the CLI: FER2013 PrivateTest faces put back in a
larger frame, found and cropped by the pipeline, against the same faces given directly. This script asks *why* the
crop costs what it does, on faces that are not the test set, by building the same framed pictures in process
(the 48 px face upscaled 4x bicubic to 192 px, 96 px of edge-replicated border: 384 px squares), finding the face
with MTCNN as ``predict`` does, and cropping it several ways:

- ``lmeds``: the shipped alignment (:func:`emocontext.video.align.aligned_face`: similarity transform onto the
  template, ``cv2.estimateAffinePartial2D`` with least-median-of-squares),
- ``lsq``: the same similarity fitted by least squares to all five landmarks (RANSAC with a threshold no point
  exceeds, then OpenCV's Levenberg-Marquardt refinement on all five: Umeyama's fit, the usual face-alignment fit),
- ``lsq_norot``: least squares, scale and translation only (the face keeps its roll, as FER2013's faces do),
- ``box``: no landmarks, the square box crop with :data:`emocontext.video.align.BOX_MARGIN`.

Each crop is 128 px (``FACE_SIZE``) and read by the shipped face extractor (the int8 graph ``predict`` runs); the
7-class answer is the argmax of the seven Ekman probabilities (contempt mapped out, as the proxies do). Reported per
set: faces found, accuracy of the given faces and of each crop on the faces found (FER2013's own labels), points
lost, and how often each crop's answer equals the given face's answer, with 95 % paired bootstrap intervals.

Controls (no detector): ``placed`` cuts the given face out of the framed picture through the same warp (must
agree 100 %), ``placed_shift2`` / ``placed_scale5`` / ``placed_rot5`` move that crop by 2 % of its side, make it
5 % looser, turn it 5 degrees: how much the network's answer depends on the framing at all.

Sets: ``holdout`` = the 1,183 PublicTest faces no version-8 student trained on (``train_face_cnn.py --val-train
0.67``'s held-out third); ``train`` = a fixed sample of FER2013 training faces (trained on: their accuracies are
biased up, their agreement is still informative); ``test`` = PrivateTest (to measure a finished network, never to
choose). ``--weights`` (repeatable) reads the same crops with other networks (a ``.pt`` file runs as a float graph).

    python benchmarks/framing_alignment.py --sets holdout,train --out benchmarks/framing_alignment.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from emocontext.features.face import FaceExtractor
from emocontext.labels import EKMAN7
from emocontext.video.align import BOX_MARGIN, TEMPLATE, aligned_face
from emocontext.video.faces import create_detector
from emocontext.video.streams import FACE_SIZE, face_crop

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("lmeds", "lsq", "lsq_norot", "box", "placed", "placed_shift2", "placed_scale5", "placed_rot5")
SETS = ("holdout", "train", "test")


def _training_script():
    spec = importlib.util.spec_from_file_location("train_face_cnn", ROOT / "scripts" / "train_face_cnn.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_face_cnn"] = mod
    spec.loader.exec_module(mod)
    return mod


def lsq_matrix(landmarks: np.ndarray, size: int, *, rotate: bool) -> np.ndarray:
    """Least-squares similarity (``rotate``) or scale + translation (not ``rotate``) from ``landmarks`` onto the
    template at ``size`` px."""
    src = np.asarray(landmarks, np.float64).reshape(5, 2)
    dst = TEMPLATE.astype(np.float64) * size
    if rotate:
        m, _ = cv2.estimateAffinePartial2D(
            src.astype(np.float32), dst.astype(np.float32), method=cv2.RANSAC, ransacReprojThreshold=1e6
        )
        return m
    sc, dc = src.mean(0), dst.mean(0)
    s = np.sqrt(((dst - dc) ** 2).sum() / ((src - sc) ** 2).sum())
    return np.array([[s, 0, dc[0] - s * sc[0]], [0, s, dc[1] - s * sc[1]]])


def warp(frame: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The crop of ``m``, shrinking with area averaging first as the shipped alignment does (frame 384 -> 128 px
    crop: the face is 3x larger than the crop)."""
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.8:
        k = 1.0 / scale
        small = cv2.resize(frame, None, fx=1 / k, fy=1 / k, interpolation=cv2.INTER_AREA)
        fx, fy = frame.shape[1] / small.shape[1], frame.shape[0] / small.shape[0]
        m = np.hstack([m[:, :2] * [fx, fy], m[:, 2:]])
        frame = small
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _placed(zoom_out: float, shift: float, degrees: float) -> np.ndarray:
    """Similarity taking the placed 192 px face (96..288) onto a ``FACE_SIZE`` crop, ``zoom_out`` times looser,
    shifted right by ``shift`` of its side, rotated by ``degrees`` about its centre."""
    side = 192.0 * zoom_out
    c = np.array([192.0 + shift * 192.0, 192.0])
    m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), degrees, FACE_SIZE / side)
    m[:, 2] += FACE_SIZE / 2 - c
    return m


def crop(variant: str, frame: np.ndarray, det) -> np.ndarray:
    """The 128 px crop of the face ``det`` found in ``frame``, made the ``variant`` way (module docstring)."""
    lm = det.landmarks
    if variant == "lmeds":
        return aligned_face(frame, lm, size=FACE_SIZE)
    if variant in ("lsq", "lsq_norot"):
        return warp(frame, lsq_matrix(lm, FACE_SIZE, rotate=variant == "lsq"), FACE_SIZE)
    if variant == "box":
        return face_crop(frame, det.box, size=FACE_SIZE, margin=BOX_MARGIN, landmarks=None)
    # controls: the given face itself, cut from the framed picture through the same warp, moved or not
    zoom, shift, deg = {"placed": (1, 0, 0), "placed_shift2": (1, 0.02, 0), "placed_scale5": (1.05, 0, 0)}.get(
        variant, (1, 0, 5)
    )
    return warp(frame, _placed(zoom, shift, deg), FACE_SIZE)


def float_weights(path: Path, cache: Path) -> Path:
    """A package-format copy of ``path`` (a package file or a training checkpoint of ``train_face_cnn.py``) whose
    checksum differs from the shipped file's, so :class:`FaceExtractor` runs it as a float graph (the shipped file
    would get the shipped int8 graph). Weights rounded to float16, as a shipped file holds them."""
    import torch

    from emocontext.features.specs import FACE_CNN

    blob = torch.load(path, map_location="cpu", weights_only=False)
    if "model" in blob:  # a training checkpoint
        blob = {"state_dict": blob["model"], "trunk": blob.get("trunk", "efficientnet_lite0")}
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
    out = cache / f"float_{path.parent.name}_{path.stem}.pt"
    cache.mkdir(parents=True, exist_ok=True)
    spec = FACE_CNN.signature()
    torch.save({"state_dict": sd, "spec": spec, "trunk": blob.get("trunk", "efficientnet_lite0"), "float": 1}, out)
    return out


def answers(extractor: FaceExtractor, crops: np.ndarray) -> np.ndarray:
    _, probs = extractor(crops)
    labels = extractor.spec.labels
    cols = [labels.index(c) for c in EKMAN7.names]
    return probs[:, cols].argmax(1)


def paired(a: np.ndarray, b: np.ndarray, seed: int = 0, n: int = 2000) -> tuple[float, float, float]:
    """Mean of ``a - b`` (booleans, in points) with a 95 % bootstrap interval over faces."""
    d = a.astype(np.float64) - b.astype(np.float64)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), (n, len(d)))].mean(1)
    return 100 * d.mean(), 100 * np.quantile(boots, 0.025), 100 * np.quantile(boots, 0.975)


def measure(tfc, name: str, x: np.ndarray, y: np.ndarray, detector, extractors: dict, variants: list[str]) -> dict:
    """Find each face of ``x`` in its framing-test picture (``tfc``: the training script's module, which builds the
    pictures as its ``--aligned-views`` does), crop it every ``variants`` way, read the crops with each extractor."""
    t0 = time.perf_counter()
    given, kept, crops = [], [], {v: [] for v in variants}
    for i, f in enumerate(x):
        face, frame = tfc.framed_picture(f)
        dets = [d for d, _ in tfc.placed_detections(detector, frame)]
        if not dets:
            continue
        d = max(dets, key=lambda d: d.score)
        kept.append(i)
        given.append(
            cv2.cvtColor(cv2.resize(face, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2RGB)
        )
        for v in variants:
            crops[v].append(crop(v, frame, d))
        if (i + 1) % 500 == 0:
            print(f"{name}: {i + 1}/{len(x)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    kept = np.array(kept)
    truth = y[kept]
    out = {}
    for wname, extractor in extractors.items():
        a_given = answers(extractor, np.stack(given))
        res = {"faces": len(x), "found": len(kept), "given_acc": 100 * float((a_given == truth).mean())}
        res["variants"] = {}
        for v in variants:
            a = answers(extractor, np.stack(crops[v]))
            res["variants"][v] = {
                "acc": 100 * float((a == truth).mean()),
                "points_lost": paired(a_given == truth, a == truth),
                "agreement_with_given": 100 * float((a == a_given).mean()),
            }
        out[wname] = res
    return out


def report(results: dict, args) -> str:
    lines = [
        "# The crop of a found face: alignment variants against the faces given (issue 20, framing bar)",
        "",
        f"Command: `python {' '.join(sys.argv)}`; weights: `shipped` = the int8 graph predict runs, a `.pt` "
        "file = its float graph (float16 weights). Faces: FER2013 48 px faces upscaled 4x into 384 px frames, "
        "found by MTCNN (IoU >= 0.3 with the placed face). Points lost = given accuracy - crop accuracy on the "
        "faces found, 95 % paired bootstrap. "
        f"Sets: {', '.join(results)}.",
        "",
        "| set | weights | found | given acc % | crop | acc % | points lost [95 % CI] | same answer as given % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, per_weights in results.items():
        for wname, r in per_weights.items():
            for v, s in r["variants"].items():
                m, lo, hi = s["points_lost"]
                lines.append(
                    f"| {name} | {wname} | {r['found']} / {r['faces']} | {r['given_acc']:.1f} | {v} | {s['acc']:.1f} | "
                    f"{m:.2f} [{lo:.2f}, {hi:.2f}] | {s['agreement_with_given']:.1f} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")))
    ap.add_argument("--sets", default="holdout,train", help=f"comma-separated, of {', '.join(SETS)}")
    ap.add_argument("--train", type=int, default=4000, help="FER2013 training faces to sample for the train set")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument(
        "--weights", action="append", default=None, help="face CNN weights (.pt, .onnx) or 'shipped' (default)"
    )
    ap.add_argument("--cache", type=Path, default=Path("runs/framing_alignment"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/framing_alignment.md"))
    args = ap.parse_args()
    tfc = _training_script()
    root = args.data / "fer2013"
    wanted, variants = args.sets.split(","), args.variants.split(",")
    if bad := [s for s in wanted if s not in SETS] + [v for v in variants if v not in VARIANTS]:
        raise SystemExit(f"unknown set or variant: {', '.join(bad)}")
    sets = {}
    if "holdout" in wanted:
        _, holdout = tfc.split_val(tfc.load_split(root, "val", args.cache), 0.67)  # PublicTest's held-out third
        sets["holdout"] = (holdout["x"], holdout["y7"])
    if "train" in wanted:
        tr = tfc.load_split(root, "train", args.cache)
        idx = np.random.default_rng(0).choice(len(tr["x"]), args.train, replace=False)
        sets["train"] = (tr["x"][idx], tr["y7"][idx])
    if "test" in wanted:
        te = tfc.load_split(root, "test", args.cache)
        sets["test"] = (te["x"], te["y7"])
    extractors = {
        w: FaceExtractor(None if w == "shipped" else float_weights(Path(w), args.cache))
        for w in args.weights or ["shipped"]
    }
    detector = create_detector("mtcnn")
    results = {name: measure(tfc, name, x, y, detector, extractors, variants) for name, (x, y) in sets.items()}
    args.out.write_text(report(results, args))
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(report(results, args))


if __name__ == "__main__":
    main()
