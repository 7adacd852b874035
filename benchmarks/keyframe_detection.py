"""What key-frame detection (``--detect-every K``) and downscaled detection (``max_side``) cost in recall, and save.

Three measurements:

1. **Clips**: the video files under ``$EMOCONTEXT_DATA/videos`` sampled at 5 fps (``--fps``), frames decoded
   once beforehand. For each detector and setting, detection time per sampled frame, and the faces of full
   detection on every frame at ``max_side=640`` (the reference) found again (IoU >= 0.5), extra faces, and the
   mean IoU of the matched boxes.
2. **Predictions**: the face model on the same files with ``detect_every=1`` and ``K``: same label? largest
   change of a clip probability?
3. **ExpW, local search**: the 400 ExpW test faces of ``face_detection_recall.py``; each face's labelled box,
   moved by up to ``m`` x its side in x and y and scaled by up to 1 +- ``m`` (uniform, seeded), plays the
   previous frame's box, and :func:`~emocontext.video.faces.keyframes.detect_near` searches near it. Found
   when a detection has IoU >= 0.3 with the labelled box (the criterion of ``face_detection_recall.md``);
   also full detection with a smaller ``max_side``.

Usage::

    python benchmarks/keyframe_detection.py            # writes benchmarks/keyframe_detection.{md,json}
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from _machine import cpu_name
from _results import save
from face_detection_recall import data_dir, load_average, load_faces

from emocontext.video.decode import VIDEO_SUFFIXES, iter_frames
from emocontext.video.faces import Detection, box_iou, create_detector
from emocontext.video.faces.keyframes import KeyframeDetection, detect_near

REPO = Path(__file__).resolve().parents[1]


def detector(name: str, max_side: int | None = 640):
    kwargs = {"max_side": max_side}
    if name == "yunet":
        fallback = REPO.parent / "shared" / "weights" / "face_detection_yunet_2023mar.onnx"
        kwargs["weights"] = os.environ.get("EMOCONTEXT_YUNET") or fallback
    return create_detector(name, **kwargs)


def match(ref: list, got: list, thr: float) -> tuple[int, int, list[float]]:
    """(reference faces found again, extra faces, IoU of each found face)."""
    if not ref or not got:
        return 0, len(got), []
    iou = box_iou(np.array([d.box for d in ref]), np.array([d.box for d in got]))
    best = iou.max(axis=1)
    return int((best >= thr).sum()), int((iou.max(axis=0) < thr).sum()), [float(v) for v in best[best >= thr]]


def clips_part(files: list[Path], fps: float, detectors: list[str], everies: list[int], sides: list[int]) -> list:
    frames = {f: [fr.image for fr in iter_frames(f, fps=fps)] for f in files}
    n = sum(len(v) for v in frames.values())
    rows = []
    for name in detectors:
        ref_det = detector(name)
        ref_det.detect(frames[files[0]][0])  # warm-up
        ref = {f: [ref_det.detect(im) for im in frames[f]] for f in files}
        for side in sides:
            det = ref_det if side == 640 else detector(name, side)
            for every in everies:
                t0 = time.perf_counter()
                found = extra = total = full = near = 0
                ious: list[float] = []
                for f in files:
                    kd = KeyframeDetection(det, every)
                    for im, r in zip(frames[f], ref[f], strict=True):
                        a, b, c = match(r, kd.detect(im), 0.5)
                        found, extra, total, ious = found + a, extra + b, total + len(r), ious + c
                    full, near = full + kd.full, near + kd.near
                dt = time.perf_counter() - t0
                rows.append(
                    dict(detector=name, max_side=side, every=every, frames=n, ms_per_frame=1000 * dt / n,
                         found=found, total=total, extra=extra, mean_iou=float(np.mean(ious)) if ious else None,
                         full=full, near=near)
                )  # fmt: skip
                print(rows[-1], file=sys.stderr)
    return rows


def predictions_part(files: list[Path], every: int) -> list:
    from emocontext.inference import Predictor

    out = {}
    for k in (1, every):
        p = Predictor(model="face", detect_every=k)
        p.predict(files[0])  # warm-up, untimed
        t0 = time.perf_counter()
        out[k] = [p.predict(f) for f in files]
        out[k, "s"] = time.perf_counter() - t0
    rows = []
    for f, a, b in zip(files, out[1], out[every], strict=True):
        diff = max(abs(a.probabilities[c] - b.probabilities.get(c, 0.0)) for c in a.probabilities)
        rows.append(dict(file=f.name, label_1=a.label, label_k=b.label, max_abs_diff=diff))
    return [dict(every=every, seconds_1=out[1, "s"], seconds_k=out[every, "s"], files=rows)]


def expw_part(limit: int, detectors: list[str], moves: list[float], sides: list[int], seed: int) -> list:
    expw = data_dir() / "expw"
    faces = load_faces(expw, limit)
    images = {}
    for r in faces:
        if r["image"] not in images:
            images[r["image"]] = cv2.cvtColor(cv2.imread(str(expw / "images" / r["image"])), cv2.COLOR_BGR2RGB)
    boxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in faces])
    rows = []
    for name in detectors:
        det = detector(name)
        for m in moves:
            rng = np.random.default_rng(seed)
            found, t = 0, 0.0
            for r, gt in zip(faces, boxes, strict=True):
                w, h = gt[2] - gt[0], gt[3] - gt[1]
                dx, dy = rng.uniform(-m, m, 2) * max(w, h)
                s = 1 + rng.uniform(-m, m)
                cx, cy = (gt[0] + gt[2]) / 2 + dx, (gt[1] + gt[3]) / 2 + dy
                prev = [Detection((cx - s * w / 2, cy - s * h / 2, cx + s * w / 2, cy + s * h / 2), 1.0)]
                t0 = time.perf_counter()
                got = detect_near(det, images[r["image"]], prev)
                t += time.perf_counter() - t0
                found += bool(got) and box_iou(gt[None], np.array([d.box for d in got])).max() >= 0.3
            rows.append(dict(detector=name, kind="near", move=m, found=int(found), total=len(faces),
                             ms_per_face=1000 * t / len(faces)))  # fmt: skip
            print(rows[-1], file=sys.stderr)
        for side in sides:
            d2 = det if side == 640 else detector(name, side)
            found, t = 0, 0.0
            dets = {}
            for img_name, im in images.items():
                t0 = time.perf_counter()
                dets[img_name] = d2.detect(im)
                t += time.perf_counter() - t0
            for r, gt in zip(faces, boxes, strict=True):
                got = dets[r["image"]]
                found += bool(got) and box_iou(gt[None], np.array([d.box for d in got])).max() >= 0.3
            rows.append(dict(detector=name, kind="full", max_side=side, found=int(found), total=len(faces),
                             ms_per_image=1000 * t / len(images)))  # fmt: skip
            print(rows[-1], file=sys.stderr)
    return rows


def write(out: Path, result: dict, cmd: str) -> None:
    pct = lambda a, b: f"{100 * a / b:.1f} %" if b else "n/a"  # noqa: E731
    lines = [
        "# Key-frame detection and downscaled detection: recall cost and time saved",
        "",
        f"Machine: {result['machine']}; torch {torch.__version__}, {result['threads']} thread(s); load average "
        f"before / after: {result['load_before']} / {result['load_after']}; {result['date']}.",
        "",
        f"## Clips: {result['clips']['files']} files under `videos/`, {result['fps']:g} fps, frames decoded beforehand",
        "",
        "Reference: full detection on every sampled frame, `max_side=640`. A reference face is found again when a "
        "detection has IoU >= 0.5 with it. Time: detection only, per sampled frame (wall).",
        "",
        "| detector | max_side | detect every | ms / frame | speed-up | faces found again | extra faces "
        "| mean IoU | full / near searches |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["clips"]["rows"]:
        base = next(
            x["ms_per_frame"] for x in result["clips"]["rows"]
            if x["detector"] == r["detector"] and x["every"] == 1 and x["max_side"] == 640
        )  # fmt: skip
        iou = f"{r['mean_iou']:.3f}" if r["mean_iou"] is not None else "-"
        lines.append(
            f"| {r['detector']} | {r['max_side']} | {r['every']} | {r['ms_per_frame']:.1f} | "
            f"{base / r['ms_per_frame']:.2f}x | {r['found']}/{r['total']} ({pct(r['found'], r['total'])}) | "
            f"{r['extra']} | {iou} | {r['full']} / {r['near']} |"
        )
    p = result["predictions"][0]
    lines += [
        "",
        f"## Predictions: face model, `detect_every` 1 vs {p['every']} (MTCNN)",
        "",
        f"Whole `Predictor.predict` on the files: {p['seconds_1']:.2f} s vs {p['seconds_k']:.2f} s "
        f"({p['seconds_1'] / p['seconds_k']:.2f}x).",
        "",
        "| file | label (every frame) | label (key frames) | largest change of a clip probability |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['file']} | {r['label_1']} | {r['label_k']} | {r['max_abs_diff']:.3f} |" for r in p["files"]]
    lines += [
        "",
        "## ExpW test faces: search near a moved box, and full detection on smaller frames",
        "",
        f"{result['expw_faces']} faces. Near: the labelled box moved by up to m x its side and scaled by up to "
        "1 +- m plays the previous frame's face; found when a detection near it has IoU >= 0.3 with the "
        "labelled box. Full: `detect` on the whole image with that `max_side` (ExpW images are at most 384 px, "
        "so 640 is full resolution).",
        "",
        "| detector | search | found | recall | ms |",
        "|---|---|---|---|---|",
    ]
    for r in result["expw"]:
        what = f"near, m = {r['move']:g}" if r["kind"] == "near" else f"full, max_side {r['max_side']}"
        ms = r.get("ms_per_face", r.get("ms_per_image"))
        lines.append(
            f"| {r['detector']} | {what} | {r['found']}/{r['total']} | {pct(r['found'], r['total'])} | {ms:.1f} |"
        )
    lines += ["", "Command:", "", "```", cmd, "```", ""]
    save(out, "\n".join(lines), result)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--detectors", default="mtcnn,yunet")
    ap.add_argument("--every", default="1,2,5,10", help="comma-separated detect_every values (1 first)")
    ap.add_argument("--sides", default="640,320", help="comma-separated max_side values (640 first)")
    ap.add_argument("--moves", default="0,0.1,0.2,0.3")
    ap.add_argument("--predict-every", type=int, default=5)
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "keyframe_detection.md")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    videos = data_dir() / "videos"
    files = sorted(p for p in videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        print(f"no video files under {videos}", file=sys.stderr)
        return 2
    dets = [d for d in args.detectors.split(",") if d]
    ints = lambda s: [int(v) for v in s.split(",") if v]  # noqa: E731
    before = load_average()
    result = {
        "machine": f"{cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}",
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "fps": args.fps,
        "load_before": before,
        "clips": {"files": len(files), "rows": clips_part(files, args.fps, dets, ints(args.every), ints(args.sides))},
        "predictions": predictions_part(files, args.predict_every),
        "expw": expw_part(args.limit, dets, [float(v) for v in args.moves.split(",")], ints(args.sides), args.seed),
        "expw_faces": args.limit,
        "load_after": load_average(),
    }
    cmd = "python benchmarks/keyframe_detection.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    write(args.out, result, cmd.strip())
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
