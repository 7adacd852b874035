"""Estimate the face-alignment template from the face CNN's own training faces.

The face CNN learns FER2013's framing. To give it that framing at prediction, the five landmarks a
detector finds in a frame are mapped by a similarity transform onto where the same detector puts them
on the training faces (:mod:`emocontext.video.align`). This script measures "where": it runs the
detector on FER2013 training faces (each upscaled and padded, since MTCNN needs some context around
a face), keeps the most confident face that covers the picture's centre, and takes the median of each
landmark over the faces, in units of the 48 px picture (0..1). It also measures the detector's box
in the same units, which gives the margin of the fallback crop for detectors without landmarks
(the square box whose side matches the picture: ``margin = (1 / side - 1) / 2``).

Run: python scripts/face_template.py --faces 1000 [--detector mtcnn|yunet] [--out benchmarks/face_template.json]
The numbers it prints are what ``emocontext.video.align`` holds (``TEMPLATE``, ``BOX_MARGIN``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

UPSCALE = 4  # 48 px -> 192 px
PAD = 0.5  # border added on each side, fraction of the upscaled side (replicated pixels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data"))
    ap.add_argument("--data", type=Path, default=data / "fer2013" / "train")
    ap.add_argument("--faces", type=int, default=1000, help="training faces to measure (a seeded sample)")
    ap.add_argument("--detector", default="mtcnn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = ap.parse_args()

    from emocontext.video.faces import create_detector

    files = sorted(args.data.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no FER2013 faces under {args.data}")
    pick = np.random.default_rng(args.seed).permutation(len(files))[: args.faces]
    detector = create_detector(args.detector)
    side = 48 * UPSCALE
    pad = int(side * PAD)
    points, boxes, missed = [], [], 0
    for n, i in enumerate(pick):
        grey = cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE)
        big = cv2.resize(grey, (side, side), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        rgb = np.repeat(big[..., None], 3, axis=-1)
        centre = pad + side / 2
        dets = [
            d
            for d in detector.detect(rgb)
            if d.landmarks is not None and d.box[0] < centre < d.box[2] and d.box[1] < centre < d.box[3]
        ]
        if not dets:
            missed += 1
            continue
        d = max(dets, key=lambda d: d.score)
        points.append((d.landmarks - pad) / side)
        boxes.append((np.asarray(d.box) - pad) / side)
        if n % 500 == 0:
            print(f"{n}/{len(pick)} faces, {missed} without a face", file=sys.stderr, flush=True)
    pts, bx = np.stack(points), np.stack(boxes)
    template = np.median(pts, axis=0)
    box_side = np.median(np.maximum(bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1]))
    res = {
        "detector": args.detector,
        "faces": int(len(pick)),
        "found": int(len(pts)),
        "template": np.round(template, 4).tolist(),
        "template_iqr": np.round(np.percentile(pts, 75, 0) - np.percentile(pts, 25, 0), 4).tolist(),
        "box_median": np.round(np.median(bx, 0), 4).tolist(),
        "box_side_median": round(float(box_side), 4),
        "box_margin": round(float((1 / box_side - 1) / 2), 4),
        "command": "python " + " ".join(sys.argv),
    }
    print(json.dumps(res, indent=2))
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(res, indent=2) + "\n")
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
