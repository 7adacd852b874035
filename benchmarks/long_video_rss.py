"""Peak memory of `emocontext predict` on a synthetic 10-minute 720p video (the bar: under 1.5 GB).

The video: 1280x720 at 25 fps for ``--minutes`` minutes (H.264 where PyAV has it, else MPEG-4), the
shipped sample clip's frames (a real face) scaled into the middle of a moving grey background, looped.
It is written frame by frame (never held in memory). Then ``emocontext predict VIDEO --json OUT`` runs as
a subprocess and its peak resident memory is read from ``getrusage(RUSAGE_CHILDREN).ru_maxrss``.

    python benchmarks/long_video_rss.py --out benchmarks/long_video_rss.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from _machine import cpu_name
from _results import save

from emocontext.samples import sample_video
from emocontext.video.decode import iter_frames


def synthesize(path: Path, minutes: float, fps: int = 25, size=(720, 1280)) -> None:
    face = [f.image for f in iter_frames(sample_video(), fps=25)]
    h, w = size
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as c:
        vs = c.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            vs.options = {"preset": "ultrafast"}
        vs.time_base = Fraction(1, fps)
        base = np.full((h, w, 3), 90, np.uint8)
        for i in range(int(minutes * 60 * fps)):
            img = base.copy()
            img[:, (i * 4) % w] = 200  # something moves, so the encoder has work and the frames differ
            f = cv2.resize(face[i % len(face)], (480, 480 * face[0].shape[0] // face[0].shape[1]))
            y0, x0 = (h - f.shape[0]) // 2, (w - f.shape[1]) // 2
            img[y0 : y0 + f.shape[0], x0 : x0 + f.shape[1]] = f
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--detector", default="mtcnn")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="long_video_"))
    video = work / "long.mp4"
    t0 = time.perf_counter()
    synthesize(video, args.minutes)
    made = time.perf_counter() - t0
    cmd = [sys.executable, "-m", "emocontext", "predict", str(video), "--json", str(work / "out.json")]
    cmd += ["--detector", args.detector]
    l0, t0 = os.getloadavg()[0], time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
    pred = json.loads((work / "out.json").read_text())[0] if proc.returncode == 0 else {}
    result = {
        "minutes": args.minutes,
        "video_mb": video.stat().st_size / 1e6,
        "synthesis_seconds": made,
        "exit": proc.returncode,
        "stderr": proc.stderr[-500:],
        "wall_seconds": wall,
        "peak_rss_mb": peak_mb,
        "num_frames": pred.get("num_frames"),
        "frames_with_face": pred.get("frames_with_face"),
        "label": pred.get("label"),
        "load": [l0, os.getloadavg()[0]],
    }
    text = "\n".join(
        [
            "# Peak memory of `emocontext predict` on a long 720p video",
            "",
            f"Synthetic {args.minutes:g}-minute 1280x720 25 fps video ({result['video_mb']:.0f} MB; the shipped "
            "sample clip's face scaled into a moving grey frame, looped), default model, detector "
            f"`{args.detector}`, 5 fps sampling.",
            "",
            "| peak RSS | bar | sampled frames | with a face | wall | load avg before / after |",
            "|---|---|---|---|---|---|",
            f"| **{peak_mb:.0f} MB** | 1536 MB | {result['num_frames']} | {result['frames_with_face']} "
            f"| {wall / 60:.1f} min | {result['load'][0]:.1f} / {result['load'][1]:.1f} |",
            "",
            f"Peak RSS = `getrusage(RUSAGE_CHILDREN).ru_maxrss` of the `predict` subprocess (exit status "
            f"{proc.returncode}). Command: `python benchmarks/long_video_rss.py --minutes {args.minutes:g} "
            f"--detector {args.detector}`. Machine: {cpu_name()}, {os.cpu_count()} cores shared with other jobs.",
            "",
        ]
    )
    print(text)
    if args.out:
        save(args.out, text, result)


if __name__ == "__main__":
    main()
