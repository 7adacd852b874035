"""End-to-end speed of the pipeline on real clips: real-time factor and time per stage.

Real-time factor = seconds of video processed per second of wall time (higher is
faster; 3 means a 1-minute video takes 20 s). Two paths are timed:

* ``predict``: what ``emocontext predict`` does (decode, detect + track, crop,
  face CNN; the default model needs no context CNN);
* ``extract``: what ``emocontext extract`` does (the same plus the context CNN on
  every frame).

Models are loaded once before timing (as for a folder of videos); each path runs
once to warm up, then ``--repeats`` times.

    python benchmarks/pipeline_speed.py --videos ../shared/data/videos/crema-d --out benchmarks/pipeline_speed.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _machine import cpu_name

from emocontext.data.manifest import Manifest
from emocontext.features.extract import Extractors, clip_record
from emocontext.inference import Predictor
from emocontext.video.decode import probe
from emocontext.video.pipeline import StageTimes, StreamConfig, video_streams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data"))
    ap.add_argument("--videos", type=Path, default=data / "videos" / "crema-d")
    ap.add_argument("--detector", default="mtcnn")
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write the results as markdown here")
    args = ap.parse_args()

    files = [e.path for e in Manifest.from_paths([args.videos])]
    video_seconds = sum(probe(f).duration or 0 for f in files)
    predictor = Predictor(detector=args.detector, fps=args.fps)
    ex = Extractors.build(detector=predictor.detector, config=StreamConfig(fps=args.fps))
    rows = {}
    for name in ("predict", "extract"):
        for rep in range(args.repeats + 1):
            times = StageTimes()
            t0 = time.perf_counter()
            for f in files:
                if name == "predict":
                    predictor.times = times
                    predictor.predict(f)
                else:
                    clip_record(video_streams(f, ex.detector, ex.config, times=times), ex, times)
            wall = time.perf_counter() - t0
            if rep == 0:
                continue  # warm-up
            if name not in rows or wall < rows[name][0]:
                rows[name] = (wall, dict(times.seconds))

    lines = [
        "# Pipeline speed",
        "",
        f"Clips: {len(files)} files in `{args.videos}`, {video_seconds:.1f} s of video in all, "
        f"sampled at {args.fps:g} fps; detector `{args.detector}`; best of {args.repeats} runs after a warm-up.",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads.",
        "",
        "| path | wall s | real-time factor | " + " | ".join(f"{s} s" for s in STAGES) + " |",
        "|---|---|---|" + "---|" * len(STAGES),
    ]
    for name, (wall, stages) in rows.items():
        cells = " | ".join(f"{stages.get(s, 0.0):.2f}" for s in STAGES)
        lines.append(f"| {name} | {wall:.2f} | {video_seconds / wall:.1f}x | {cells} |")
    lines += [
        "",
        f"Command: `python benchmarks/pipeline_speed.py --videos {args.videos} --detector {args.detector}`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


STAGES = ("decode", "detect", "crop", "track", "face_cnn", "context_cnn")

if __name__ == "__main__":
    main()
