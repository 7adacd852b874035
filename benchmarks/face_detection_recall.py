"""Face-detection recall and speed on ExpW test faces.

A labelled face counts as found when some detection of its image has IoU >= 0.3 (``--iou``) with the labelled box.
Speed is the wall time of ``detector.detect(frame)`` per image (decoding excluded), after one warm-up call.

Data: ``$EMOCONTEXT_DATA/expw`` (default ``<repo>/../shared/data/expw``): ``labels.csv`` (image, face_id, x1, y1,
x2, y2, label, face_confidence) and ``splits.csv`` (image, split). The faces used are those of ``split == test``,
sorted by image name then face id, the first ``--limit`` of them (default 400).

Usage::

    python benchmarks/face_detection_recall.py --detectors mtcnn,yunet,haar --threads 1

and it writes ``benchmarks/face_detection_recall.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from _machine import cpu_name

from emocontext.errors import EmoContextError
from emocontext.video.faces import box_iou, create_detector

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("EMOCONTEXT_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_faces(expw: Path, limit: int | None) -> list[dict]:
    with open(expw / "splits.csv", newline="") as f:
        split = {r["image"]: r["split"] for r in csv.DictReader(f)}
    with open(expw / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if split.get(r["image"]) == "test"]
    rows.sort(key=lambda r: (r["image"], int(r["face_id"])))
    return rows[:limit] if limit else rows


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run_detector(name: str, kwargs: dict, images: dict[str, np.ndarray], faces: list[dict], iou_thr: float) -> dict:
    det = create_detector(name, **kwargs)
    first = next(iter(images.values()))
    det.detect(first)  # warm-up (lazy allocations, oneDNN kernel selection)
    times, cpu_times, dets = [], [], {}
    for img_name, frame in images.items():
        c0, t0 = time.process_time(), time.perf_counter()
        dets[img_name] = det.detect(frame)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    found = 0
    for r in faces:
        d = dets[r["image"]]
        if not d:
            continue
        gt = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")]])
        if box_iou(gt, np.array([x.box for x in d])).max() >= iou_thr:
            found += 1
    return {
        "name": name,
        "repr": repr(det),
        "found": found,
        "total": len(faces),
        "ms_mean": 1000 * statistics.fmean(times),
        "ms_median": 1000 * statistics.median(times),
        "cpu_ms_mean": 1000 * statistics.fmean(cpu_times),
        "dets_per_image": statistics.fmean(len(v) for v in dets.values()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="data root (default $EMOCONTEXT_DATA or ../shared/data)")
    ap.add_argument("--limit", type=int, default=400, help="number of test faces (0 = all)")
    ap.add_argument("--detectors", default="mtcnn,yunet,haar", help="comma-separated: mtcnn,yunet,haar,dlib")
    ap.add_argument("--iou", type=float, default=0.3, help="IoU for a face to count as found")
    ap.add_argument("--threads", type=int, default=None, help="torch and OpenCV thread count (default: leave theirs)")
    ap.add_argument(
        "--yunet-weights", type=Path, default=None, help="YuNet ONNX (default: $EMOCONTEXT_YUNET, the cache)"
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "face_detection_recall.md")
    ap.add_argument("--note", default="", help="free text added to the report (e.g. other load on the machine)")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    expw = (args.data or data_dir()) / "expw"
    if not (expw / "labels.csv").is_file():
        print(f"ExpW not found under {expw}", file=sys.stderr)
        return 2
    faces = load_faces(expw, args.limit or None)
    images = {}
    for r in faces:
        if r["image"] not in images:
            bgr = cv2.imread(str(expw / "images" / r["image"]))
            if bgr is None:
                print(f"cannot read {r['image']}", file=sys.stderr)
                return 2
            images[r["image"]] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    sizes = np.array([im.shape[:2] for im in images.values()])
    print(f"{len(faces)} faces in {len(images)} images", file=sys.stderr)

    load_before = load_average()
    results, notes = [], []
    for name in [n.strip() for n in args.detectors.split(",") if n.strip()]:
        kwargs = {}
        if name == "yunet":
            weights = args.yunet_weights
            if weights is None:
                fallback = REPO.parent / "shared" / "weights" / "face_detection_yunet_2023mar.onnx"
                if not os.environ.get("EMOCONTEXT_YUNET") and fallback.is_file():
                    weights = fallback
            kwargs["weights"] = weights
        try:
            res = run_detector(name, kwargs, images, faces, args.iou)
        except EmoContextError as e:
            notes.append(f"{name}: skipped ({e})")
            print(notes[-1], file=sys.stderr)
            continue
        results.append(res)
        print(
            f"{name}: {res['found']}/{res['total']} = {100 * res['found'] / res['total']:.1f} % "
            f"{res['ms_mean']:.1f} ms/image (median {res['ms_median']:.1f}, CPU {res['cpu_ms_mean']:.1f})",
            file=sys.stderr,
        )

    cmd = "python benchmarks/face_detection_recall.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    lines = [
        "# Face detection recall on ExpW test faces",
        "",
        f"{len(faces)} labelled faces of the ExpW `test` split (first by image name, then face id), in "
        f"{len(images)} images of {sizes[:, 1].min()}-{sizes[:, 1].max()} x {sizes[:, 0].min()}-{sizes[:, 0].max()} "
        f"px. A face is found when a detection of its image has IoU >= {args.iou} with the labelled box. "
        "Time: `detect(frame)` per image, decoding excluded, after one warm-up call; wall clock, and CPU time of "
        "the process (all its threads), which is less sensitive to other load on the machine.",
        "",
        "| detector | found | recall | wall ms / image (mean) | wall ms / image (median) | CPU ms / image (mean) "
        "| detections / image |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['found']}/{r['total']} | {100 * r['found'] / r['total']:.1f} % | "
            f"{r['ms_mean']:.1f} | {r['ms_median']:.1f} | {r['cpu_ms_mean']:.1f} | {r['dets_per_image']:.2f} |"
        )
    lines += ["", "Settings:", ""]
    lines += [f"- `{r['repr']}`" for r in results]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    if args.note:
        lines += ["", args.note]
    lines += [
        "",
        "Command:",
        "",
        "```",
        cmd,
        "```",
        "",
        "Machine:",
        "",
        f"- CPU: {cpu_name()}, {os.cpu_count()} logical cores",
        f"- torch {torch.__version__}, {torch.get_num_threads()} torch thread(s); OpenCV {cv2.__version__}; "
        f"Python {platform.python_version()}",
        f"- load average before the run: {load_before}",
        f"- date: {datetime.date.today().isoformat()}",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
