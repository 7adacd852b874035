"""Face proxies, side by side with the fer package: how well the face model reads real, expressive faces.

Issue 20, "What to build" 1. Every emocontext row goes through the public command line
(``python -m emocontext predict INPUTS -q --jsonl OUT --model M --detector D``), one run per input set and
model, start-up included; the peer, the ``fer`` package (``FER(mtcnn=False)``: OpenCV Haar, its mini-Xception
trained on FER2013's own labels), runs on the same files in its own virtual environment
(``../shared/peers/README.md``) through ``benchmarks/_fer_peer.py``. Rows (``--rows``):

- ``ckplus6``: CK+48 peak crops (``ckplus48/``), contempt left out (6 classes), given as the face
  (``--detector none``; the peer with the whole image as its face rectangle and no offsets, see
  ``_fer_peer.py``).
- ``ckplus7``: the same crops with contempt (7 classes; fer has no contempt, so it gets none of them).
- ``fer2013``: FER2013 PrivateTest (``fer2013/test``), original pixels, FER2013's own labels (7 classes).
- ``ferplus``: the same faces, FER+ majority vote (8 classes; ``fer2013/ferplus.csv``; faces whose majority is
  unknown or not-a-face, or without votes, left out; ties go to the first column, as in
  ``scripts/train_face_cnn.py``).
- ``expw``: ExpW test photos (``expw/``), faces found by each system's detector in the whole photo (ours:
  ``--detector``, MTCNN by default; the peer: its Haar detector); each labelled face takes the detection
  that overlaps it most (IoU >= 0.3, one detection per labelled face, greedy by IoU, as
  ``face_detection_recall.py`` counts a face found); a labelled face without one counts wrong.
- ``videos``: the 7 labelled clips (``videos/crema-d``, 6; ``videos/ravdess``, 1), 5 frames/s; the answer is
  the subject's clip emotion (the peer: the mean over frames with a face of its largest face's probabilities).
- ``framing``: FER2013 PrivateTest faces put back into a larger frame (upscaled 4x to 192 px, bicubic, then
  96 px of edge-replicated border on each side: 384x384 PNGs, built once into ``--cache``), found and cropped by
  each system's pipeline (scored as ExpW: the detection over the placed face, IoU >= 0.3), against the same
  192 px faces given directly (``--detector none``). The difference is what the framing costs.

Answers and scores. A row is read over its own label set: the 7 Ekman classes (contempt mapped out of the
8-class face model, as ``emocontext.labels.restrict_probabilities`` does) for ``ckplus6``, ``fer2013``,
``expw``, ``videos`` and ``framing``; all 8 for ``ckplus7`` and ``ferplus`` (the model's own answer). "neutral"
is a possible answer everywhere, and wrong where no face is neutral (CK+). Each row gives n, accuracy with a
95 % interval (Wilson score; a percentile bootstrap over subjects for CK+, whose 3 frames per sequence and
several sequences per subject are not independent, and over photos for ExpW), macro recall (mean recall over
the classes present), recall per class, the share of answers "neutral", inputs with no answer (no face found,
or an error) and the wall seconds of the run (start-up included; rows of one input set share one run). The
framing cost has a paired bootstrap interval over faces. The fer package rounds its probabilities to 2
decimals; ties go to the first class in fer's order (what its ``top_emotion`` does).

The issue's bars are checked at the end (CK+ 6 accuracy >= 0.72, macro recall >= 0.65, "neutral" <= 0.10;
FER2013 >= 0.68; framing cost <= 1 point, on every face and on the faces found; every row at or above the
peer's).

    nice -n 15 python benchmarks/face_proxies.py --model face,context --out benchmarks/face_proxies.md
    python benchmarks/face_proxies.py --rows ckplus6,framing --limit 200            # a quick look
    python benchmarks/face_proxies.py --weights runs/face_v5.pt --model face --peer none  # other face CNN weights

Data: ``$EMOCONTEXT_DATA`` (default ``../shared/data`` beside the repository). The peer's interpreter:
``--peer-python`` (default ``../.peer-venv/bin/python`` beside the repository, or ``$EMOCONTEXT_PEER_PYTHON``).
Built inputs and every run's raw JSONL go to ``--cache`` (default ``../proxy-cache``, outside the repository).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import os
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from _machine import cpu_name
from _results import save

from emocontext.data.datasets import load_dataset
from emocontext.data.manifest import map_labels
from emocontext.labels import EKMAN7, EKMAN8, canonical
from emocontext.outputs import atomic_write_bytes, atomic_write_text
from emocontext.video.faces import box_iou

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMOCONTEXT_DATA", REPO.parent / "shared" / "data"))
PEER_PYTHON = Path(os.environ.get("EMOCONTEXT_PEER_PYTHON", REPO.parent / ".peer-venv" / "bin" / "python"))
PEER_RUNNER = Path(__file__).resolve().parent / "_fer_peer.py"
CACHE = Path(os.environ.get("EMOCONTEXT_PROXY_CACHE", REPO.parent / "proxy-cache"))
IOU = 0.3  # a detection is the labelled face when they overlap this much (face_detection_recall.py)
BOOTSTRAP = 2000
#: the framing test's frame: the 48 px face upscaled by UPSCALE, then BORDER px of edge-replicated border
UPSCALE, BORDER = 4, 96
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


@dataclass(frozen=True)
class Item:
    """One scored face or clip: the file, its truth (canonical name), its bootstrap unit and, where the file
    is a photo the systems search, the labelled face box (x1, y1, x2, y2 pixels)."""

    file: Path
    truth: str
    group: str
    box: tuple[float, float, float, float] | None = None


@dataclass
class InputSet:
    """Files that one run of each system reads; ``mode``: given (the file is the face), detect (a photo to
    search), video. ``target``: what the command line gets (the folder when every file of it is used)."""

    name: str
    mode: str
    files: list[Path]
    target: list[Path]
    rows: dict[str, list[Item]] = field(default_factory=dict)


@dataclass(frozen=True)
class RowSpec:
    title: str
    input_set: str
    labels: tuple[str, ...]  # the classes an answer is read over


ROWS = {
    "ckplus6": RowSpec("CK+ peak crops, 6 classes (contempt left out)", "ckplus", EKMAN7.names),
    "ckplus7": RowSpec("CK+ peak crops, 7 classes (with contempt)", "ckplus", EKMAN8.names),
    "fer2013": RowSpec("FER2013 PrivateTest, own labels, 7 classes", "fer2013", EKMAN7.names),
    "ferplus": RowSpec("FER+ PrivateTest, majority vote, 8 classes", "fer2013", EKMAN8.names),
    "expw": RowSpec("ExpW test, faces found in the whole photo, 7 classes", "expw", EKMAN7.names),
    "videos": RowSpec("CREMA-D and RAVDESS clips, 7 classes", "videos", EKMAN7.names),
    "framing_given": RowSpec("Framing test: FER2013 PrivateTest faces given (192 px)", "framed_given", EKMAN7.names),
    "framing_found": RowSpec("Framing test: the same faces found in a 384 px frame", "framed", EKMAN7.names),
}
ROW_GROUPS = {"framing": ("framing_given", "framing_found")}
ROW_NAMES = ("ckplus6", "ckplus7", "fer2013", "ferplus", "expw", "videos", "framing")


def sample(files: list[Path], limit: int | None, seed: str) -> list[Path]:
    """All of ``files`` (sorted), or ``limit`` of them drawn with a fixed seed (the same for every system)."""
    files = sorted(files)
    if limit is None or limit >= len(files):
        return files
    return sorted(random.Random(seed).sample(files, limit))


def folder_or_files(folder: Path, files: list[Path], suffixes: set[str]) -> list[Path]:
    everything = {f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in suffixes}
    return [folder] if everything == set(files) else files


def ckplus_set(limit: int | None) -> InputSet:
    root = DATA / "ckplus48"
    files = sample(list(root.glob("*/*.png")), limit, "ckplus")
    items = [Item(f, canonical(f.parent.name), f.name.split("_")[0]) for f in files]
    return InputSet(
        "ckplus",
        "given",
        files,
        folder_or_files(root, files, {".png"}),
        {"ckplus6": [i for i in items if i.truth != "contempt"], "ckplus7": items},
    )


def ferplus_majority() -> dict[str, str]:
    """FER+ majority label of each PrivateTest face (path relative to ``fer2013/``), faces whose majority is
    unknown / not-a-face, or that have no votes, left out; ties go to the first column."""
    out = {}
    with open(DATA / "fer2013" / "ferplus.csv", newline="") as f:
        for r in csv.DictReader(f):
            if not r["path"].startswith("test/") or not r["neutral"]:
                continue
            votes = [float(r[c]) for c in (*FERPLUS_COLUMNS, "unknown", "NF")]
            top = int(np.argmax(votes))
            if sum(votes) > 0 and top < len(FERPLUS_COLUMNS):
                out[r["path"]] = canonical(FERPLUS_COLUMNS[top])
    return out


def fer2013_files(limit: int | None) -> list[Path]:
    return sample(list((DATA / "fer2013" / "test").glob("*/*.jpg")), limit, "fer2013")


def fer2013_set(limit: int | None) -> InputSet:
    root = DATA / "fer2013" / "test"
    files = fer2013_files(limit)
    majority = ferplus_majority()
    own = [Item(f, canonical(f.parent.name), str(f)) for f in files]
    plus = [Item(f, majority[k], str(f)) for f in files if (k := f.relative_to(root.parent).as_posix()) in majority]
    return InputSet(
        "fer2013", "given", files, folder_or_files(root, files, {".jpg"}), {"fer2013": own, "ferplus": plus}
    )


def expw_set(limit: int | None) -> InputSet:
    root = DATA / "expw"
    with open(root / "splits.csv", newline="") as f:
        test = {r["image"] for r in csv.DictReader(f) if r["split"] == "test"}
    with open(root / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["image"] in test]
    files = sample([root / "images" / name for name in test], limit, "expw")
    chosen = {f.name for f in files}
    rows.sort(key=lambda r: (r["image"], int(r["face_id"])))
    items = [
        Item(
            root / "images" / r["image"],
            canonical(r["label"]),
            r["image"],
            tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")),
        )
        for r in rows
        if r["image"] in chosen
    ]
    return InputSet("expw", "detect", files, files, {"expw": items})


def videos_set() -> InputSet:
    root = DATA / "videos"
    entries = []
    for name, folder in (("crema_d", "crema-d"), ("ravdess", "ravdess")):
        entries += map_labels(load_dataset(name, root / folder), EKMAN7).entries
    items = [Item(Path(e.path), e.label, e.path) for e in sorted(entries, key=lambda e: e.path)]
    return InputSet("videos", "video", [i.file for i in items], [i.file for i in items], {"videos": items})


def build_framing(cache: Path, limit: int | None) -> tuple[InputSet, InputSet]:
    """The framing test's inputs, built once into ``cache/framing`` (deterministic: the same bytes every time):
    ``faces/<class>/<name>.png`` the 48 px face upscaled 4x (bicubic), ``framed/<class>/<name>.png`` that face
    with 96 px of edge-replicated border on each side (384x384), the face at (96, 96)-(288, 288)."""
    root = cache / "framing"
    recipe = json.dumps({"upscale": UPSCALE, "border": BORDER, "interpolation": "INTER_CUBIC", "pad": "REPLICATE"})
    if (root / "RECIPE.json").exists() and (root / "RECIPE.json").read_text() != recipe:
        raise SystemExit(f"{root} was built with another recipe: remove it to rebuild")
    src = fer2013_files(limit)
    faces, framed = [], []
    for f in src:
        rel = Path(f.parent.name) / (f.stem + ".png")
        face_path, framed_path = root / "faces" / rel, root / "framed" / rel
        if not framed_path.exists():
            grey = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise SystemExit(f"{f}: OpenCV cannot read this image")
            big = cv2.resize(grey, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
            frame = cv2.copyMakeBorder(big, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_REPLICATE)
            face_path.parent.mkdir(parents=True, exist_ok=True)
            framed_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(face_path, cv2.imencode(".png", big)[1].tobytes())
            atomic_write_bytes(framed_path, cv2.imencode(".png", frame)[1].tobytes())
        faces.append((face_path, canonical(f.parent.name)))
        framed.append((framed_path, canonical(f.parent.name)))
    atomic_write_text(root / "RECIPE.json", recipe)
    side = 48 * UPSCALE
    placed = (BORDER, BORDER, BORDER + side, BORDER + side)
    given = InputSet(
        "framed_given",
        "given",
        [p for p, _ in faces],
        folder_or_files(root / "faces", [p for p, _ in faces], {".png"}),
        {"framing_given": [Item(p, t, str(p)) for p, t in faces]},
    )
    found = InputSet(
        "framed",
        "detect",
        [p for p, _ in framed],
        folder_or_files(root / "framed", [p for p, _ in framed], {".png"}),
        {"framing_found": [Item(p, t, str(p), placed) for p, t in framed]},
    )
    return given, found


# ---- running the systems -------------------------------------------------------------------------------------


@dataclass
class Run:
    """One system on one input set: per file, the probabilities (given, video) or the faces (detect)."""

    seconds: float
    load: tuple[float, float]
    command: str
    answers: dict[str, object]
    errors: dict[str, str]
    failure: str | None = None


def run_ours(s: InputSet, model: str, detector: str, weights: Path | None, out: Path) -> Run:
    det = "none" if s.mode == "given" else detector
    cmd = [sys.executable, "-m", "emocontext", "predict", *map(str, s.target), "-q", "--jsonl", str(out)]
    cmd += ["--model", model, "--detector", det]
    env = dict(os.environ, **({"EMOCONTEXT_FACE_WEIGHTS": str(weights)} if weights else {}))
    shown = f"python -m emocontext predict {s.name.upper()} -q --jsonl OUT --model {model} --detector {det}"
    proc, secs, loads = _timed(cmd, env, out)
    if not out.exists():  # the command failed before writing anything: say why
        return Run(secs, loads, shown, {}, {}, failure=_why(proc))
    answers, errors = {}, {}
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        if rec["status"] != "ok":
            errors[rec["path"]] = rec["error"]
        elif s.mode == "detect":
            faces = []
            for person in rec["persons"]:
                frame = next((f for f in person["frames"] if f["face_present"] and f["box"]), None)
                if frame is not None:
                    faces.append((frame["box"], person["probabilities"]))
            answers[rec["path"]] = faces
        else:
            answers[rec["path"]] = rec["probabilities"] if rec["label"] is not None else None
    return Run(secs, loads, shown, answers, errors)


def _timed(cmd: list[str], env: dict, out: Path) -> tuple[subprocess.CompletedProcess, float, tuple[float, float]]:
    """Run ``cmd`` (writing ``out``, removed first): the process, its wall seconds, the 1-minute load before/after."""
    out.unlink(missing_ok=True)
    l0, t0 = os.getloadavg()[0], time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, time.perf_counter() - t0, (l0, os.getloadavg()[0])


def _why(proc: subprocess.CompletedProcess) -> str:
    """The last line a failed command printed, or its exit status."""
    return (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]


def run_peer(s: InputSet, peer_python: Path, keras: bool, out: Path) -> Run:
    listing = out.with_suffix(".files")
    atomic_write_text(listing, "".join(f"{f}\n" for f in s.files))
    cmd = [str(peer_python), str(PEER_RUNNER), s.mode, str(out), "--files-from", str(listing), *(["--keras"] * keras)]
    shown = f"_fer_peer.py {s.mode} OUT --files-from {s.name.upper()}" + (" --keras" if keras else "")
    proc, secs, loads = _timed(cmd, dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), out)
    if proc.returncode or not out.exists():
        return Run(secs, loads, shown, {}, {}, failure=_why(proc))
    answers, errors = {}, {}
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        if rec["status"] != "ok":
            errors[rec["path"]] = rec["error"]
        elif s.mode == "video":
            answers[rec["path"]] = rec["probabilities"] if rec["label"] is not None else None
        elif s.mode == "given":
            answers[rec["path"]] = rec["faces"][0]["probabilities"] if rec["faces"] else None
        else:
            answers[rec["path"]] = [(f["box"], f["probabilities"]) for f in rec["faces"]]
    return Run(secs, loads, shown, answers, errors)


# ---- scoring -------------------------------------------------------------------------------------------------


def answer(probs: dict | None, labels: tuple[str, ...]) -> str | None:
    """The class of highest probability among ``labels`` (the others mapped out); ties: the first in the
    system's own order."""
    if not probs:
        return None
    names = [k for k in probs if k in labels]
    return max(names, key=lambda k: probs[k]) if names else None


