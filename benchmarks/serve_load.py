"""Load, soak and a crash on ``emocontext serve`` over loopback: throughput, latency, refusals, memory, lost jobs.

Starts ``python -m emocontext serve`` on 127.0.0.1 (its own ``TMPDIR`` and ``--data-dir``, an API key),
computes the single-process ``predict`` result of every clip first (:class:`~emocontext.inference.Predictor`,
same options), then:

1. **Load**: ``--clients`` concurrent clients (httpx, asyncio) upload the clips round-robin to
   ``POST /v1/predict`` for ``--duration`` seconds (at most ``--max-requests``; requests in flight at the
   deadline are awaited). Every 200 answer must equal the reference of the file that was sent (same
   file name, label and per-frame values; probabilities within 1e-3), so an answer mixed up between
   requests or lost shows. Throughput, p50/p95/p99 latency, 429 and 503 counts, other 5xx.
2. **Soak**: the same load for ``--soak`` more seconds. The resident memory of the server and its workers
   (``/proc``, every 0.5 s) is fitted with a line over the soak: its slope in MB a minute says whether
   memory grows once warm (the bar: under 1 MB a minute).
3. At the end no upload may be left in the data folder, and after the server stops its ``TMPDIR`` is empty.
4. **Fault** (``--fault SECONDS``, 0 to skip): a new server on a new data folder; the clients submit
   ``POST /v1/jobs`` for that long; half-way the server and its workers are killed (``SIGKILL`` to its
   process group) and started again on the same folder. Every job that was accepted (202) must then
   end ``done`` with the reference answer: a job lost (404, or failed) or different counts against
   the service. Uploads cut by the crash got no 202 and are counted apart.

    python benchmarks/serve_load.py --workers 2 --clients 8 --duration 120 --soak 600 --fault 120 \\
        --threads 1 --out benchmarks/serve_load.md

Loopback only; bounded in time (each phase + its last requests) and count (``--max-requests``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
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
from _results import save

TOL = 1e-3
KEY = "serve-load-benchmark-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}
MB = 1024 * 1024


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
        return next((d for k in a if (d := same(a[k], b[k], f"{where}.{k}"))), None)
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return f"{where}: lengths differ"
        return next((d for i, (x, y) in enumerate(zip(a, b, strict=True)) if (d := same(x, y, f"{where}[{i}]"))), None)
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


class Service:
    """``emocontext serve`` in its own process group, on one data folder; :meth:`kill` is ``kill -9`` of it all."""

    def __init__(self, args, data: Path, tmp: Path, log: Path):
        self.args, self.data, self.tmp, self.log_path = args, data, tmp, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float) -> float:
        """Start and wait until ready; the seconds it took."""
        a = self.args
        cmd = [sys.executable, "-m", "emocontext", "serve", "--port", str(self.port), "--workers", str(a.workers)]
        cmd += ["--queue", str(a.queue), "--log-level", "warning", "--data-dir", str(self.data)]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        env = {**os.environ, "TMPDIR": str(self.tmp), "EMOCONTEXT_API_KEYS": KEY}
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while time.monotonic() - t0 < timeout:
                if self.proc.poll() is not None:
                    sys.exit(f"the server exited: {self.log_path.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/readyz").status_code == 200:
                        return time.monotonic() - t0
                time.sleep(0.5)
        self.kill()
        sys.exit("the server did not get ready")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def uploads(self) -> list[Path]:
        folder = self.data / "uploads"
        return list(folder.iterdir()) if folder.is_dir() else []


async def load(url: str, blobs, clients: int, duration: float, max_requests: int, fps: float) -> list:
    """``clients`` uploading to /v1/predict for ``duration`` s: ``(file name, status, latency s, body)`` each."""
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
                results.append((name, r.status_code, time.perf_counter() - t0, body))
                if r.status_code in (429, 503):
                    await asyncio.sleep(min(1.0, float(r.headers.get("retry-after", 1))))
            except httpx.HTTPError as e:
                results.append((name, type(e).__name__, time.perf_counter() - t0, None))

    limits = httpx.Limits(max_connections=clients)
    timeout = max(600.0, 4 * duration)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, headers=HEADERS) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return results


def summarize(results: list, refs: dict, wall: float) -> dict:
    ok = [r for r in results if r[1] == 200]
    status: dict = {}
    for r in results:
        status[str(r[1])] = status.get(str(r[1]), 0) + 1
    mismatches = [f"{name}: {d}" for name, _, _, body in ok if (d := same(body, refs[name]))]
    lat = np.array([r[2] for r in ok]) if ok else np.array([np.nan])
    return {
        "requests": len(results),
        "ok": len(ok),
        "status": status,
        "throughput": len(ok) / wall if wall else 0.0,
        "wall": wall,
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "p99": float(np.percentile(lat, 99)),
        "n429": status.get("429", 0),
        "n503": status.get("503", 0),
        "server_5xx": sum(1 for r in results if isinstance(r[1], int) and r[1] >= 500 and r[1] != 503),
        "client_errors": sum(1 for r in results if not isinstance(r[1], int)),
        "mismatches": mismatches,
    }


def slope_mb_per_min(samples: list[tuple[float, int]], t_from: float, t_to: float) -> float | None:
    """Least-squares slope of RSS over [t_from, t_to], MB (MiB) a minute."""
    pts = [(t, r) for t, r in samples if t_from <= t <= t_to and r > 0]
    if len(pts) < 10:
        return None
    t = np.array([p[0] for p in pts]) - pts[0][0]
    r = np.array([p[1] for p in pts]) / MB
    return float(np.polyfit(t / 60.0, r, 1)[0])


def load_and_soak(args, files: list[Path], refs: dict, work: Path) -> dict:
    blobs = [(f.name, f.read_bytes()) for f in files]
    tmp = work / "tmp"
    tmp.mkdir()
    service = Service(args, work / "data", tmp, work / "server.log")
    startup = service.start(args.start_timeout)
    sampler = MemorySampler(service.proc.pid)
    sampler.start()
    try:
        warm = files[: args.warmup] if args.warmup is not None else files
        warm_bad = 0
        with httpx.Client(base_url=service.url, timeout=600, headers=HEADERS) as http:
            for f in warm:
                r = http.post("/v1/predict", files={"file": (f.name, f.read_bytes())}, data={"fps": str(args.fps)})
                warm_bad += r.status_code != 200 or same(r.json(), refs[f.name]) is not None
            rss_warm = tree_rss(service.proc.pid)
            print(f"load: {args.clients} clients for {args.duration:g} s", flush=True)
            t0 = time.perf_counter()
            loaded = asyncio.run(load(service.url, blobs, args.clients, args.duration, args.max_requests, args.fps))
            res = {"load": summarize(loaded, refs, time.perf_counter() - t0)}
            soak_start = time.monotonic()
            print(f"soak: {args.soak:g} s", flush=True)
            t0 = time.perf_counter()
            soaked = asyncio.run(load(service.url, blobs, args.clients, args.soak, args.max_requests, args.fps))
            res["soak"] = summarize(soaked, refs, time.perf_counter() - t0)
            soak_end = time.monotonic()
            time.sleep(1.0)
            rss_end = tree_rss(service.proc.pid)
            metrics = http.get("/metrics").text
            uploads_left = len(service.uploads())
    finally:
        service.stop()
        sampler.stop_event.set()
        sampler.join()
    samples = sampler.samples
    res.update(
        startup=startup,
        warm_n=len(warm),
        warm_bad=warm_bad,
        rss_warm=rss_warm,
        rss_end=rss_end,
        rss_peak=max(s[1] for s in samples),
        rss_soak_peak=max((s[1] for s in samples if soak_start <= s[0] <= soak_end), default=0),
        slope_soak=slope_mb_per_min(samples, soak_start, soak_end),
        uploads_left=uploads_left,
        left_after_stop=len(list(tmp.iterdir())) + len(service.uploads()),
        queue_depth_end=metric(metrics, "emocontext_queue_depth"),
        slots_end=metric(metrics, "emocontext_slots_in_use"),
    )
    return res


async def submit_jobs(url: str, blobs, clients: int, duration: float, fps: float, accepted: list, refused: dict):
    """Clients posting /v1/jobs for ``duration`` s, through a crash: accepted jobs go to ``accepted``."""
    deadline = time.monotonic() + duration
    counter = {"next": 0}

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            name, data = blobs[counter["next"] % len(blobs)]
            counter["next"] += 1
            try:
                r = await http.post("/v1/jobs", files={"file": (name, data)}, data={"fps": str(fps)})
            except httpx.HTTPError as e:  # the server is down: try again shortly
                refused[type(e).__name__] = refused.get(type(e).__name__, 0) + 1
                await asyncio.sleep(0.5)
                continue
            if r.status_code == 202:
                accepted.append((r.json()["id"], name))
            else:
                refused[str(r.status_code)] = refused.get(str(r.status_code), 0) + 1
                await asyncio.sleep(min(1.0, float(r.headers.get("retry-after", 1))))

    async with httpx.AsyncClient(base_url=url, timeout=120, headers=HEADERS) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))


def wait_jobs(url: str, accepted: list, timeout: float) -> dict[str, dict | None]:
    """The final JSON of each accepted job (None: 404, the job is gone)."""
    final: dict[str, dict | None] = {}
    end = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=60, headers=HEADERS) as http:
        while len(final) < len(accepted) and time.monotonic() < end:
            for job_id, _ in accepted:
                if job_id in final:
                    continue
                r = http.get(f"/v1/jobs/{job_id}")
                if r.status_code == 404:
                    final[job_id] = None
                elif r.status_code == 200 and r.json()["status"] in ("done", "failed", "cancelled"):
                    final[job_id] = r.json()
                elif r.status_code == 429:
                    time.sleep(float(r.headers.get("retry-after", 1)))
            time.sleep(0.5)
    return final


def fault_run(args, files: list[Path], refs: dict, work: Path) -> dict:
    blobs = [(f.name, f.read_bytes()) for f in files]
    tmp = work / "tmp-fault"
    tmp.mkdir()
    service = Service(args, work / "data-fault", tmp, work / "server-fault.log")
    service.start(args.start_timeout)
    accepted: list = []
    refused: dict = {}
    restart = {}

    def crash() -> None:
        time.sleep(args.fault / 2)
        restart["accepted_before"] = len(accepted)
        service.kill()
        restart["uploads_kept"] = len(service.uploads())
        restart["seconds"] = service.start(args.start_timeout)

    killer = threading.Thread(target=crash)
    killer.start()
    asyncio.run(submit_jobs(service.url, blobs, args.clients, args.fault, args.fps, accepted, refused))
    killer.join()
    final = wait_jobs(service.url, accepted, timeout=args.start_timeout + 600)
    uploads_left = len(service.uploads())
    service.stop()
    lost = [j for j, _ in accepted if final.get(j) is None or final[j]["status"] != "done"]
    names = dict(accepted)
    different = [
        j for j, _ in accepted if final.get(j) and final[j]["result"] and same(final[j]["result"], refs[names[j]])
    ]
    resumed = sum(1 for j in final.values() if j and j.get("resumed"))
    five_xx = sum(v for k, v in refused.items() if k.isdigit() and int(k) >= 500 and k != "503")
    return {
        "accepted": len(accepted),
        "accepted_before_kill": restart.get("accepted_before"),
        "uploads_kept_at_kill": restart.get("uploads_kept"),
        "restart_seconds": restart.get("seconds"),
        "lost": len(lost),
        "lost_detail": [(j, (final.get(j) or {}).get("error")) for j in lost[:10]],
        "different": len(different),
        "resumed": resumed,
        "refused": refused,
        "server_5xx": five_xx,
        "uploads_left": uploads_left,
    }


def render(args, files: list[Path], r: dict) -> str:
    cmd = (
        f"python benchmarks/serve_load.py --workers {args.workers} --clients {args.clients} --queue {args.queue} "
        f"--duration {args.duration:g} --soak {args.soak:g} --fault {args.fault:g} --fps {args.fps:g}"
        + (f" --warmup {args.warmup}" if args.warmup is not None else "")
        + (f" --threads {args.threads}" if args.threads else "")
        + (f" --out {args.out}" if args.out else "")
    )
    lines = [
        "# `emocontext serve` under load, soak and a crash (loopback)",
        "",
        args.note or "",
        "",
        f"Command: `{cmd}`",
        "",
        f"Data: {len(files)} CREMA-D clips ({', '.join(f.name for f in files)}), sent round-robin at {args.fps:g} "
        f"fps; each 200 answer and each finished job compared with the single-process `predict` result of the same "
        f"file (floats within {TOL:g}). One API key (Bearer), default limits.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}.",
        "",
        f"Server: {args.workers} worker(s), queue {args.queue}; {args.clients} concurrent clients. Start-up to "
        f"ready: {r['startup']:.0f} s; single-process references: {r['ref_seconds']:.0f} s; warm-up: "
        f"{r['warm_n']} requests ({r['warm_bad']} different or failed).",
        "",
        "| measure | load | soak |",
        "|---|---|---|",
    ]
    ld, sk = r["load"], r["soak"]

    def row(label: str, f) -> None:
        lines.append(f"| {label} | {f(ld)} | {f(sk)} |")

    row("seconds (requests in flight at the end awaited)", lambda x: f"{x['wall']:.0f}")
    row("requests sent", lambda x: x["requests"])
    row("answers by status", lambda x: ", ".join(f"{k}: {v}" for k, v in sorted(x["status"].items())) or "none")
    row("throughput (200 answers / s)", lambda x: f"{x['throughput']:.3f}")
    row("latency of 200 answers p50 / p95 / p99 (s)", lambda x: f"{x['p50']:.2f} / {x['p95']:.2f} / {x['p99']:.2f}")
    row("429 (key limits) / 503 (queue full)", lambda x: f"{x['n429']} / {x['n503']}")
    row("5xx other than 503", lambda x: x["server_5xx"])
    row("client-side errors (no answer)", lambda x: x["client_errors"])
    row("200 answers different from `predict`", lambda x: len(x["mismatches"]))
    slope = "n/a" if r["slope_soak"] is None else f"{r['slope_soak']:+.2f} MB/min"
    lines += [
        "",
        "| memory and files | value |",
        "|---|---|",
        f"| RSS (server + workers) after warm-up / at the end | {r['rss_warm'] / MB:.0f} / "
        f"{r['rss_end'] / MB:.0f} MiB |",
        f"| RSS peak during the soak / overall | {r['rss_soak_peak'] / MB:.0f} / {r['rss_peak'] / MB:.0f} MiB |",
        f"| RSS slope over the soak (least squares) | {slope} |",
        f"| uploads left after the load / files left after stop | {r['uploads_left']} / {r['left_after_stop']} |",
        f"| queue depth / slots in use at the end (/metrics) | {r['queue_depth_end']:g} / {r['slots_end']:g} |",
    ]
    if "fault" in r:
        f = r["fault"]
        refused = ", ".join(f"{k}: {v}" for k, v in sorted(f["refused"].items())) or "none"
        lines += [
            "",
            f"Fault run: {args.clients} clients post `/v1/jobs` for {args.fault:g} s; half-way the server and its "
            "workers are killed (SIGKILL to the process group) and started again on the same `--data-dir`.",
            "",
            "| fault run | value |",
            "|---|---|",
            f"| jobs accepted (202) / before the kill | {f['accepted']} / {f['accepted_before_kill']} |",
            f"| uploads kept in the data folder at the kill | {f['uploads_kept_at_kill']} |",
            f"| restart to ready (s) | {f['restart_seconds']:.0f} |",
            f"| jobs resumed after the restart | {f['resumed']} |",
            f"| **jobs lost** (404 or not done) | {f['lost']} |",
            f"| finished jobs different from `predict` | {f['different']} |",
            f"| refused uploads by reason | {refused} |",
            f"| 5xx other than 503 | {f['server_5xx']} |",
            f"| uploads left at the end | {f['uploads_left']} |",
        ]
        if f["lost_detail"]:
            lines += ["", "Lost jobs (first 10): " + "; ".join(f"{j}: {e}" for j, e in f["lost_detail"])]
    for phase in ("load", "soak"):
        if r[phase]["mismatches"]:
            lines += ["", f"Mismatches in the {phase} (first 10):", ""] + [
                f"- {m}" for m in r[phase]["mismatches"][:10]
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data"))
    ap.add_argument("--videos", type=Path, default=data / "videos" / "crema-d")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--queue", type=int, default=8)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    ap.add_argument("--soak", type=float, default=600.0, help="seconds of soak after the load (memory slope)")
    ap.add_argument("--fault", type=float, default=120.0, help="seconds of the crash run (0: none)")
    ap.add_argument("--max-requests", type=int, default=5000, help="per phase")
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per worker and for the references")
    ap.add_argument("--warmup", type=int, default=None, help="requests before the load (default: one per clip)")
    ap.add_argument("--start-timeout", type=float, default=1800.0)
    ap.add_argument("--out", type=Path, default=None, help="write the results as markdown (and .json) here")
    ap.add_argument("--note", default="", help="a paragraph about this run for the results file")
    args = ap.parse_args()

    files = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in {".flv", ".mp4", ".mov", ".avi", ".mkv"})
    if not files:
        sys.exit(f"no clips in {args.videos}")
    print(f"references: single-process predict of {len(files)} clips at {args.fps:g} fps", flush=True)
    t0 = time.perf_counter()
    refs = references(files, args.fps, args.threads)
    ref_seconds = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    try:
        res = load_and_soak(args, files, refs, work)
        res["ref_seconds"] = ref_seconds
        if args.fault > 0:
            print(f"fault run: {args.fault:g} s, kill -9 half-way", flush=True)
            res["fault"] = fault_run(args, files, refs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = render(args, files, res)
    print(text)
    if args.out:
        save(args.out, text, res)


if __name__ == "__main__":
    main()
