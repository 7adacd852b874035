"""Load on ``emocontext serve`` over loopback: throughput, latency, 503s, memory, and every answer checked.

Starts ``python -m emocontext serve`` on 127.0.0.1 (its own ``TMPDIR``), computes the single-process
``predict`` result of every clip first (:class:`~emocontext.inference.Predictor`, same options),
then ``--clients`` concurrent clients (httpx, asyncio) upload the clips round-robin to
``POST /v1/predict`` for ``--duration`` seconds (at most ``--max-requests`` requests; requests
in flight at the deadline are awaited). Every 200 answer must equal the reference of the file
that was sent (same file name, label and per-frame values; probabilities within 1e-3), so an
answer mixed up between requests or lost shows. Memory is the resident set of the server
process and its workers (``/proc``), sampled every 0.5 s; "after warm-up" is after one request
per clip (``--warmup``). At the end: no upload may be left in the server's folder, and after the server
stops its ``TMPDIR`` must be empty.

    python benchmarks/serve_load.py --workers 1 --clients 4 --duration 60 --out benchmarks/serve_load.md

Loopback only; bounded in time (``--duration`` + the last requests) and count (``--max-requests``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from _machine import cpu_name

TOL = 1e-3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss(pid: int) -> int:
    """Resident set size in bytes of ``pid`` and all its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.samples.append((time.monotonic(), tree_rss(self.pid)))
            self.stop_event.wait(self.every)


