"""``emocontext predict`` as a process: links followed, ``-`` is stdout, every input as given, and a run killed
with kill -9 resumed with ``--resume`` to every input exactly once, with no temporary file left."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, encode_video

pytestmark = pytest.mark.slow

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _faces(folder: Path, n: int) -> list[Path]:
    """``n`` 48x48 grey "faces" (smooth noise) as PNG, for ``--detector none``."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 255, (48, 48), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(folder / f"{i}.png"), img)
        out.append(folder / f"{i}.png")
    return out


def _predict(*args, cwd: Path, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "emocontext", "predict", *map(str, args), "--detector", "none"]
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300, **kw)


def test_links_are_followed_dash_is_stdout_and_inputs_keep_their_names(tmp_path):
    _faces(tmp_path / "faces", 1)
    (tmp_path / "faces" / "b.png").symlink_to("0.png")  # two names of one file: two rows
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    r = _predict("faces", "faces/0.png", "--json", "link.json", "--jsonl", "-", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]  # stdout holds the JSON lines alone
    assert [x["path"] for x in lines] == ["faces/0.png", "faces/b.png"]  # relative, as given, the link kept
    assert lines[0]["label"] == lines[1]["label"] and lines[0]["probabilities"] == lines[1]["probabilities"]
    assert "faces/0.png is named 2 times: analysed once" in r.stderr
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads((tmp_path / "real.json").read_text()) == lines  # the link's target got the JSON list
    assert not (tmp_path / "-").exists()
    r = _predict("faces/0.png", "--json", "-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (record,) = json.loads(r.stdout)  # valid JSON on stdout; the table went to stderr
    assert record["path"] == "faces/0.png" and record["label"] in r.stderr


def test_kill_9_part_way_then_resume_gives_every_input_exactly_once(tmp_path):
    clip = encode_video(tmp_path / "clip.mp4", np.full((40, 48, 48, 3), 128, np.uint8), fps=20)
    folder = tmp_path / "in"
    folder.mkdir()
    names = [f"in/{i:03d}.mp4" for i in range(30)]
    for name in names:
        (tmp_path / name).write_bytes(clip.read_bytes())
    clip.unlink()
    out = tmp_path / "out"
    out.mkdir()
    args = ["in", "--fps", "20", "--workers", "1", "--threads", "1", "-q"]
    args += ["--jsonl", "out/r.jsonl", "--frames-csv", "out/f.csv", "--csv", "out/r.csv"]
    cmd = [sys.executable, "-m", "emocontext", "predict", *args, "--detector", "none"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jsonl = out / "r.jsonl"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    kept = jsonl.read_text().splitlines()
    assert proc.returncode == -signal.SIGKILL and 3 <= len(kept) < len(names), len(kept)  # killed part-way
    assert [json.loads(x)["path"] for x in kept if x.endswith("}")] == names[: len(kept)]  # answers kept
    r = _predict(*args, "--resume", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "inputs answered before" in r.stderr
    rows = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["path"] for x in rows] == names and all(x["status"] == "ok" for x in rows)  # each exactly once
    with open(out / "r.csv", newline="") as f:
        assert [row["path"] for row in csv.DictReader(f)] == names
    with open(out / "f.csv", newline="") as f:
        frame_paths = [row["path"] for row in csv.DictReader(f)]
    assert sorted(set(frame_paths)) == names and len(frame_paths) == sum(x["num_frames"] for x in rows)
    assert sorted(p.name for p in out.iterdir()) == ["f.csv", "r.csv", "r.jsonl"]  # no temporary file


def test_progress_of_one_file_counts_its_frames_and_is_quiet_when_piped(tmp_path):
    from tests.conftest import encode_video

    frames = np.full((40, 64, 64, 3), 120, np.uint8)
    encode_video(tmp_path / "clip.mp4", frames, fps=10)
    piped = _predict("clip.mp4", "--json", "out.json", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert "frames" not in piped.stderr  # stderr is a pipe: no bar unless asked
    forced = _predict("clip.mp4", "--json", "out.json", "--progress", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "frames" in forced.stderr and "20/20" in forced.stderr.replace(" ", "")  # 4 s at 5 frames/s