def match(items: list[Item], faces: list) -> list[dict | None]:
    """For each labelled face, the probabilities of the detection over it (IoU >= 0.3; each detection serves
    one labelled face, greedily by IoU), or None."""
    out: list[dict | None] = [None] * len(items)
    if not faces:
        return out
    iou = box_iou(np.array([i.box for i in items]), np.array([b for b, _ in faces]))
    while iou.size and iou.max() >= IOU:
        i, j = np.unravel_index(int(iou.argmax()), iou.shape)
        out[i] = faces[j][1]
        iou[i, :] = -1
        iou[:, j] = -1
    return out


def predictions(items: list[Item], run: Run, mode: str, labels: tuple[str, ...]) -> list[str | None]:
    if mode != "detect":
        return [answer(run.answers.get(str(i.file)), labels) for i in items]
    by_file: dict[Path, list[int]] = {}
    for k, i in enumerate(items):
        by_file.setdefault(i.file, []).append(k)
    out: list[str | None] = [None] * len(items)
    for f, ks in by_file.items():
        for k, probs in zip(ks, match([items[k] for k in ks], run.answers.get(str(f)) or []), strict=True):
            out[k] = answer(probs, labels)
    return out


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, float((centre - half) / (1 + z * z / n))), min(1.0, float((centre + half) / (1 + z * z / n))))


