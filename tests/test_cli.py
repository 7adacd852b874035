"""The command line on bad and good input: one-line errors, no tracebacks, nothing lost."""

from __future__ import annotations

import json

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
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["no_face"] is True and d["label"] is None and d["num_frames"] == 10
    assert [f["timestamp"] for f in d["frames"]] == pytest.approx(np.arange(10) * 0.2)


def test_folder_with_bad_files_keeps_going(tmp_path, noface_video):
    _bad_files(tmp_path)
    encode_video(tmp_path / "good.mp4", numbered_frames(5), fps=5)
    r = _run("predict", tmp_path, "--jsonl", tmp_path / "out.jsonl", "--csv", tmp_path / "out.csv", "-q")
    assert r.exit_code == 1  # some failed
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["path"].split("/")[-1] for x in lines] == ["good.mp4"]
    assert (tmp_path / "out.csv").read_text().startswith("path,label,confidence")


def test_help_teaches():
    r = _run("predict", "--help")
    assert r.exit_code == 0 and "--jsonl" in r.output and "Examples" in r.output


@pytest.mark.realdata
def test_predict_real_clip_json(tmp_path):
    clip = data_path("videos", "crema-d", "1001_DFA_HAP_XX.flv")
    r = _run("predict", clip, "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "r.json").read_text())
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
