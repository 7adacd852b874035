"""The command line on bad and good input: one-line errors, no tracebacks, nothing lost."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from emocontext.cli import app
from tests.conftest import data_path, encode_video, numbered_frames

runner = CliRunner()


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module")
def noface_video(tmp_path_factory):
    return encode_video(tmp_path_factory.mktemp("v") / "noface.mp4", numbered_frames(10), fps=5)


def _bad_files(d):
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("not a video\n" * 100)
    full = encode_video(d / "full.mp4", numbered_frames(20), fps=10)
    (d / "truncated.mp4").write_bytes(full.read_bytes()[:1500])
    full.unlink()
    return {
        "missing.mp4": "no such file",
        "empty.mp4": "empty file",
        "text.mp4": "not a readable media file",
        "truncated.mp4": "truncated.mp4",
    }


def test_bad_inputs_one_line_error_each(tmp_path):
    for name, message in _bad_files(tmp_path).items():
        r = _run("predict", tmp_path / name)
        assert r.exit_code == 1, (name, r.output)
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and name in lines[0], (name, r.output)


def test_no_face_gives_a_result_marked_no_face(noface_video, tmp_path):
    r = _run("predict", noface_video, "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert "no face found" in r.output
    (d,) = json.loads((tmp_path / "r.json").read_text())  # always a list, one record per input
    assert d["no_face"] is True and d["label"] is None and d["num_frames"] == 10
    assert [f["timestamp"] for f in d["frames"]] == pytest.approx(np.arange(10) * 0.2)


def test_folder_with_bad_files_keeps_going(tmp_path, noface_video):
    _bad_files(tmp_path)
    encode_video(tmp_path / "good.mp4", numbered_frames(5), fps=5)
    r = _run("predict", tmp_path, "--jsonl", tmp_path / "out.jsonl", "--csv", tmp_path / "out.csv", "-q")
    assert r.exit_code == 1  # some failed
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    ok = [x["path"].split("/")[-1] for x in lines if x["status"] == "ok"]
    failed = [x for x in lines if x["status"] == "error"]
    assert ok == ["good.mp4"] and failed and all(x["error"] for x in failed)  # every input listed, with its error
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert len(rows) == len(lines) and {r["status"] for r in rows} == {"ok", "error"}


def test_folder_run_says_which_files_it_skipped(tmp_path):
    encode_video(tmp_path / "good.mp4", numbered_frames(5), fps=5)
    for name in ("a.mp3", "sub/b.MP3", "notes.txt", ".DS_Store"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    r = _run("predict", tmp_path, "-q")
    assert r.exit_code == 0, r.output
    assert "skipped 3 files that are not video or images (.mp3: 2, .txt: 1)" in r.output


def test_help_teaches():
    r = _run("predict", "--help")
    assert r.exit_code == 0 and "--jsonl" in r.output and "Examples" in r.output


def test_cli_defaults_are_the_options_defaults():
    import inspect

    from emocontext.cli.predict import predict
    from emocontext.options import PredictOptions

    cli = inspect.signature(predict).parameters
    for f in ("detector", "fps", "max_duration", "person", "detect_every"):
        assert cli[f].default == getattr(PredictOptions, f), f
    r = _run("predict", "--sample", "--detect-every", "0")
    assert r.exit_code == 2 and "detect-every" in r.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "scene"], "--model"),
        (["--detector", "eyes"], "--detector"),
        (["--person", "everyone"], "--person"),
        (["--fps", "31"], "--fps"),
    ],
)
def test_bad_option_values_are_usage_errors(args, words):
    r = _run("predict", "--sample", *args)
    assert r.exit_code == 2 and words in r.output


@pytest.mark.realdata
def test_predict_real_clip_json(tmp_path):
    clip = data_path("videos", "crema-d", "1001_DFA_HAP_XX.flv")
    r = _run("predict", clip, "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    (d,) = json.loads((tmp_path / "r.json").read_text())  # always a list, one record per input
    assert d["label"] in d["probabilities"] and abs(sum(d["probabilities"].values()) - 1) < 1e-2
    assert d["frames_with_face"] >= 0.9 * d["num_frames"]
    f = d["frames"][0]
    assert {"timestamp", "face_present", "box", "probabilities", "source"} <= set(f)
    assert d["model"] == "face_cnn_temporal_mean" and f["source"] == "face" and f["fusion_weights"] is None
    assert "happy" in r.output


@pytest.mark.realdata
def test_predict_every_real_clip(tmp_path):
    videos = data_path("videos")
    r = _run("predict", videos, "--jsonl", tmp_path / "all.jsonl", "-q")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert len(lines) == 10  # 6 CREMA-D, 1 RAVDESS, 3 unlabelled
    assert all(x["label"] is not None for x in lines)


def test_extract_with_audio_stores_it_and_warns_about_a_silent_clip(tmp_path):
    from emocontext.features.store import FeatureStore

    sr = 16000
    (tmp_path / "in").mkdir()
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr)).astype(np.float32)
    encode_video(tmp_path / "in" / "with_audio.mp4", numbered_frames(20), fps=10, audio=tone, sample_rate=sr)
    encode_video(tmp_path / "in" / "silent.mp4", numbered_frames(20), fps=10)
    r = _run("extract", tmp_path / "in", "-o", tmp_path / "store", "--detector", "haar", "--audio", "-q")
    assert r.exit_code == 0, r.output
    assert "1 clip(s) have no audio track" in r.output
    store = FeatureStore(tmp_path / "store")
    assert store.has_audio
    by_name = {store.get(c).meta["path"].rsplit("/", 1)[-1]: store.get(c) for c in store.clip_ids()}
    assert len(by_name["with_audio.mp4"].audio) > 10 and len(by_name["silent.mp4"].audio) == 0


def test_extract_samples_at_the_recipe_rate_of_the_model_it_extracts_for(tmp_path):
    """Issue 25: `extract --model av_lstm` samples at Chao et al.'s 25 fps and the store signature records it;
    without a model, 5 fps; `--fps` overrides; `train` then accepts the store for that model only."""
    from emocontext.features.store import FeatureStore

    (tmp_path / "in").mkdir()
    encode_video(tmp_path / "in" / "a.mp4", numbered_frames(50), fps=25)  # 2 s
    runs = {"av": ["--model", "av_lstm"], "plain": [], "given": ["--model", "av_lstm", "--fps", "10"]}
    for name, extra in runs.items():
        r = _run("extract", tmp_path / "in", "-o", tmp_path / name, "--detector", "haar", "-q", *extra)
        assert r.exit_code == 0, r.output
    fps = {name: FeatureStore(tmp_path / name).signature["streams"]["fps"] for name in runs}
    assert fps == {"av": 25.0, "plain": 5.0, "given": 10.0}
    lengths = {
        name: len(FeatureStore(tmp_path / name).get(FeatureStore(tmp_path / name).clip_ids()[0])) for name in runs
    }
    assert lengths == {"av": 50, "plain": 10, "given": 20}
    r = _run("extract", "--help")
    assert "--model" in r.output and "CAAN every frame" in " ".join(r.output.split())


def test_train_pixel_model_from_a_manifest(tmp_path):
    """caer_net_s learns from the clips of a manifest (pixels), not from a feature store."""
    rows = ["path,label,split"]
    for i in range(12):
        frames = numbered_frames(12, h=72, w=96)
        frames[..., i % 2] = 255  # the label is the frame's colour
        path = encode_video(tmp_path / f"c{i}.mp4", frames, fps=10)
        rows.append(f"{path},{('happy', 'sad')[i % 2]},{('train', 'train', 'train', 'val', 'test', 'train')[i % 6]}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    r = _run(
        "train", "--manifest", tmp_path / "m.csv", "--model", "caer_net_s", "-o", tmp_path / "run",
        "--epochs", "1", "--detector", "haar", "--batch-size", "4",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model"] == "caer_net_s" and "test" in summary["runs"][0]


def test_train_tells_which_input_a_model_needs(tmp_path):
    r = _run("train", "--model", "caer_net_s", "-o", tmp_path / "a")
    assert r.exit_code == 1 and "--manifest" in r.output
    r = _run("train", "--model", "caca_rnn_a", "-o", tmp_path / "b")
    assert r.exit_code == 1 and "--store" in r.output


# ------------------------------------------------------------------ issue 13: what a new user hit


def test_brackets_in_names_and_messages_print_exactly(tmp_path, noface_video):
    take = tmp_path / "take[red] 1.mp4"
    take.write_bytes(noface_video.read_bytes())
    r = _run("predict", take)
    assert r.exit_code == 0 and "take[red] 1.mp4" in r.output, r.output
    r = _run("predict", tmp_path / "clip[draft].mp4")
    assert r.exit_code == 1 and "clip[draft].mp4: no such file" in r.output, r.output


def test_dlib_hint_keeps_its_brackets():
    pytest.importorskip("typer")
    try:
        import dlib  # noqa: F401

        pytest.skip("dlib is installed: no hint to print")
    except ImportError:
        pass
    r = _run("predict", "x.mp4", "--detector", "dlib")
    assert r.exit_code == 1 and "pip install dlib-bin" in r.output and "'.[dlib]'" in r.output, r.output
    assert "emocontext[dlib]" not in r.output  # no such package on PyPI


def test_folder_outputs_never_collide_and_a_report_file_name_is_refused(tmp_path):
    src = tmp_path / "in"
    for rel in ("a/clip.mp4", "b/clip.mp4", "a/clip.mkv"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        encode_video(src / rel, numbered_frames(3), fps=5)
    r = _run("predict", src, "--report", tmp_path / "R", "--annotate", tmp_path / "A", "-q")
    assert r.exit_code == 0, r.output
    reports = sorted(p.relative_to(tmp_path / "R").as_posix() for p in (tmp_path / "R").rglob("*.html"))
    assert reports == ["a/clip.mkv.html", "a/clip.mp4.html", "b/clip.html"]
    videos = sorted(p.relative_to(tmp_path / "A").as_posix() for p in (tmp_path / "A").rglob("*.mp4"))
    assert videos == ["a/clip.mkv.mp4", "a/clip.mp4.mp4", "b/clip.mp4"]
    r = _run("predict", src / "a" / "clip.mp4", src / "b" / "clip.mp4", "--report", tmp_path / "two.html")
    assert r.exit_code == 2 and "name a folder" in r.output and not (tmp_path / "two.html").exists()


def test_bad_input_matrix_every_file_in_every_table(tmp_path, noface_video):
    import av

    d = tmp_path / "in"
    d.mkdir()
    expected = _bad_files(d)
    full = encode_video(
        d / "full.flv", np.random.default_rng(0).integers(0, 255, (40, 64, 96, 3), np.uint8), codec="flv"
    )
    (d / "cut.flv").write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 5])
    full.unlink()
    with av.open(str(d / "audio only.m4a"), "w") as c:
        s = c.add_stream("aac", rate=16000, layout="mono")
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate = 16000
        for p in [*s.encode(af), *s.encode()]:
            c.mux(p)
    (d / "audio only.mp4").write_bytes((d / "audio only.m4a").read_bytes())
    (d / "ok [v2].mp4").write_bytes(noface_video.read_bytes())
    empty_dir = tmp_path / "nothing here"
    empty_dir.mkdir()
    args = [d / "missing.mp4", d, empty_dir]
    r = _run(
        "predict",
        *args,
        "--jsonl",
        tmp_path / "o.jsonl",
        "--csv",
        tmp_path / "o.csv",
        "--frames-csv",
        tmp_path / "f.csv",
    )
    assert r.exit_code == 1
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    by_name = {row["path"].split("/")[-1]: row for row in rows}
    assert set(by_name) == {
        "missing.mp4",
        "empty.mp4",
        "text.mp4",
        "truncated.mp4",
        "cut.flv",
        "audio only.mp4",
        "ok [v2].mp4",
        "nothing here",
    }
    assert by_name["ok [v2].mp4"]["status"] == "ok" and by_name["nothing here"]["status"] == "error"
    for name, message in expected.items():
        assert by_name[name]["status"] == "error" and message in by_name[name]["error"], (name, by_name[name])
    assert "no video stream" in by_name["audio only.mp4"]["error"]
    assert by_name["cut.flv"]["status"] == "ok" and by_name["cut.flv"]["truncated"] is True
    assert r.output.count("breaks off part-way") == 1  # one warning per event
    import csv

    table = list(csv.DictReader(open(tmp_path / "o.csv")))
    assert len(table) == 8 and {row["status"] for row in table} == {"ok", "error"}
    assert {row["path"].split("/")[-1] for row in csv.DictReader(open(tmp_path / "f.csv"))} == set(by_name)
    assert "8 files (6 failed)" in r.output and "6 of 8 files failed" in r.output
    for line in r.output.splitlines():  # every error is one line naming its file
        if line.startswith("error:"):
            assert any(n in line for n in by_name), line


def test_unwritable_output_is_one_line_and_leaves_nothing(tmp_path, noface_video):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    r = _run("predict", noface_video, "--jsonl", blocker / "out.jsonl")
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and "file.txt" in lines[0], r.output
    assert not list(tmp_path.glob("**/*.jsonl"))


def test_quiet_one_file_prints_one_line(noface_video):
    r = _run("predict", noface_video, "-q")
    assert r.exit_code == 0 and re.fullmatch(rf"{re.escape(str(noface_video))}\s+no face", r.output.strip()), r.output


def test_version_option_and_max_duration_zero():
    from emocontext import __version__

    r = _run("--version")
    assert r.exit_code == 0 and __version__ in r.output
    r = _run("predict", "x.mp4", "--max-duration", "0")
    assert r.exit_code == 2 and "max-duration" in r.output


def test_help_is_not_cut_at_80_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = _run("extract", "--help")
    assert "--context-backbone" in r.output and "…" not in r.output
    r = _run("compare", "--help")
    assert "caca_rnn_b" in r.output and "…" not in r.output
    r = _run("models")
    assert "caca_rnn_a" in r.output and "caca_rnn_b" in r.output


def test_weights_download_unknown_name():
    r = _run("weights", "download", "nope")
    assert r.exit_code == 2 and "known: yunet" in r.output


def test_sample_clip_ships_and_predicts(tmp_path):
    from emocontext.samples import sample_video

    assert sample_video().is_file() and (sample_video().parent / "NOTICE").is_file()
    r = _run("predict", "--sample", "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    (d,) = json.loads((tmp_path / "s.json").read_text())  # always a list, one record per input
    assert d["label"] is not None and d["frames_with_face"] >= 10 and len(d["persons"]) >= 1


def test_the_command_line_keeps_its_commands():
    import typer

    group = typer.main.get_command(app)
    assert list(group.commands) == [
        "predict",
        "extract",
        "models",
        "train",
        "evaluate",
        "compare",
        "serve",
        "version",
        "weights",
    ]
    assert list(group.commands["weights"].commands) == ["download", "list"]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["predict", "--help"], ["train", "--help"]])
def test_help_and_version_do_not_import_torch(args):
    """The entry point answers without the heavy libraries (measured: ~0.3 s for --help, 2.2-3.2 s before)."""
    import subprocess
    import sys

    code = (
        "import sys; from emocontext.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit:\n    pass\n"
        "print('heavy:', sorted(m for m in ('torch', 'cv2', 'matplotlib', 'av') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "heavy: []", out


@pytest.mark.parametrize(
    ("command", "examples"),
    [("predict", 9), ("extract", 3), ("train", 3), ("compare", 2), ("serve", 2)],
)
def test_help_examples_one_per_line(monkeypatch, command, examples):
    monkeypatch.setenv("COLUMNS", "200")
    r = _run(command, "--help")
    block = r.output.split("Examples:")[1].split("Arguments:")[0].split("Options:")[0]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    assert len(lines) == examples and all(line.startswith("emocontext ") for line in lines), r.output


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["predict"], 2, "give video/image files"),
        (["predict", "--sample", "--fps", "0"], 2, "--fps"),
        (["predict", "missing.mp4"], 1, "no such file"),
        (["extract", "x", "-o", "s", "--dataset", "nope"], 2, "unknown dataset 'nope'"),
        (["train", "-s", "s", "--model", "nope", "-o", "x"], 2, "unknown model 'nope'"),
        (["train", "-s", "s", "--model", "face_rnn", "-o", "x", "--model-option", "bad"], 2, "KEY=VALUE"),
        (["weights", "download", "nope"], 2, "unknown model file"),
        (["nope"], 2, "No such command"),
    ],
)
def test_one_exit_status_per_kind(tmp_path, monkeypatch, args, code, words):
    """2: the command line is wrong; 1: an input or the run failed (documented in `emocontext --help`)."""
    monkeypatch.chdir(tmp_path)
    r = _run(*args)
    assert r.exit_code == code and words in r.output, r.output
