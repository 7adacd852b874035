"""Run the peer, the ``fer`` package (justinshenk/fer, MIT), on images or videos and write one JSON line per file.

Run by the peer's own interpreter, never by emocontext's: it imports ``fer`` (and TensorFlow, OpenCV) and
nothing of emocontext, so the peer's virtual environment (``../shared/peers/README.md``) is all it needs.
The benchmarks ``face_proxies.py`` and ``vs_fer.py`` call it as a subprocess::

    /work/.peer-venv/bin/python benchmarks/_fer_peer.py MODE OUT.jsonl [PATH ...] [--files-from LIST]

The detector is ``FER(mtcnn=False)`` (OpenCV Haar), the model the package's default (its quantised TFLite
mini-Xception; ``--keras`` for the Keras ``emotion_model.hdf5``). Modes:

- ``given``: each image IS the face; ``detect_emotions(image, face_rectangles=[(0, 0, w, h)])`` skips the
  detector, with ``offsets=(0, 0)`` so that the model sees exactly the image (fer's default offsets add 10 px
  of mean-grey padding on each side, which is its framing of a Haar box, not of a given face: on the CK+48
  crops it costs 7.7 points, 68.8 -> 61.1 %), as ``emocontext predict --detector none`` does. This is the
  protocol of the figures in ``../shared/peers/README.md``.
- ``detect``: each image is a photo; every face the Haar detector finds, with its box.
- ``video``: frames sampled at ``--fps`` (5) by presentation timestamp, faces found in each; the clip's
  probabilities are the mean over the frames with a face of the largest face's, its label their argmax
  (as ``emocontext predict`` answers for its subject).

Each line: ``path``, ``status`` (``ok`` / ``error``), ``error``; images: ``faces`` (``box`` as x1, y1, x2, y2
pixels, ``probabilities`` over fer's 7 classes, rounded by fer to 2 decimals); videos: ``probabilities``,
``label`` (null without a face), ``num_frames``, ``frames_with_face``. Folders are searched recursively for the
mode's files (sorted). The output is written to a temporary file and renamed when complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

IMAGES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEOS = {".mp4", ".avi", ".mov", ".mkv", ".flv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".3gp"}


def gather(paths: list[Path], suffixes: set[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
        else:
            out.append(p)
    return out


def faces_of(detector, image, rectangles=None) -> list[dict]:
    found = detector.detect_emotions(image, face_rectangles=rectangles)
    return [
        {"box": [int(x), int(y), int(x + w), int(y + h)], "probabilities": dict(f["emotions"])}
        for f in found
        for x, y, w, h in [f["box"]]
    ]


def image_record(detector, path: Path, mode: str) -> dict:
    import cv2

    image = cv2.imread(str(path))
    if image is None:
        raise ValueError(f"{path}: OpenCV cannot read this image")
    h, w = image.shape[:2]
    faces = faces_of(detector, image, [(0, 0, w, h)] if mode == "given" else None)
    return {"faces": faces}


def video_record(detector, path: Path, fps: float) -> dict:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open this video")
    step, k, frames, with_face = 1.0 / fps, 0, 0, 0  # the k-th sample is the first frame at or after k * step
    total: dict[str, float] = {}
    try:
        while cap.grab():
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if t + 1e-6 < k * step:
                continue
            k = int((t + 1e-6) // step) + 1
            ok, frame = cap.retrieve()
            if not ok:
                break
            frames += 1
            faces = faces_of(detector, frame)
            if faces:
                with_face += 1
                big = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
                for name, p in big["probabilities"].items():
                    total[name] = total.get(name, 0.0) + p
    finally:
        cap.release()
    if frames == 0:
        raise ValueError(f"{path}: no frame could be decoded")
    probs = {name: p / with_face for name, p in total.items()}
    label = max(probs, key=probs.get) if probs else None
    return {"probabilities": probs, "label": label, "num_frames": frames, "frames_with_face": with_face}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["given", "detect", "video"])
    ap.add_argument("out", type=Path, help="JSONL file to write")
    ap.add_argument("paths", nargs="*", type=Path, help="files or folders")
    ap.add_argument("--files-from", type=Path, help="a text file with one path a line")
    ap.add_argument("--fps", type=float, default=5.0, help="video frames sampled per second (default 5)")
    ap.add_argument("--keras", action="store_true", help="the Keras model instead of the default TFLite one")
    args = ap.parse_intermixed_args()
    paths = list(args.paths)
    if args.files_from:
        paths += [Path(line) for line in args.files_from.read_text().splitlines() if line.strip()]
    files = gather(paths, VIDEOS if args.mode == "video" else IMAGES)
    if not files:
        sys.exit("no input files")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fer.fer import FER

    # given faces: the image is the face, so no offsets (fer's default 10 px would shrink the face in its frame)
    detector = FER(mtcnn=False, use_tflite=not args.keras, offsets=(0, 0) if args.mode == "given" else (10, 10))
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    with open(tmp, "w") as out:
        for f in files:
            rec: dict = {"path": str(f), "status": "ok", "error": None}
            try:
                rec |= (
                    video_record(detector, f, args.fps)
                    if args.mode == "video"
                    else image_record(detector, f, args.mode)
                )
            except Exception as e:  # one bad file is reported in its line; the others still run
                rec |= {"status": "error", "error": f"{type(e).__name__}: {e}"}
            out.write(json.dumps(rec) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
