"""Where the time goes, and what Ray costs: stage by stage, one command end to end, Ray vs one process.

Three measurements, each with the machine's load average (``os.getloadavg``) before and after, because
the 2 cores of this machine are shared with other jobs and absolute speeds move with their load:

1. **Stage costs** (``--stages``): one :class:`~emocontext.inference.Predictor` with the context model
   (so every stage runs: decode, detect, crop, track, face CNN, context CNN, context model) over every
   video file under ``--videos``, models loaded before timing; seconds and share of each stage. The
   shares are measured in the same run, so they compare stages fairly even on a loaded machine.
2. **One command** (``--command``): ``emocontext predict DIR -q --jsonl ...`` as a subprocess, start-up
   (imports, model loading) included, per detector; real-time factor = seconds of video / wall seconds.
3. **Ray vs one process** (``--ray``): the same command with ``--ray local --workers 2`` on the CREMA-D
   and RAVDESS clips, with the JSONL outputs compared byte for byte, and Ray's own start-up timed in
   process (cluster start, actor pool with models loaded, then the files).

    python benchmarks/scale_speed.py --out benchmarks/scale_speed.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _machine import cpu_name
from _results import save

from emocontext.errors import EmoContextError
from emocontext.inference import Predictor
from emocontext.video.decode import probe

DATA = Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data"))
YUNET = Path(os.environ.get("EMOCONTEXT_YUNET", DATA.parent / "weights" / "face_detection_yunet_2023mar.onnx"))


def load() -> float:
    return os.getloadavg()[0]


def media(folder: Path) -> tuple[list[Path], float]:
    files, seconds = [], 0.0
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.suffix.lower() in {".mp4", ".flv", ".mov", ".avi", ".mkv"}:
            try:
                seconds += probe(f).duration or 0.0
                files.append(f)
            except EmoContextError:
                pass
    return files, seconds


def stages(files: list[Path]) -> dict:
    p = Predictor(model="context")
    l0, t0 = load(), time.perf_counter()
    for f in files:
        p.predict(f)
    wall = time.perf_counter() - t0
    secs = dict(p.times.seconds)
    return {"wall": wall, "seconds": secs, "load": [l0, load()]}


def command(target: list[Path], args: list[str], env: dict | None = None) -> tuple[float, list[float], Path]:
    out = Path(tempfile.mkdtemp()) / "out.jsonl"
    cmd = [sys.executable, "-m", "emocontext", "predict", *map(str, target), "-q", "--jsonl", str(out), *args]
    l0, t0 = load(), time.perf_counter()
    # a failed run must not pass for a timing
    subprocess.run(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0, [l0, load()], out


def ray_breakdown(files: list[Path]) -> dict:
    from emocontext.distributed.ray import PredictWorker, cluster, map_files

    t0 = time.perf_counter()
    with cluster("local"):
        t1 = time.perf_counter()
        _, results = map_files(PredictWorker, {}, [str(f) for f in files], workers=2)
        t2 = time.perf_counter()
        for _ in results:
            pass
        t3 = time.perf_counter()
    return {"cluster_start": t1 - t0, "pool_start": t2 - t1, "files": t3 - t2, "shutdown": time.perf_counter() - t3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=DATA / "videos")
    ap.add_argument("--parts", default="stages,command,ray")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each one-command setting (median reported)")
    args = ap.parse_args()
    parts = args.parts.split(",")
    files, seconds = media(args.videos)
    if not files:
        raise SystemExit(f"no video files under {args.videos} (run from the repository root, or set EMOCONTEXT_DATA)")
    lines = [
        "# Scale-out and the single-machine path: stage costs, one command, Ray vs one process",
        "",
        f"Inputs: the {len(files)} video files under `{args.videos}` ({seconds:.1f} s of video). Machine: "
        f"{cpu_name()}, {os.cpu_count()} cores; every timing carries the 1-minute load average before / after "
        "it (2.0 = both cores busy by other work too). Absolute speeds on a loaded machine are lower bounds; "
        "the stage shares of one run compare fairly.",
        "",
    ]
    result = {"files": [str(f) for f in files], "video_seconds": seconds}
    if "stages" in parts:
        s = stages(files)
        result["stages"] = s
        total = sum(s["seconds"].values())
        lines += [
            "## Stage costs (context model, so every stage runs; models loaded before timing)",
            "",
            "| stage | seconds | share |",
            "|---|---|---|",
        ]
        for k, v in sorted(s["seconds"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| {k} | {v:.2f} | {v / total:.1%} |")
        lines += [
            "",
            f"Wall {s['wall']:.1f} s for {seconds:.1f} s of video ({seconds / s['wall']:.1f}x real time), "
            f"load {s['load'][0]:.1f} / {s['load'][1]:.1f}.",
            "",
        ]
        print("\n".join(lines[-12:]), flush=True)
    if "command" in parts:
        lines += [
            f"## `emocontext predict DIR`, one command, start-up included ({args.repeat} runs each)",
            "",
            "| detector | `--detect-every` | `--workers` | wall s, median (range) | real-time factor "
            "| load before / after |",
            "|---|---|---|---|---|---|",
        ]
        result["command"] = {}
        for det, env in (("mtcnn", None), ("yunet", {"EMOCONTEXT_YUNET": str(YUNET)})):
            if det == "yunet" and not YUNET.exists():
                continue
            for every, extra in ((5, []), (1, []), (5, ["--workers", "1"])):
                runs = [
                    command([args.videos], ["--detector", det, "--detect-every", str(every), *extra], env)
                    for _ in range(args.repeat)
                ]
                walls = sorted(r[0] for r in runs)
                wall, ld = walls[len(walls) // 2], [runs[0][1][0], runs[-1][1][1]]
                key = f"{det}_every{every}" + ("_workers1" if extra else "")
                result["command"][key] = {"walls": walls, "median": wall, "load": ld}
                note = " (default)" if every == 5 and not extra else ""
                lines.append(
                    f"| {det} | {every}{note} | {' '.join(extra) or 'default'} | {wall:.1f} "
                    f"({walls[0]:.1f}-{walls[-1]:.1f}) | {seconds / wall:.1f}x | {ld[0]:.1f} / {ld[1]:.1f} |"
                )
                print(lines[-1], flush=True)
        lines += [
            "",
            f"`python -m emocontext predict {args.videos} -q --jsonl out.jsonl --detector DET --detect-every K`",
            "",
        ]
    if "ray" in parts:
        clips = [f for f in files if "crema-d" in str(f) or "ravdess" in str(f)]
        clip_seconds = sum(probe(f).duration or 0 for f in clips)
        one, l1, out1 = command(clips, ["--workers", "1", "--threads", "1"])
        one2, l12, _ = command(clips, [])
        ray, l2, out2 = command(clips, ["--ray", "local", "--workers", "2"])
        same = out1.read_bytes() == out2.read_bytes()
        b = ray_breakdown(clips)
        result["ray"] = {
            "clips": len(clips),
            "video_seconds": clip_seconds,
            "one_process_1_thread": {"wall": one, "load": l1},
            "one_process_default_threads": {"wall": one2, "load": l12},
            "ray_local_2_workers": {"wall": ray, "load": l2},
            "jsonl_identical_to_1_thread": same,
            "ray_breakdown": b,
        }
        lines += [
            f"## Ray vs one process: {len(clips)} CREMA-D and RAVDESS clips ({clip_seconds:.1f} s of video)",
            "",
            "| run | wall s | vs one process (default) | load before / after |",
            "|---|---|---|---|",
            f"| one process, one file at a time, `--threads 1` | {one:.1f} | {one / one2:.2f}x | "
            f"{l1[0]:.1f} / {l1[1]:.1f} |",
            f"| one process, default (2 files at once, 1 thread each) | {one2:.1f} | 1.00x | "
            f"{l12[0]:.1f} / {l12[1]:.1f} |",
            f"| `--ray local --workers 2` (starts and stops a cluster) | {ray:.1f} | {ray / one2:.2f}x | "
            f"{l2[0]:.1f} / {l2[1]:.1f} |",
            "",
            f"JSONL of `--ray` byte-identical to the one-process `--workers 1 --threads 1` run: **{same}**.",
            "",
            f"Ray's costs, timed in one process: cluster start {b['cluster_start']:.1f} s, actor pool with models "
            f"loaded {b['pool_start']:.1f} s, the {len(clips)} files {b['files']:.1f} s, shutdown "
            f"{b['shutdown']:.1f} s. On a cluster already running (`ray start --head`, then `--ray auto`) the "
            f"start and shutdown are not paid: about {ray - b['cluster_start'] - b['shutdown']:.1f} s "
            f"({(ray - b['cluster_start'] - b['shutdown']) / one2:.2f}x), an estimate from these parts (`ray start` "
            "listens on the machine's network address, which the benchmarks here do not use).",
            "",
            "`python -m emocontext predict CLIPS -q --jsonl out.jsonl [--workers 1 --threads 1 | --ray local "
            "--workers 2]`",
            "",
        ]
        print("\n".join(lines[-14:]), flush=True)
    lines += [f"Command: `python benchmarks/scale_speed.py --parts {args.parts}`; torch {torch.__version__}.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        save(args.out, text, result)


if __name__ == "__main__":
    main()
