"""Every command and example of README.md, run (issue 24): the README cannot drift from the code.

The commands are read from the README itself: every ``$ `` line of its code blocks, the lines of its
install blocks (those without ``$ `` prompts), and every ```` ```python ```` block. :data:`COMMANDS` says how
each command line is exercised; a README command missing from it (or a row the README no longer has) fails
:func:`test_every_readme_command_is_covered`, so a new command needs a row here.

Most lines run for real: ``python -m emocontext ...`` in a subprocess, in one work folder that holds the
files the README names (``clip.mp4``: the shipped sample clip; ``videos/``, ``faces/``, ``manifest.csv``,
``clips.csv``: small fixtures made from it), in README order (``extract`` makes the ``features/`` that
``train``, ``evaluate`` and ``compare`` read). Lines that cannot run here (network, a server that runs until
stopped, an external cluster, a GPU, the installers) are parsed against the real command line instead, and
their row says why.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA, REPO, data_path, encode_video, numbered_frames

pytestmark = pytest.mark.slow

README = REPO / "README.md"
SRC = REPO / "src"
#: The README's relative path of the real data; replaced by :data:`tests.conftest.DATA` when run.
README_DATA = "../shared/data"

# ------------------------------------------------------------------------------------ reading the README

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.M | re.S)


def readme_blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced code block of the README, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(README.read_text(encoding="utf-8"))]


def normalise(line: str) -> str:
    """A command line in one spelling: its words (a trailing ``# comment`` dropped) quoted as the shell needs,
    ``&&`` and ``|`` left bare, joined by single spaces."""
    operators = ("&&", "|")
    return " ".join(w if w in operators else shlex.quote(w) for w in shlex.split(line, comments=True))


def readme_commands() -> list[str]:
    """Every shell command line of the README, :func:`normalise`\\ d, in order: the ``$ `` lines of its shell
    blocks, and every line of a shell block that has no ``$ `` prompt (the install one-liners)."""
    commands = []
    for lang, text in readme_blocks():
        if lang == "python":
            continue
        lines = [line for line in text.splitlines() if line.strip()]
        prompted = [line[2:] for line in lines if line.startswith("$ ")]
        for line in prompted if prompted else [x for x in lines if not x.lstrip().startswith("#")]:
            commands.append(normalise(line))
    return commands


def readme_python() -> list[str]:
    """The text of every ```` ```python ```` block of the README."""
    return [text for lang, text in readme_blocks() if lang == "python"]


# ------------------------------------------------------------------------------------ the work folder


def _sample_frames() -> np.ndarray:
    """The shipped sample clip's frames, RGB ``(T, 360, 640, 3)`` at 30 fps."""
    import av

    from emocontext.samples import sample_video

    with av.open(str(sample_video())) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _small(frames: np.ndarray, scale: int = 2) -> np.ndarray:
    import cv2

    h, w = frames.shape[1] // scale, frames.shape[2] // scale
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


#: The labelled clips of ``manifest.csv`` and ``clips.csv``: (file, label, split).
CLIPS = [
    (f"clips/c{i}.mp4", ("happy", "sad")[i % 2], ("train", "train", "train", "train", "val", "val", "test", "test")[i])
    for i in range(8)
]
#: The rows of ``clips.csv`` (the pixel model's manifest): two train clips, one val, one test.
PIXEL_CLIPS = (0, 1, 4, 7)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The folder the README's commands run in, with the files they name:

    - ``clip.mp4``: the shipped sample clip (2.4 s, one face);
    - ``videos/``: two short clips (the sample's first 1.2 s at 10 fps and half size; a clip without a face);
    - ``faces/``: three 48x48 grey face crops (PNG) of the sample;
    - ``manifest.csv``: eight labelled 1-second clips of the sample's face (``clips/``), happy and sad, split
      4 train / 2 val / 2 test; ``clips.csv`` (for the pixel model, which decodes and learns from the frames:
      slower) four of them, 2 train / 1 val / 1 test;
    - ``keys.txt``: one API key (for the ``serve --api-key-file`` line).
    """
    import cv2

    from emocontext.samples import sample_video

    w = tmp_path_factory.mktemp("readme")
    shutil.copy(sample_video(), w / "clip.mp4")
    frames = _sample_frames()
    small = _small(frames[::3])  # 10 fps, 320x180
    (w / "videos").mkdir()
    encode_video(w / "videos" / "face.mp4", small[:12], fps=10)
    encode_video(w / "videos" / "noface.mp4", numbered_frames(5), fps=5)
    (w / "faces").mkdir()
    for n, i in enumerate((0, 30, 60)):
        crop = cv2.cvtColor(frames[i, 70:320, 168:418], cv2.COLOR_RGB2GRAY)
        cv2.imwrite(str(w / "faces" / f"face{n}.png"), cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA))
    (w / "clips").mkdir()
    rows = []
    for i, (name, label, split) in enumerate(CLIPS):
        start = 3 * (i % 4)  # 0, 0.3, 0.6, 0.9 s
        clip = small[start : start + 10]
        encode_video(w / name, clip[:, :, ::-1] if i >= 4 else clip, fps=10)  # the second four mirrored
        rows.append({"path": name, "label": label, "split": split})
    for manifest, chosen in (("manifest.csv", rows), ("clips.csv", [rows[i] for i in PIXEL_CLIPS])):
        with open(w / manifest, "w", newline="") as f:
            writer = csv.DictWriter(f, ["path", "label", "split"])
            writer.writeheader()
            writer.writerows(chosen)
    (w / "keys.txt").write_text("readme-test-key-0123456789\n")
    return w


#: The ``paths`` of the README's Python example: files of the work folder.
PATHS = ["clip.mp4", "videos/face.mp4", "videos/noface.mp4"]


# ------------------------------------------------------------------------------------ running and parsing


def emocontext(args: list[str], cwd: Path, *, data: Path = DATA, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m emocontext ARGS`` in ``cwd`` with this checkout's ``src`` first on the path; the README's
    ``../shared/data`` is ``data``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "120"
    args = [a.replace(README_DATA, str(data), 1) if a.startswith(README_DATA) else a for a in args]
    return subprocess.run(
        [sys.executable, "-m", "emocontext", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def parse_cli(args: list[str]):
    """The click context of ``emocontext ARGS``, parsed and checked by the real command line (types, ranges,
    choices, required options), without running the command. Raises click's usage errors."""
    import typer

    from emocontext.cli import app

    command, name, ctx = typer.main.get_command(app), "emocontext", None
    while hasattr(command, "get_command"):  # a group (typer's own click); the README gives no group options
        i = next(i for i, a in enumerate(args) if not a.startswith("-"))
        ctx = command.make_context(name, args[: i + 1], parent=ctx, resilient_parsing=False)
        sub = command.get_command(ctx, args[i])
        assert sub is not None, f"emocontext has no command {' '.join(args[: i + 1])!r}"
        command, name, args = sub, args[i], args[i + 1 :]
    return command.make_context(name, list(args), parent=ctx, resilient_parsing=False)


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def check_pip(words: list[str]) -> None:
    """``pip install torch==X`` / ``pip install -e .[extra]``: the pin satisfies the package's torch range, and
    the extras exist."""
    from packaging.requirements import Requirement

    assert words[:2] == ["pip", "install"], words
    project = _pyproject()["project"]
    rest = iter(words[2:])
    for word in rest:
        if word == "-e":
            continue
        if word == "--index-url":  # torch's CPU build, from PyTorch's own index (a stock pip gets CUDA from PyPI)
            assert next(rest) == "https://download.pytorch.org/whl/cpu"
            continue
        if word.startswith("."):
            extras = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", word)
            assert extras, word
            for extra in filter(None, (extras.group(1) or "").split(",")):
                assert extra in project["optional-dependencies"], f"no extra {extra!r} in pyproject.toml"
            continue
        pin = Requirement(word)
        (spec,) = pin.specifier
        ours = next(Requirement(r) for r in project["dependencies"] if Requirement(r).name == pin.name)
        assert ours.specifier.contains(spec.version), f"{word} is outside the package's {ours}"


def check_curl(words: list[str]) -> None:
    """A ``curl -F ...`` upload: a ``file`` field; every other field a prediction option the service accepts,
    with a value it accepts; an ``Authorization: Bearer`` header if any; an upload endpoint of the app whose
    OpenAPI form has these fields."""
    from urllib.parse import urlparse

    pytest.importorskip("fastapi", reason="the service needs the serve extra (fastapi)")
    from emocontext.options import PredictOptions
    from emocontext.serve.app import create_app
    from emocontext.serve.options import FIELDS, read_options

    assert words[0] == "curl"
    fields, headers, urls = {}, {}, []
    it = iter(words[1:])
    for w in it:
        if w == "-F":
            key, _, value = next(it).partition("=")
            fields[key] = value
        elif w == "-H":
            key, _, value = next(it).partition(":")
            headers[key.strip()] = value.strip()
        else:
            assert w.startswith("http"), f"curl option {w!r} not understood by this test"
            urls.append(w)
    assert fields.get("file", "").startswith("@"), "the upload's field is `file`"
    options = {k: v for k, v in fields.items() if k != "file"}
    assert set(options) <= set(FIELDS), f"fields the service does not take: {set(options) - set(FIELDS)}"
    PredictOptions.from_mapping(options)  # the values are valid options
    read_options(options, base=PredictOptions())  # and the service reads them
    for key, value in headers.items():
        assert key == "Authorization" and value.split()[0] == "Bearer", (key, value)
    (url,) = urls
    upload = create_app().openapi()["paths"][urlparse(url).path]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert set(fields) <= set(form), f"fields not in the endpoint's form: {set(fields) - set(form)}"


# ------------------------------------------------------------------------------------ what each line gets


@dataclasses.dataclass(frozen=True)
class Run:
    """Run the line's ``emocontext`` command in the work folder; it must exit with ``status``. ``before(work)``
    prepares, ``check(work, result)`` looks at what it made. A ``| jq .`` pipe: stdout must be JSON instead.

    ``extra`` options are added where the line as written is too slow for the suite (``why`` says how slow).
    ``realdata``: the line reads the README's ``../shared/data``; skipped without it; ``data(work)`` gives the
    folder that stands for it (a part of the real data) where all of it is too slow (``why``). ``needs``: a
    module of an extra (skipped without it).
    """

    check: Callable | None = None
    before: Callable | None = None
    status: int = 0
    extra: tuple[str, ...] = ()
    realdata: bool = False
    data: Callable | None = None
    why: str = ""
    needs: str | None = None


@dataclasses.dataclass(frozen=True)
class ParseOnly:
    """The line cannot run in a test (``why``); its ``emocontext`` command is parsed by the real command line
    (``check(ctx)`` looks at the parsed values), other words (pip, curl) are checked as ``parts`` says."""

    why: str
    check: Callable | None = None


@dataclasses.dataclass(frozen=True)
class Install:
    """An install one-liner (``a && b && ...``): pip pins and extras checked, the venv steps and the test suite
    not run (``why``), ``emocontext`` commands run."""

    why: str


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _store(path: Path):
    from emocontext.features.store import FeatureStore

    return FeatureStore(path)


def _check_clip_json(w, r):
    (d,) = json.loads((w / "clip.json").read_text())
    assert d["status"] == "ok" and d["label"] in d["probabilities"] and d["persons"], d
    assert "clip.mp4" in r.stdout  # the table


def _check_stdout_json(w, r):
    (d,) = json.loads(r.stdout)  # `| jq .`: the whole stdout is JSON
    assert d["path"] == "clip.mp4" and d["label"] is not None
    assert "clip.mp4" in r.stderr  # the table went to stderr


def _check_report(w, r):
    from emocontext.video.decode import probe

    assert "<html" in (w / "clip.html").read_text(encoding="utf-8").lower()
    video = probe(w / "clip_annotated.mp4")  # decodable, with the clip's size and its audio
    assert (video.width, video.height) == (640, 360) and video.has_audio


def _check_videos_jsonl_csv(w, r):
    lines = _jsonl(w / "out.jsonl")
    assert sorted(x["path"] for x in lines) == ["videos/face.mp4", "videos/noface.mp4"]
    assert all(x["status"] == "ok" for x in lines)
    assert {x["path"]: x["no_face"] for x in lines} == {"videos/face.mp4": False, "videos/noface.mp4": True}
    assert sorted(row["path"] for row in _csv(w / "out.csv")) == ["videos/face.mp4", "videos/noface.mp4"]


def _check_frames_csv(w, r):
    rows = _csv(w / "frames.csv")
    assert {row["path"] for row in rows} == {"videos/face.mp4", "videos/noface.mp4"}


def _crash_after_first(w):
    """As if the run had been killed after its first answer: out.jsonl keeps its first line only."""
    first = (w / "out.jsonl").read_text().splitlines()[0]
    (w / "out.jsonl").write_text(first + "\n")


def _check_resumed(w, r):
    lines = _jsonl(w / "out.jsonl")
    assert sorted(x["path"] for x in lines) == ["videos/face.mp4", "videos/noface.mp4"]  # each input once


def _check_faces(w, r):
    lines = _jsonl(w / "out.jsonl")
    assert sorted(x["path"] for x in lines) == [f"faces/face{i}.png" for i in range(3)]
    assert all(x["status"] == "ok" and x["label"] is not None for x in lines)  # the image is the face


def _check_version(w, r):
    from emocontext import __version__

    assert r.stdout.split() == ["emocontext", __version__]


def _check_weights_list(w, r):
    from emocontext.weights import list_weights

    assert all(name in r.stdout for name in list_weights())


def _check_yunet(ctx):
    from emocontext.weights import get_weights

    weights = get_weights(ctx.params["name"])  # what the command would fetch: a file with a URL and its SHA-256
    assert weights.url and weights.sha256


def _check_features(w, r):
    assert len(_store(w / "features")) == len(CLIPS)


def _check_features_av(w, r):
    store = _store(w / "features_av")
    assert len(store) == len(CLIPS) and store.has_audio
    assert store.signature["streams"]["fps"] == 25.0


def _add_missing_clip(w):
    """A manifest row whose file is missing: --keep-going extracts the rest and lists it in failed.csv."""
    text = (w / "manifest.csv").read_text()
    (w / "manifest.csv.orig").write_text(text)
    (w / "manifest.csv").write_text(text + "clips/missing.mp4,happy,train\n")


def _check_keep_going(w, r):
    (w / "manifest.csv.orig").replace(w / "manifest.csv")
    (row,) = _csv(w / "features" / "failed.csv")
    assert "missing.mp4" in json.dumps(row)
    assert len(_store(w / "features")) == len(CLIPS)


def _ckplus_part(w: Path) -> Path:
    """A CK+48 folder with the first sequence of each class of the real one (7 sequences of 3 images)."""
    root = w / "data_part"
    for folder in sorted((DATA / "ckplus48").iterdir()):
        files = sorted(folder.glob("*.png"))
        if not files:
            continue
        (root / "ckplus48" / folder.name).mkdir(parents=True)
        sequence = files[0].name.rsplit("_", 1)[0]  # S010_004 of S010_004_00000017.png
        for f in files:
            if f.name.startswith(sequence + "_"):
                shutil.copy(f, root / "ckplus48" / folder.name / f.name)
    return root


def _drop_last_clip(w):
    """features/ without its last clip (kept aside in ``ray_reference/``): the Ray line has one clip to extract."""
    record = sorted((w / "features" / "records").glob("*.npz"))[-1]
    (w / "ray_reference").mkdir()
    record.replace(w / "ray_reference" / record.name)


def _check_ray(w, r):
    """The Ray actors extracted the missing clip, as this process had (features stored as float16)."""
    assert "1 clips extracted, 7 already in features" in r.stdout, r.stdout
    (reference,) = (w / "ray_reference").iterdir()
    with np.load(reference) as old, np.load(w / "features" / "records" / reference.name) as new:
        assert sorted(old.files) == sorted(new.files)
        for name in old.files:
            if old[name].dtype.kind == "f":
                np.testing.assert_allclose(new[name], old[name], rtol=1e-2, atol=1e-2, err_msg=name)
            else:
                np.testing.assert_array_equal(new[name], old[name], err_msg=name)
    assert len(_store(w / "features")) == len(CLIPS)


def _check_ck(w, r):
    store = _store(w / "ck")
    labels = {store.get(c).meta["label"] for c in store.clip_ids()}
    assert len(store) == 7 and len(labels) == 7, labels


def _check_models(w, r):
    assert "caca_rnn_a" in r.stdout and "caer_net" in r.stdout


def _check_train(run: str, seeds: int) -> Callable:
    def check(w, r):
        summary = json.loads((w / "runs" / run / "summary.json").read_text())
        assert len(summary["runs"]) == seeds and all((w / "runs" / run / f"seed{s}").is_dir() for s in range(seeds))

    return check


def _check_evaluate(w, r):
    metrics = json.loads((w / "runs" / "caca_a" / "eval" / "metrics.json").read_text())
    assert metrics["n"] == sum(split == "test" for _, _, split in CLIPS) and 0 <= metrics["accuracy"] <= 1


def _check_compare(w, r):
    table = (w / "runs" / "compare" / "table.md").read_text()
    for model in ("face_rnn", "context_rnn", "parallel_rnn", "concat_rnn", "caca_rnn_a", "caca_rnn_b"):
        assert model in table


def _check_serve_local(ctx):
    p = ctx.params
    assert (p["port"], p["workers"], p["max_upload_mb"], p["queue"], p["job_timeout"]) == (8000, 2, 200, 8, 600)


def _check_serve_public(ctx):
    pytest.importorskip("fastapi", reason="the service needs the serve extra (fastapi)")
    from emocontext.serve import ServeSettings, check_bind
    from emocontext.serve.settings import load_api_keys

    p = ctx.params
    assert p["host"] == "0.0.0.0" and p["keep_hours"] == 48
    settings = ServeSettings(api_keys=load_api_keys(Path("keys.txt")), keep_hours=p["keep_hours"])
    check_bind(p["host"], settings, insecure=False)  # 0.0.0.0 is allowed with keys


GPU = "needs a CUDA GPU"
NETWORK = "downloads from the network (tests never do)"
SERVER = "runs a server until stopped; tests/serve start the service on 127.0.0.1 and send it requests"

#: How each README command line is exercised, by its :func:`normalise`\ d text.
COMMANDS: dict[str, Run | ParseOnly | Install] = {
    # install
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 "
    "--index-url https://download.pytorch.org/whl/cpu && pip install -e . && "
    "emocontext predict --sample": Install("creates a virtual environment and installs from the network"),
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 "
    "--index-url https://download.pytorch.org/whl/cpu && pip install -e '.[test]' && "
    "python -m pytest -q": Install(
        "creates a virtual environment, installs, and runs the whole suite (this test in it)"
    ),
    # predict
    "emocontext predict clip.mp4 --json clip.json": Run(_check_clip_json),
    "emocontext predict clip.mp4 --json - | jq .": Run(_check_stdout_json),
    "emocontext predict clip.mp4 --report clip.html --annotate clip_annotated.mp4": Run(_check_report),
    "emocontext predict videos/ --jsonl out.jsonl --csv out.csv": Run(_check_videos_jsonl_csv),
    "emocontext predict videos/ --frames-csv frames.csv": Run(_check_frames_csv),
    "emocontext predict videos/ --jsonl out.jsonl --resume": Run(_check_resumed, before=_crash_after_first),
    "emocontext predict faces/ --detector none --jsonl out.jsonl": Run(_check_faces),
    "emocontext predict videos/ --detect-every 1 --workers 1": Run(),
    "emocontext weights download yunet": ParseOnly(NETWORK, _check_yunet),
    "emocontext weights list": Run(_check_weights_list),
    "emocontext --version": Run(_check_version),
    # serve
    "pip install -e '.[serve]'": ParseOnly("installs from the network (the extra is checked in pyproject.toml)"),
    "emocontext serve --port 8000 --workers 2 --max-upload-mb 200 --queue 8 --job-timeout 600": ParseOnly(
        SERVER, _check_serve_local
    ),
    "emocontext serve --host 0.0.0.0 --api-key-file keys.txt --data-dir /srv/emocontext --keep-hours 48": ParseOnly(
        SERVER + "; this one listens on every address", _check_serve_public
    ),
    "curl -F file=@clip.mp4 -F fps=5 http://127.0.0.1:8000/v1/predict": ParseOnly(
        "needs a running server (tests/serve send the same uploads)"
    ),
    "curl -H 'Authorization: Bearer $KEY' -F file=@clip.mp4 http://lab-machine:8000/v1/jobs": ParseOnly(
        "needs a running server on another machine and its key (tests/serve/test_auth.py sends keys)"
    ),
    # extract, train, evaluate, compare
    "emocontext extract manifest.csv -o features/": Run(_check_features),
    "emocontext extract manifest.csv -o features_av/ --audio --model av_lstm": Run(_check_features_av),
    "emocontext extract manifest.csv -o features/ --keep-going": Run(
        _check_keep_going, before=_add_missing_clip, status=1
    ),
    "emocontext extract ../shared/data/ckplus48 --dataset ckplus-sequences --detector none -o ck/": Run(
        _check_ck,
        realdata=True,
        data=_ckplus_part,
        why="the 327 sequences take 158 CPU-s here; the first sequence of each of the 7 classes is run instead",
    ),
    "emocontext models": Run(_check_models),
    "emocontext models --recipes": Run(_check_models),
    "emocontext train -s features/ --model caca_rnn_a -o runs/caca_a --seeds 5": Run(_check_train("caca_a", 5)),
    "emocontext evaluate runs/caca_a/seed0/best.pt -s features/ --split test -o runs/caca_a/eval": Run(_check_evaluate),
    "emocontext compare -s features/ -o runs/compare --seeds 5": Run(
        _check_compare,
        extra=("--epochs", "1"),
        why="as written (6 models x 5 seeds, each up to 60 epochs) it took 178 s (133 CPU-s) on the 8 clips here",
    ),
    "emocontext train --manifest clips.csv --model caer_net -o runs/caer": Run(_check_train("caer", 1)),
    # scale out
    "pip install -e '.[ray]'": ParseOnly("installs from the network (the extra is checked in pyproject.toml)"),
    "emocontext extract manifest.csv -o features/ --ray local": Run(_check_ray, before=_drop_last_clip, needs="ray"),
    "emocontext predict videos/ --jsonl out.jsonl --ray HEAD:6379": ParseOnly(
        "needs a running Ray cluster at HEAD:6379 (tests/distributed/test_ray.py runs a local one)"
    ),
    "emocontext train -s features/ --model caca_rnn_a -o runs/a --nproc 2": Run(_check_train("a", 1)),
    "torchrun --nproc_per_node 2 -m emocontext train -s features/ --model caca_rnn_a -o runs/a": ParseOnly(
        "the same 2-process training as the --nproc 2 line above, through torchrun (tests/distributed/test_ddp.py)"
    ),
    "emocontext train -s features/ --model caca_rnn_a -o runs/a --device cuda": ParseOnly(GPU),
}


# ------------------------------------------------------------------------------------ the tests

RUNNERS = {"emocontext", "pip", "curl", "torchrun", "python3", ".", "python"}


def parts(command: str) -> list[list[str]]:
    """The simple commands of a line, as words: ``a && b | c`` -> ``[a, b, c]``."""
    result, current = [], []
    for word in shlex.split(command):
        if word in ("&&", "|"):
            result.append(current)
            current = []
        else:
            current.append(word)
    return [*result, current]


def check_without_running(words: list[str]) -> None:
    """Every check of a command that is not run: its ``emocontext`` part parsed, pip pins and extras, curl
    uploads."""
    if words[0] == "emocontext":
        parse_cli(words[1:])
    elif words[0] == "torchrun":
        i = words.index("-m")
        assert words[i + 1] == "emocontext", words
        parse_cli(words[i + 2 :])
    elif words[0] == "pip":
        check_pip(words)
    elif words[0] == "curl":
        check_curl(words)
    else:
        raise AssertionError(f"no check for {' '.join(words)!r}")


def test_every_readme_command_is_covered():
    """Every README command line has a row in COMMANDS, and every row is still in the README."""
    commands = readme_commands()
    assert len(commands) == len(set(commands)), "a README command line appears twice"
    missing = [c for c in commands if c not in COMMANDS]
    stale = [c for c in COMMANDS if c not in commands]
    assert not missing, "README commands without a row in tests/test_readme.py COMMANDS:\n" + "\n".join(missing)
    assert not stale, "rows of COMMANDS the README no longer has:\n" + "\n".join(stale)
    assert len(readme_python()) >= 1
    for command in commands:
        assert parts(command)[0][0] in RUNNERS, f"no way to exercise {command!r}"


def _params() -> list:
    """The README's commands, those that read the real data marked ``realdata``."""
    return [
        pytest.param(c, id=c, marks=[pytest.mark.realdata] if getattr(COMMANDS.get(c), "realdata", False) else [])
        for c in readme_commands()
    ]


@pytest.mark.parametrize("command", _params())
def test_readme_command(command, work, monkeypatch):
    """The README command runs in the work folder and does what its row checks, or, where it cannot run, its
    command line parses (see :data:`COMMANDS`)."""
    how = COMMANDS.get(command)
    if how is None:
        pytest.fail(f"no row for this README command in COMMANDS: {command}")
    if isinstance(how, ParseOnly):
        for words in parts(command):
            check_without_running(words)
        if how.check is not None:
            monkeypatch.chdir(work)
            how.check(parse_cli(parts(command)[0][1:]))
        return
    if isinstance(how, Install):
        for words in parts(command):
            if words[0] == "emocontext":
                r = emocontext(words[1:], work)
                assert r.returncode == 0, r.stderr
            elif words[0] == "pip":
                check_pip(words)
            # python3 -m venv, `. activate`, python -m pytest: see the row's reason
        return
    emocontext_part, *pipe = parts(command)
    assert emocontext_part[0] == "emocontext" and pipe in ([], [["jq", "."]]), command
    if how.needs:
        pytest.importorskip(how.needs, reason=f"needs {how.needs} (the test extra)")
    data = DATA
    if how.realdata:  # skips without the real data
        data_path(*Path(next(w for w in emocontext_part if w.startswith(README_DATA))).relative_to(README_DATA).parts)
        if how.data is not None:
            data = how.data(work)
    if how.before is not None:
        how.before(work)
    r = emocontext([*emocontext_part[1:], *how.extra], work, data=data)
    assert r.returncode == how.status, f"{command}\nexit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    if pipe:
        json.loads(r.stdout)
    if how.check is not None:
        how.check(work, r)


@pytest.mark.parametrize("block", range(len(readme_python())))
def test_readme_python(block, work, monkeypatch):
    """Each ```python block runs as written, in the work folder (``clip.mp4`` there), with ``paths`` given."""
    monkeypatch.chdir(work)
    namespace = {"paths": list(PATHS)}
    exec(compile(readme_python()[block], f"README.md python block {block}", "exec"), namespace)
    if "p" in namespace:  # the example's emocontext.predict("clip.mp4"): the face of the sample clip
        p = namespace["p"]
        assert p.label is not None and p.persons and p.frame_wh == (640, 360)
        assert len(namespace["df"]) >= p.frames_with_face