def same(a, b, where: str = "") -> str | None:
    """None if the JSON values match (floats within TOL), else where they differ."""
    if isinstance(a, float) or isinstance(b, float):
        ok = isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, abs_tol=TOL)
        return None if ok else f"{where}: {a} != {b}"
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return f"{where}: keys differ"
        for k in a:
            d = same(a[k], b[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = same(x, y, f"{where}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def references(files: list[Path], fps: float, threads: int | None) -> dict[str, dict]:
    import torch

    from emocontext.inference import Predictor

    if threads:
        torch.set_num_threads(threads)
    predictor = Predictor(fps=fps)
    refs = {}
    for f in files:
        d = json.loads(json.dumps(predictor.predict(f).to_dict()))
        d["path"] = f.name
        refs[f.name] = d
    return refs


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


async def load(url: str, files: list[Path], clients: int, duration: float, max_requests: int, fps: float):
    """Run the clients; a list of ``(file name, status, latency s, body or None)``."""
    blobs = [(f.name, f.read_bytes()) for f in files]
    results: list = []
    counter = {"next": 0}
    deadline = time.monotonic() + duration

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline and counter["next"] < max_requests:
            k = counter["next"]
            counter["next"] += 1
            name, data = blobs[k % len(blobs)]
            t0 = time.perf_counter()
            try:
                r = await http.post("/v1/predict", files={"file": (name, data)}, data={"fps": str(fps)})
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
                results.append((name, r.status_code, time.perf_counter() - t0, body, r.headers.get("retry-after")))
                if r.status_code == 503:
                    await asyncio.sleep(min(1.0, float(r.headers.get("retry-after", 1))))
            except httpx.HTTPError as e:
                results.append((name, type(e).__name__, time.perf_counter() - t0, None, None))

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=max(600.0, 4 * duration), limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data"))
    ap.add_argument("--videos", type=Path, default=data / "videos" / "crema-d")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--queue", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--max-requests", type=int, default=2000)
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per worker and for the references")
    ap.add_argument("--warmup", type=int, default=None, help="requests before the load (default: one per clip)")
    ap.add_argument("--start-timeout", type=float, default=1800.0)
    ap.add_argument("--out", type=Path, default=None, help="write the results as markdown here")
    ap.add_argument("--note", default="", help="a line about the machine's state for the results file")
    args = ap.parse_args()

    files = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in {".flv", ".mp4", ".mov", ".avi", ".mkv"})
    if not files:
        sys.exit(f"no clips in {args.videos}")
    print(f"references: single-process predict of {len(files)} clips at {args.fps:g} fps", flush=True)
    t0 = time.perf_counter()
    refs = references(files, args.fps, args.threads)
    ref_seconds = time.perf_counter() - t0

    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("w")
    server_tmp = tmp / "tmp"
    server_tmp.mkdir()
    cmd = [sys.executable, "-m", "emocontext", "serve", "--port", str(port), "--workers", str(args.workers)]
    cmd += ["--queue", str(args.queue), "--log-level", "warning"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, env={**os.environ, "TMPDIR": str(server_tmp)}, stdout=log, stderr=subprocess.STDOUT)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    try:
        t_start = time.monotonic()
        with httpx.Client(base_url=url, timeout=600) as http:
            while True:
                if proc.poll() is not None:
                    sys.exit(f"the server exited: {(tmp / 'server.log').read_text()[-2000:]}")
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() - t_start > args.start_timeout:
                    sys.exit("the server did not get ready")
                time.sleep(0.5)
            startup = time.monotonic() - t_start
            warm = files[: args.warmup] if args.warmup is not None else files
            print(f"server ready after {startup:.0f} s; warm-up: {len(warm)} requests", flush=True)
            warm_bad = 0
            for f in warm:
                r = http.post("/v1/predict", files={"file": (f.name, f.read_bytes())}, data={"fps": str(args.fps)})
                warm_bad += r.status_code != 200 or same(r.json(), refs[f.name]) is not None
            warm_end = time.monotonic()
            rss_warm = tree_rss(proc.pid)
            print(f"load: {args.clients} clients for {args.duration:g} s", flush=True)
            t_load = time.perf_counter()
            results = asyncio.run(load(url, files, args.clients, args.duration, args.max_requests, args.fps))
            wall = time.perf_counter() - t_load
            time.sleep(1.0)
            rss_end = tree_rss(proc.pid)
            metrics = http.get("/metrics").text
            uploads_left = [p for d in server_tmp.glob("emocontext-serve-*") for p in (d / "uploads").iterdir()]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sampler.stop_event.set()
        sampler.join()
        log.close()
    left_after_stop = list(server_tmp.iterdir())

    ok = [r for r in results if r[1] == 200]
    status_counts: dict = {}
    for r in results:
        status_counts[str(r[1])] = status_counts.get(str(r[1]), 0) + 1
    mismatches = []
    for name, _, _, body, _ in ok:
        d = same(body, refs[name])
        if d:
            mismatches.append(f"{name}: {d}")
    lat = np.array([r[2] for r in ok]) if ok else np.array([np.nan])
    server_5xx = sum(1 for r in results if isinstance(r[1], int) and r[1] >= 500 and r[1] != 503)
    client_errors = sum(1 for r in results if not isinstance(r[1], int))
    samples = sampler.samples
    peak = max(s[1] for s in samples)
    during = [s[1] for s in samples if s[0] >= warm_end]
    peak_after_warm = max(during) if during else peak
    res = {
        "requests": len(results),
        "ok": len(ok),
        "status": status_counts,
        "throughput": len(ok) / wall,
        "wall": wall,
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "p99": float(np.percentile(lat, 99)),
        "n503": status_counts.get("503", 0),
        "server_5xx": server_5xx,
        "client_errors": client_errors,
        "mismatches": mismatches,
        "warm_bad": warm_bad,
        "warm_n": len(warm),
        "rss_peak": peak,
        "rss_warm": rss_warm,
        "rss_peak_after_warm": peak_after_warm,
        "rss_end": rss_end,
        "uploads_left": len(uploads_left),
        "left_after_stop": len(left_after_stop),
        "queue_depth_end": metric(metrics, "emocontext_queue_depth"),
        "slots_end": metric(metrics, "emocontext_slots_in_use"),
        "startup": startup,
        "ref_seconds": ref_seconds,
    }
    shutil.rmtree(tmp, ignore_errors=True)
    text = render(args, files, res)
    print(text)
    if args.out:
        args.out.write_text(text)


def render(args, files: list[Path], r: dict) -> str:
    mb = 1024 * 1024
    cmd = (
        f"python benchmarks/serve_load.py --workers {args.workers} --clients {args.clients} --queue {args.queue} "
        f"--duration {args.duration:g} --fps {args.fps:g}"
        + (f" --warmup {args.warmup}" if args.warmup is not None else "")
        + (f" --threads {args.threads}" if args.threads else "")
        + (f" --out {args.out}" if args.out else "")
    )
    verdict = []
    verdict.append("no 5xx other than 503" if r["server_5xx"] == 0 else f"**{r['server_5xx']} 5xx other than 503**")
    verdict.append(
        f"all {r['ok']} answers equal `predict`'s" if not r["mismatches"] else f"**{len(r['mismatches'])} mismatches**"
    )
    verdict.append("no upload left" if r["uploads_left"] == 0 and r["left_after_stop"] == 0 else "**files left**")
    lines = [
        "# `emocontext serve` under load (loopback)",
        "",
        f"Command: `{cmd}`",
        "",
        f"Data: {len(files)} CREMA-D clips ({', '.join(f.name for f in files)}), sent round-robin to "
        f"`POST /v1/predict` at {args.fps:g} fps; each 200 answer compared with the single-process `predict` "
        f"result of the same file (floats within {TOL:g}).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}. {args.note}".rstrip(),
        "",
        f"Server: {args.workers} worker(s), queue {args.queue}; {args.clients} concurrent clients for "
        f"{args.duration:g} s (requests in flight at the deadline awaited: {r['wall']:.0f} s in all). "
        f"Start-up to ready: {r['startup']:.0f} s; single-process references: {r['ref_seconds']:.0f} s.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests sent | {r['requests']} |",
        f"| answers by status | {', '.join(f'{k}: {v}' for k, v in sorted(r['status'].items()))} |",
        f"| throughput (200 answers / s) | {r['throughput']:.3f} |",
        f"| latency of 200 answers p50 / p95 / p99 (s) | {r['p50']:.2f} / {r['p95']:.2f} / {r['p99']:.2f} |",
        f"| 503 (queue full) | {r['n503']} |",
        f"| 5xx other than 503 | {r['server_5xx']} |",
        f"| client-side errors (no answer) | {r['client_errors']} |",
        f"| 200 answers different from `predict` | {len(r['mismatches'])} |",
        f"| warm-up requests / answers different or failed | {r['warm_n']} / {r['warm_bad']} |",
        f"| memory (server + workers, RSS) after warm-up | {r['rss_warm'] / mb:.0f} MiB |",
        f"| memory peak after warm-up / at the end | {r['rss_peak_after_warm'] / mb:.0f} / "
        f"{r['rss_end'] / mb:.0f} MiB |",
        f"| memory peak overall (incl. start-up) | {r['rss_peak'] / mb:.0f} MiB |",
        f"| uploads left after the load / files left after stop | {r['uploads_left']} / {r['left_after_stop']} |",
        f"| queue depth / slots in use at the end (/metrics) | {r['queue_depth_end']:g} / {r['slots_end']:g} |",
        "",
        "Verdict: " + "; ".join(verdict) + ".",
    ]
    if r["mismatches"]:
        lines += ["", "Mismatches (first 10):", ""] + [f"- {m}" for m in r["mismatches"][:10]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
