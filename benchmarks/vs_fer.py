"""emocontext beside the fer package, whole process: wall, CPU and peak memory on the same files (issue 22, item 1).

Two input folders, each read by both systems in separate processes timed by ``/usr/bin/time -v`` (wall,
user and system CPU seconds, maximum resident set size), start-up included:

- ``videos``: ``$EMOCONTEXT_DATA/videos``. Ours: ``python -m emocontext predict DIR -q --jsonl OUT`` (the
  defaults: MTCNN, face model, 5 frames/s, detection on every 5th sampled frame, 2 files at once on 2 cores).
  The peer: ``benchmarks/_fer_peer.py video`` (``FER(mtcnn=False)``: Haar on every sampled frame, its TFLite
  model, 5 frames/s by timestamp, one file at a time), on the video files ``predict`` reads there (the audio
  files and the CSV are skipped by both).
- ``ckplus``: the 981 CK+48 crops. Ours: ``predict DIR --detector none``; the peer: ``_fer_peer.py given``
  (the whole image as its face rectangle, so it skips its detector too).

``--repeat`` paired runs (default 3) alternate which system goes first; the tables give the median and the
range, and the ratio ours / peer of each pair (the bars of issue 22: wall ratio <= 0.5, peak RSS <= the
peer's). Then where our time goes:

- **stages**: one fresh process per folder that does what ``predict`` does, one file at a time, and times
  interpreter start, imports (``emocontext.cli``), model loading, decode (time waiting for the prefetching
  decoder thread), detect, crop (align / crop: the face crops and their resize), track, the face CNN, the JSONL
  output, and what is left (Python between the stages);
- **imports**: ``python -X importtime`` of ``emocontext --help`` and of ``predict`` on one clip, the import
  time by top-level package.

Every timing carries the machine's 1-minute load average before / after: on a machine shared with other work
the absolute times and even the ratios move; the lead reruns this on an idle machine.

    nice -n 15 python benchmarks/vs_fer.py --repeat 3 --out benchmarks/vs_fer.md

The peer's interpreter: ``--peer-python`` (default ``../.peer-venv/bin/python`` beside the repository, or
``$EMOCONTEXT_PEER_PYTHON``; install it as ``../shared/peers/README.md`` says).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: when the standard library was in: the stage profile's child measures its start-up from here (the benchmarks'
#: helpers import emocontext, so they are imported where needed, not here)
_ENTRY, _ENTRY_CPU = time.time(), time.process_time()

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMOCONTEXT_DATA", REPO.parent / "shared" / "data"))
PEER_PYTHON = Path(os.environ.get("EMOCONTEXT_PEER_PYTHON", REPO.parent / ".peer-venv" / "bin" / "python"))
PEER_RUNNER = Path(__file__).resolve().parent / "_fer_peer.py"
TIME = "/usr/bin/time"
INPUTS = {
    "videos": {"folder": DATA / "videos", "ours": [], "peer": "video"},
    "ckplus": {"folder": DATA / "ckplus48", "ours": ["--detector", "none"], "peer": "given"},
}


def load() -> float:
    return os.getloadavg()[0]


def timed(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v``: wall, user, sys seconds, peak RSS in MiB, load before / after."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        l0 = load()
        proc = subprocess.run(
            [TIME, "-v", "-o", report.name, *cmd],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        text = report.read()
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"{' '.join(cmd)} failed (exit status {proc.returncode}):\n{tail}")
    fields = dict(line.strip().rsplit(": ", 1) for line in text.splitlines() if ": " in line)
    h_m_s = [float(x) for x in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")]
    wall = sum(v * 60**k for k, v in enumerate(reversed(h_m_s)))
    return {
        "wall": wall,
        "user": float(fields["User time (seconds)"]),
        "sys": float(fields["System time (seconds)"]),
        "rss_mib": int(fields["Maximum resident set size (kbytes)"]) / 1024,
        "load": [l0, load()],
    }


def media_files(folder: Path) -> list[Path]:
    """The files ``predict`` reads under ``folder`` (its own walk), so that the peer gets the same ones."""
    from emocontext.data.manifest import gather_paths

    files, bad, *_ = gather_paths([folder])
    if bad or not files:
        raise SystemExit(f"{folder}: no media files ({bad[0][1] if bad else 'empty'})")
    return [f for f, _ in files]


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def pair_runs(name: str, spec: dict, repeat: int, peer_python: Path, work: Path) -> dict:
    files = media_files(spec["folder"])
    listing = work / f"{name}.files"
    listing.write_text("".join(f"{f}\n" for f in files))
    ours_out, peer_out = work / f"{name}-ours.jsonl", work / f"{name}-peer.jsonl"
    ours = [sys.executable, "-m", "emocontext", "predict", str(spec["folder"]), "-q", "--jsonl", str(ours_out)]
    ours += spec["ours"]
    peer = [str(peer_python), str(PEER_RUNNER), spec["peer"], str(peer_out), "--files-from", str(listing)]
    runs: dict[str, list[dict]] = {"ours": [], "peer": []}
    for i in range(repeat):
        order = ("ours", "peer") if i % 2 == 0 else ("peer", "ours")
        for who in order:
            env = {"TF_CPP_MIN_LOG_LEVEL": "3"} if who == "peer" else None
            runs[who].append(timed(ours if who == "ours" else peer, env) | {"position": order.index(who)})
            print(f"{name} pair {i + 1} {who}: {runs[who][-1]}", flush=True)
    ok_ours = sum(r["status"] == "ok" for r in lines_of(ours_out))
    ok_peer = sum(r["status"] == "ok" for r in lines_of(peer_out))
    pairs = list(zip(runs["ours"], runs["peer"], strict=True))
    return {
        "files": len(files),
        "ok": {"ours": ok_ours, "peer": ok_peer},
        "ratios": {
            "wall": [a["wall"] / b["wall"] for a, b in pairs],
            "cpu": [(a["user"] + a["sys"]) / (b["user"] + b["sys"]) for a, b in pairs],
            "rss": [a["rss_mib"] / b["rss_mib"] for a, b in pairs],
        },
        "commands": {
            "ours": f"python -m emocontext predict {spec['folder']} -q --jsonl OUT {' '.join(spec['ours'])}".strip(),
            "peer": f"_fer_peer.py {spec['peer']} OUT --files-from LIST ({len(files)} files of {spec['folder']})",
        },
        "runs": runs,
    }


# ---- the stage profile (a fresh process: --profile-child) -----------------------------------------------------


def profile_child(folder: Path, options: list[str]) -> None:
    """What one of ``predict``'s workers does (one file at a time, one thread for the networks), each part
    timed; prints one JSON line (epoch seconds)."""
    marks, cpu = {"entry": _ENTRY}, {"entry": _ENTRY_CPU}
    import emocontext.cli  # noqa: F401  (what the command line imports before it runs)
    from emocontext import runtime
    from emocontext.data.manifest import gather_paths
    from emocontext.inference import Predictor
    from emocontext.report.tables import PredictionTables

    marks["imported"], cpu["imported"] = time.time(), time.process_time()
    runtime.set_threads(1)  # as each of predict's 2 files at once on 2 cores (cli.common.local_workers)
    kwargs = {"detector": options[options.index("--detector") + 1]} if "--detector" in options else {}
    predictor = Predictor(**kwargs)
    marks["loaded"], cpu["loaded"] = time.time(), time.process_time()
    files = [f for f, _ in gather_paths([folder])[0]]
    preds, output = [], 0.0
    t0 = time.perf_counter()
    for f in files:
        preds.append((str(f), predictor.predict(f)))
    loop = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        with PredictionTables(list(predictor.labels), jsonl=Path(tmp) / "out.jsonl") as table:
            for path, pred in preds:
                table.write(path, pred, None)
        output = time.perf_counter() - t1
    marks["done"], cpu["done"] = time.time(), time.process_time()
    stages = dict(predictor.times.seconds)
    print(json.dumps({"marks": marks, "cpu": cpu, "stages": stages, "loop": loop, "output": output}))


def profile(name: str, spec: dict) -> dict:
    launch = time.time()
    l0 = load()
    cmd = [sys.executable, __file__, "--profile-child", str(spec["folder"]), *spec["ours"]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    rec = json.loads(out)
    m = rec["marks"]
    stages = dict(rec["stages"])
    parts = {
        "interpreter start": m["entry"] - launch,
        "imports (emocontext.cli)": m["imported"] - m["entry"],
        "model loading": m["loaded"] - m["imported"],
        **stages,
        "output (JSONL)": rec["output"],
        "other (Python between stages)": max(0.0, rec["loop"] - sum(stages.values())),
    }
    c = rec["cpu"]
    cpu = {
        "interpreter start": c["entry"],
        "imports (emocontext.cli)": c["imported"] - c["entry"],
        "model loading": c["loaded"] - c["imported"],
        "files": c["done"] - c["loaded"],
    }
    return {"parts": parts, "total": m["done"] - launch, "cpu": cpu, "load": [l0, load()]}


def importtime(args: list[str]) -> dict:
    """``python -X importtime -m emocontext ARGS``: total import seconds, and each top-level package's own
    import time (the self times of its modules, so that torch imported by emocontext counts as torch)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "emocontext", *args], capture_output=True, text=True
    )
    by_top: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if m:
            top = m.group(2).split(".")[0]
            by_top[top] = by_top.get(top, 0.0) + int(m.group(1)) / 1e6
    return {"total": sum(by_top.values()), "by_package": dict(sorted(by_top.items(), key=lambda kv: -kv[1]))}