def cluster_bootstrap(correct: np.ndarray, groups: list[str], seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the accuracy, resampling whole groups (subjects, photos)."""
    names = sorted(set(groups))
    index = {g: k for k, g in enumerate(names)}
    g = np.array([index[x] for x in groups])
    hits, counts = np.bincount(g, correct, len(names)), np.bincount(g, minlength=len(names))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), (BOOTSTRAP, len(names)))
    acc = hits[draws].sum(1) / counts[draws].sum(1)
    return (float(np.percentile(acc, 2.5)), float(np.percentile(acc, 97.5)))


def score(items: list[Item], answers: list[str | None], run: Run) -> dict:
    truth = [i.truth for i in items]
    correct = np.array([a == t for a, t in zip(answers, truth, strict=True)], dtype=float)
    n, k = len(items), int(correct.sum())
    classes = [c for c in EKMAN8.names if c in set(truth)]
    recall = {c: float(np.mean([a == c for a, t in zip(answers, truth, strict=True) if t == c])) for c in classes}
    grouped = len({i.group for i in items}) < n
    ci = cluster_bootstrap(correct, [i.group for i in items]) if grouped else wilson(k, n)
    confusion = {t: {} for t in classes}
    for a, t in zip(answers, truth, strict=True):
        key = a or "(none)"
        confusion[t][key] = confusion[t].get(key, 0) + 1
    return {
        "n": n,
        "correct": k,
        "accuracy": k / n if n else float("nan"),
        "ci95": list(ci),
        "ci_method": "bootstrap over " + ("subjects" if items and items[0].box is None else "photos")
        if grouped
        else "Wilson",
        "macro_recall": float(np.mean(list(recall.values()))) if recall else float("nan"),
        "recall": recall,
        "neutral_share": sum(a == "neutral" for a in answers) / n if n else float("nan"),
        "no_answer": sum(a is None for a in answers),
        "errors": len(run.errors),
        "seconds": run.seconds,
        "load": list(run.load),
        "confusion": confusion,
        "correct_by_item": correct.astype(bool).tolist(),
        "answered_by_item": [a is not None for a in answers],
    }


def paired_cost(given: dict, found: dict, seed: int = 0) -> dict:
    """What the framing costs: accuracy given minus accuracy found and cropped, on the same faces, with 95 %
    paired bootstrap intervals; ``all``: every face (a face the detector misses counts wrong), ``crops``: only
    the faces the pipeline found (what its crops cost), with their accuracies both ways."""
    g, f = np.array(given["correct_by_item"], float), np.array(found["correct_by_item"], float)
    hit = np.array(found["answered_by_item"], bool)
    rng = np.random.default_rng(seed)

    def diff(d: np.ndarray) -> dict:
        draws = d[rng.integers(0, len(d), (BOOTSTRAP, len(d)))].mean(1)
        return {"cost": float(d.mean()), "ci95": [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]}

    crops = diff(g[hit] - f[hit]) | {"n": int(hit.sum()), "given": float(g[hit].mean()), "found": float(f[hit].mean())}
    return {"all": diff(g - f), "crops": crops}


# ---- report --------------------------------------------------------------------------------------------------


def pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def peer_versions(peer_python: Path) -> str:
    code = "import importlib.metadata as m; print(m.version('fer'), m.version('tensorflow-cpu'))"
    try:
        out = subprocess.run([str(peer_python), "-c", code], capture_output=True, text=True, check=True).stdout.split()
        return f"fer {out[0]}, tensorflow-cpu {out[1]}"
    except (subprocess.CalledProcessError, OSError, IndexError):
        return "fer (version unknown)"


def bars(results: dict, systems: list[str], peers: list[str], costs: dict) -> list[str]:
    lines = ["## The issue's bars (issue 20)", "", "| bar | " + " | ".join(f"`{s}`" for s in systems) + " |"]
    lines.append("|---|" + "---|" * len(systems))

    def cell(s: str, row: str, key: str, test) -> str:
        r = results.get(s, {}).get(row)
        if r is None:
            return "not run"
        v = r[key]
        return f"{'pass' if test(v) else 'FAIL'} ({pct(v)})"

    checks = [
        ("CK+ 6 accuracy >= 72 %", "ckplus6", "accuracy", lambda v: v >= 0.72),
        ("CK+ 6 macro recall >= 65 %", "ckplus6", "macro_recall", lambda v: v >= 0.65),
        ('CK+ 6 answered "neutral" <= 10 %', "ckplus6", "neutral_share", lambda v: v <= 0.10),
        ("FER2013 PrivateTest own labels >= 68 %", "fer2013", "accuracy", lambda v: v >= 0.68),
    ]
    for title, row, key, test in checks:
        lines.append(f"| {title} | " + " | ".join(cell(s, row, key, test) for s in systems) + " |")
    for key, title in (("all", "every face, a miss counts wrong"), ("crops", "the faces found: the crops alone")):
        cells = [
            "not run"
            if s not in costs
            else f"{'pass' if costs[s][key]['cost'] <= 0.01 else 'FAIL'} ({pct(costs[s][key]['cost'])})"
            for s in systems
        ]
        lines.append(f"| framing costs <= 1 point ({title}) | " + " | ".join(cells) + " |")
    for p in peers:
        cells = []
        for s in systems:
            below = [
                row
                for row, r in results.get(s, {}).items()
                if row in results.get(p, {}) and r["accuracy"] < results[p][row]["accuracy"]
            ]
            cells.append("not run" if not results.get(s) else ("pass" if not below else "FAIL: " + ", ".join(below)))
        lines.append(f"| every row's accuracy >= `{p}`'s | " + " | ".join(cells) + " |")
    return lines + [""]


def report(args, sets: dict, results: dict, runs: dict, costs: dict, systems: list[str], peers: list[str]) -> str:
    weights = args.weights or (REPO / "src" / "emocontext" / "weights" / "face_cnn_fer2013.pt")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    lines = [
        "# Face proxies: emocontext beside the fer package",
        "",
        f"{datetime.date.today()}, commit {commit.stdout.strip() or 'unknown'}; face CNN weights `{weights.name}` "
        f"(SHA-256 {sha256(weights)[:16]}...); peer: {peer_versions(args.peer_python) if peers else 'not run'}. "
        "What each row is and how it is scored: the docstring of `benchmarks/face_proxies.py` (in short: every "
        "emocontext row through `python -m emocontext predict`, the fer package in its own virtual environment on "
        "the same files; answers over the row's classes, contempt mapped out of 7-class rows).",
        "",
    ]
    if args.limit:
        lines += [f"**A quick run**: at most {args.limit} files of each input set (drawn with a fixed seed).", ""]
    lines += [
        "| row | system | n | accuracy % [95 % CI] | macro recall % | answered neutral % | no answer | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in args.rows:
        for s in systems + peers:
            r = results.get(s, {}).get(row)
            if r is None:
                why = runs.get(s, {}).get(ROWS[row].input_set)
                if why is not None and why.failure:
                    lines.append(f"| {ROWS[row].title} | `{s}` | | failed: {why.failure} | | | | |")
                continue
            lines.append(
                f"| {ROWS[row].title} | `{s}` | {r['n']} | **{pct(r['accuracy'])}** [{pct(r['ci95'][0])}, "
                f"{pct(r['ci95'][1])}] | {pct(r['macro_recall'])} | {pct(r['neutral_share'])} | {r['no_answer']} "
                f"| {r['seconds']:.0f} |"
            )
    lines += [
        "",
        "Seconds: the wall time of the run of that input set (start-up included; CK+ 6 and 7 share one run, "
        "FER2013 and FER+ another), on a shared machine (see the load below). No answer: no face found over the "
        "labelled one, or the file failed; it counts wrong.",
        "",
        "## Recall per class (%)",
        "",
        "| row | system | " + " | ".join(EKMAN8.names) + " |",
        "|---|---|" + "---|" * len(EKMAN8.names),
    ]
    for row in args.rows:
        for s in systems + peers:
            r = results.get(s, {}).get(row)
            if r is not None:
                cells = [pct(r["recall"][c]) if c in r["recall"] else "" for c in EKMAN8.names]
                lines.append(f"| {ROWS[row].title} | `{s}` | " + " | ".join(cells) + " |")
    if costs:
        lines += [
            "",
            "## Framing test",
            "",
            f"FER2013 PrivateTest faces upscaled {UPSCALE}x (bicubic) to {48 * UPSCALE} px; the same faces with "
            f"{BORDER} px of edge-replicated border on each side ({48 * UPSCALE + 2 * BORDER} px square), found "
            "and cropped by each system's own pipeline (ours: `--detector "
            f"{args.detector}`; fer: its Haar detector and 10 px offsets). Cost = accuracy given - accuracy found, "
            "with a paired bootstrap interval over faces: on every face (a face the detector misses counts wrong), "
            "and on the faces it found (what the crops alone cost).",
            "",
            "| system | given % | found and cropped % | cost, points [95 % CI] | faces found | on those: given % "
            "| found % | crop cost, points [95 % CI] |",
            "|---|---|---|---|---|---|---|---|",
        ]

        def points(c: dict) -> str:
            return f"**{100 * c['cost']:+.1f}** [{100 * c['ci95'][0]:+.1f}, {100 * c['ci95'][1]:+.1f}]"

        for s, c in costs.items():
            g, f, crops = results[s]["framing_given"], results[s]["framing_found"], c["crops"]
            lines.append(
                f"| `{s}` | {pct(g['accuracy'])} | {pct(f['accuracy'])} | {points(c['all'])} | {crops['n']}/{f['n']} "
                f"| {pct(crops['given'])} | {pct(crops['found'])} | {points(crops)} |"
            )
    lines += [""] + bars(results, systems, peers, costs)
    lines += [
        "## Runs",
        "",
        "| system | input set | files | command | seconds | load before / after |",
        "|---|---|---|---|---|---|",
    ]
    for s, by_set in runs.items():
        for name, run in by_set.items():
            lines.append(
                f"| `{s}` | {name} | {len(sets[name].files)} | `{run.command}` | {run.seconds:.0f} | "
                f"{run.load[0]:.1f} / {run.load[1]:.1f} |"
            )
    lines += [
        "",
        "Inputs: "
        + "; ".join(
            f"{name.upper()} = `{', '.join(map(str, s.target[:1]))}`"
            + (f" and {len(s.target) - 1} more" if len(s.target) > 1 else "")
            for name, s in sets.items()
        )
        + ".",
        "",
        "Command: `" + " ".join(shlex.quote(a) for a in ["python", "benchmarks/face_proxies.py", *sys.argv[1:]]) + "`",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores; 1-minute load average per run in the table above "
        f"({os.cpu_count()}.0 = every core busy). {args.note}".rstrip(),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="face", help="emocontext models to run, comma-separated: face, context")
    ap.add_argument("--weights", type=Path, help="another face CNN weights file (read via EMOCONTEXT_FACE_WEIGHTS)")
    ap.add_argument("--rows", default=",".join(ROW_NAMES), help="rows, comma-separated: " + ", ".join(ROW_NAMES))
    ap.add_argument("--limit", type=int, help="at most N files of each input set, drawn with a fixed seed")
    ap.add_argument("--detector", default="mtcnn", help="our detector for the rows that search photos and video")
    ap.add_argument(
        "--peer",
        default="tflite",
        help="fer variants, comma-separated: tflite (its default model, int8), keras (its emotion_model.hdf5); "
        "none: emocontext only",
    )
    ap.add_argument("--peer-python", type=Path, default=PEER_PYTHON, help="the peer venv's interpreter")
    ap.add_argument("--cache", type=Path, default=CACHE, help="built inputs and raw outputs (outside the repository)")
    ap.add_argument("--note", default="", help="a sentence for the results file (e.g. the machine's load)")
    ap.add_argument("--out", type=Path, help="write the markdown here and the numbers beside it as .json")
    args = ap.parse_args()
    rows = []
    for r in args.rows.split(","):
        if r not in ROWS and r not in ROW_GROUPS:
            ap.error(f"unknown row {r!r}; choose from {', '.join(ROW_NAMES)}")
        rows += ROW_GROUPS.get(r, (r,))
    args.rows = rows
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    if not DATA.is_dir():
        raise SystemExit(f"no data folder {DATA} (set EMOCONTEXT_DATA)")
    if args.weights and not args.weights.is_file():
        raise SystemExit(f"--weights {args.weights}: no such file")
    variants = [] if args.peer == "none" else args.peer.split(",")
    if set(variants) - {"tflite", "keras"}:
        ap.error(f"--peer {args.peer}: choose tflite, keras, both (tflite,keras) or none")
    peers = [f"fer ({v})" for v in variants]
    if peers and not args.peer_python.exists():
        raise SystemExit(
            f"no peer interpreter {args.peer_python}: install it (../shared/peers/README.md) or --peer none"
        )

    needed = {ROWS[r].input_set for r in rows}
    sets: dict[str, InputSet] = {}
    if "ckplus" in needed:
        sets["ckplus"] = ckplus_set(args.limit)
    if "fer2013" in needed:
        sets["fer2013"] = fer2013_set(args.limit)
    if "expw" in needed:
        sets["expw"] = expw_set(args.limit)
    if "videos" in needed:
        sets["videos"] = videos_set()
    if needed & {"framed", "framed_given"}:
        sets["framed_given"], sets["framed"] = build_framing(args.cache, args.limit)

    tag = "" if args.weights is None else "-" + sha256(args.weights)[:8]
    systems = [f"emocontext {m}{tag}" for m in models]
    raw = args.cache / "runs"
    raw.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Run]] = {}
    results: dict[str, dict[str, dict]] = {}
    for s in systems + peers:
        runs[s], results[s] = {}, {}
        for name, inputs in sets.items():
            out = raw / f"{s.replace(' ', '_').replace('(', '').replace(')', '')}-{name}.jsonl"
            if s in peers:
                run = run_peer(inputs, args.peer_python, "keras" in s, out)
            else:
                run = run_ours(inputs, models[systems.index(s)], args.detector, args.weights, out)
            runs[s][name] = run
            print(
                f"{s} / {name}: {run.seconds:.0f} s" + (f", FAILED: {run.failure}" if run.failure else ""), flush=True
            )
            if run.failure:
                continue
            for row, items in inputs.rows.items():
                if row in rows:
                    spec = ROWS[row]
                    r = score(items, predictions(items, run, inputs.mode, spec.labels), run)
                    results[s][row] = r
                    print(
                        f"  {row}: n {r['n']}, accuracy {pct(r['accuracy'])}, macro recall "
                        f"{pct(r['macro_recall'])}, neutral {pct(r['neutral_share'])}",
                        flush=True,
                    )
    costs = {
        s: paired_cost(results[s]["framing_given"], results[s]["framing_found"])
        for s in systems + peers
        if "framing_given" in results[s] and "framing_found" in results[s]
    }
    text = report(args, sets, results, runs, costs, systems, peers)
    print(text)
    if args.out:
        data = {
            "argv": sys.argv[1:],
            "rows": {r: {"title": ROWS[r].title, "labels": list(ROWS[r].labels)} for r in rows},
            "results": {
                s: {row: {k: v for k, v in r.items() if not k.endswith("_by_item")} for row, r in rs.items()}
                for s, rs in results.items()
            },
            "framing_cost": costs,
            "runs": {
                s: {
                    n: {
                        "seconds": r.seconds,
                        "load": list(r.load),
                        "command": r.command,
                        "errors": r.errors,
                        "failure": r.failure,
                        "files": len(sets[n].files),
                    }
                    for n, r in rs.items()
                }
                for s, rs in runs.items()
            },
            "machine": {"cpu": cpu_name(), "cores": os.cpu_count()},
        }
        save(args.out, text, data)


if __name__ == "__main__":
    main()