# ---- report --------------------------------------------------------------------------------------------------


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], fmt: str = ".1f") -> str:
    return f"{med(xs):{fmt}} ({min(xs):{fmt}}-{max(xs):{fmt}})"


def report(args, pairs: dict, profiles: dict, imports: dict) -> str:
    from _machine import cpu_name

    lines = [
        "# emocontext beside the fer package: whole process, same files",
        "",
        "Issue 22, item 1. Both systems as a user runs them, each in its own process timed by `/usr/bin/time -v` "
        "(start-up included); "
        f"{args.repeat} paired runs, the order alternating within pairs. What each input and command is: the "
        "docstring of `benchmarks/vs_fer.py`.",
        "",
    ]
    if args.note:
        lines += [f"**{args.note}**", ""]
    lines += [
        "| input | system | wall s, median (range) | user s | sys s | peak RSS MiB | files answered |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in pairs.items():
        for who, label in (("ours", "emocontext predict"), ("peer", "fer")):
            r = p["runs"][who]
            lines.append(
                f"| {name} ({p['files']} files) | {label} | {spread([x['wall'] for x in r])} | "
                f"{spread([x['user'] for x in r])} | {spread([x['sys'] for x in r], '.2f')} | "
                f"{spread([x['rss_mib'] for x in r], '.0f')} | {p['ok'][who]}/{p['files']} |"
            )
    lines += [
        "",
        "## Ratios, emocontext / fer, per pair (the bars of issue 22: wall <= 0.5, peak RSS <= 1.0)",
        "",
        "| input | wall ratio per pair | median wall ratio | bar | CPU (user + sys) ratio, median "
        "| peak RSS ratio, median | bar | load before / after, per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, p in pairs.items():
        walls, cpu, rss = p["ratios"]["wall"], p["ratios"]["cpu"], p["ratios"]["rss"]
        pairs_ = zip(p["runs"]["ours"], p["runs"]["peer"], strict=True)
        loads = ", ".join(f"{x['load'][0]:.1f}/{x['load'][1]:.1f}" for pair in pairs_ for x in pair)
        lines.append(
            f"| {name} | {', '.join(f'{w:.2f}' for w in walls)} | **{med(walls):.2f}** | "
            f"{'pass' if med(walls) <= 0.5 else 'FAIL'} | {med(cpu):.2f} | **{med(rss):.2f}** | "
            f"{'pass' if med(rss) <= 1.0 else 'FAIL'} | {loads} |"
        )
    lines += [
        "",
        "The CPU ratio (user + system seconds of the process) moves less with the load of other work than the wall "
        "ratio does: on a busy machine it is the better guide to which system does less work.",
        "",
        "## Where our time goes (one file at a time, one thread for the networks, in one fresh process)",
        "",
    ]
    for name, pr in profiles.items():
        total = pr["total"]
        lines += [
            f"**{name}** (`predict {' '.join([str(INPUTS[name]['folder']), *INPUTS[name]['ours']])}`, sequential): "
            f"{total:.1f} s in all, load {pr['load'][0]:.1f} / {pr['load'][1]:.1f}",
            "",
            "| part | wall s | share |",
            "|---|---|---|",
        ]
        for k, v in sorted(pr["parts"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| {k} | {v:.2f} | {v / total:.1%} |")
        c = pr["cpu"]
        lines += [
            "",
            f"CPU seconds of the process (less sensitive to other load): interpreter start "
            f"{c['interpreter start']:.2f}, "
            f"imports {c['imports (emocontext.cli)']:.2f}, model loading {c['model loading']:.2f}, the files and "
            f"output {c['files']:.2f}.",
            "",
        ]
    lines += [
        "decode is the time spent waiting for the decoder thread (decoding overlaps the other stages); crop is the "
        "face crop, aligned, and its resize. This is what each of `predict`'s workers does (2 files at once on 2 "
        "cores, one thread each for the networks), so `predict`'s wall time is about half this sum on an idle "
        "machine.",
        "",
        "## Start-up: `python -X importtime`",
        "",
        "| command | import seconds | the costliest packages (own import seconds of their modules) |",
        "|---|---|---|",
    ]
    for cmd, imp in imports.items():
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(imp["by_package"].items())[:8])
        lines.append(f"| `{cmd}` | {imp['total']:.2f} | {top} |")
    lines += [
        "",
        "Commands:",
        "",
        *[f"- {name}: `{p['commands']['ours']}`; peer: `{p['commands']['peer']}`" for name, p in pairs.items()],
        "",
        "`" + shlex.join(["python", "benchmarks/vs_fer.py", *sys.argv[1:]]) + "`",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores; Python {sys.version.split()[0]}; peer: {args.peer_versions}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--profile-child":
        return profile_child(Path(sys.argv[2]), sys.argv[3:])
    from _results import save

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", default="videos,ckplus", help="videos, ckplus (comma-separated)")
    ap.add_argument("--repeat", type=int, default=3, help="paired runs of each input (>= 3 for the bars)")
    ap.add_argument("--parts", default="pairs,stages,imports", help="pairs, stages, imports (comma-separated)")
    ap.add_argument("--peer-python", type=Path, default=PEER_PYTHON, help="the peer venv's interpreter")
    ap.add_argument("--note", default="", help="a sentence for the results file (e.g. the machine's load)")
    ap.add_argument("--out", type=Path, help="write the markdown here and the numbers beside it as .json")
    args = ap.parse_args()
    names = args.inputs.split(",")
    parts = args.parts.split(",")
    if set(names) - set(INPUTS):
        ap.error(f"--inputs {args.inputs}: choose from {', '.join(INPUTS)}")
    if not Path(TIME).exists():
        raise SystemExit(f"{TIME} is missing (GNU time: apt-get install time)")
    if "pairs" in parts and not args.peer_python.exists():
        raise SystemExit(f"no peer interpreter {args.peer_python}: install it as ../shared/peers/README.md says")
    code = (
        "import importlib.metadata as m; print('fer', m.version('fer'), 'tensorflow-cpu', m.version('tensorflow-cpu'))"
    )
    versions = subprocess.run([str(args.peer_python), "-c", code], capture_output=True, text=True)
    args.peer_versions = versions.stdout.strip() or "unknown"
    pairs, profiles, imports = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            if "pairs" in parts:
                pairs[name] = pair_runs(name, INPUTS[name], args.repeat, args.peer_python, Path(tmp))
            if "stages" in parts:
                profiles[name] = profile(name, INPUTS[name])
                print(f"{name} stages: {profiles[name]}", flush=True)
        if "imports" in parts:
            clip = DATA / "videos" / "crema-d" / "1001_DFA_ANG_XX.flv"
            imports["emocontext --help"] = importtime(["--help"])
            imports[f"emocontext predict {clip.name} -q --jsonl OUT"] = importtime(
                ["predict", str(clip), "-q", "--jsonl", str(Path(tmp) / "one.jsonl")]
            )
    text = report(args, pairs, profiles, imports)
    print(text)
    if args.out:
        save(args.out, text, {"pairs": pairs, "stages": profiles, "imports": imports, "argv": sys.argv[1:]})


if __name__ == "__main__":
    main()
