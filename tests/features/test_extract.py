"""Extraction over a manifest: batched, resumable, atomic, refuses to mix extractors; audio on the frames' clock."""

from __future__ import annotations

import csv
import logging
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from emocontext.data.datasets import read_manifest
from emocontext.data.manifest import ClipEntry, Manifest
from emocontext.errors import ConfigError, IncompatibleFeaturesError, ManifestError
from emocontext.features.audio import PAPER_AUDIO, SPEECH_AUDIO
from emocontext.features.extract import AUDIO_SPAN, Extractors, clip_audio, clip_record, extract
from emocontext.features.store import FeatureStore
from emocontext.video.pipeline import StreamConfig, video_streams
from tests.video.test_pipeline import SquareDetector, square_video

SR = 16000


@pytest.fixture(scope="module")
def extractors():
    return Extractors.build(detector=SquareDetector())


@pytest.fixture
def manifest(tmp_path):
    good = [square_video(tmp_path / f"v{i}.mp4", n=4 + i) for i in range(3)]
    (tmp_path / "broken.mp4").write_text("not a video")
    paths = [*good[:2], tmp_path / "broken.mp4", good[2]]
    return Manifest([ClipEntry(str(p), "happy", "train") for p in paths])


def test_extract_records_and_failures(tmp_path, manifest, extractors):
    summary = extract(manifest, tmp_path / "store", extractors)
    assert summary.done == 3 and len(summary.failed) == 1 and "broken.mp4" in summary.failed[0][1]
    store = FeatureStore(tmp_path / "store")
    r = store.get(manifest[1].clip_id)
    assert r.face.shape == (5, 1280) and r.context.shape == (5, 1280)
    assert r.face_map.shape[:2] == (5, 1280) and r.face_map.shape[2] == r.face_map.shape[3] >= 2
    assert r.audio is None and r.audio_timestamps is None  # no audio asked for
    assert r.face_present.all() and np.allclose(r.face_probs.sum(1), 1, atol=1e-2)
    assert r.meta["label"] == "happy" and r.meta["path"] == manifest[1].path
    assert len((tmp_path / "store" / "failures.jsonl").read_text().splitlines()) == 1
    again = extract(manifest, tmp_path / "store", extractors)
    assert again.skipped == 3 and again.done == 0 and len(again.failed) == 1


def test_a_keep_going_run_lists_the_rows_not_extracted_with_their_lines(tmp_path, extractors):
    """A manifest CSV with a missing file: the rest is extracted, failed.csv names the row by its line."""
    square_video(tmp_path / "a.mp4", n=4)
    (tmp_path / "m.csv").write_text("path,label\na.mp4,happy\nmissing.mp4,sad\n")
    with pytest.raises(ManifestError, match="line 3: missing file"):
        read_manifest([tmp_path / "m.csv"])  # a CSV stops before anything runs by default
    manifest = read_manifest([tmp_path / "m.csv"], keep_going=True)
    summary = extract(manifest, tmp_path / "store", extractors)
    assert summary.done == 1 and [p for p, _ in summary.failed] == [str(tmp_path / "missing.mp4")]
    with open(summary.failed_csv, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert summary.failed_csv == tmp_path / "store" / "failed.csv"
    assert (row["line"], row["row"], row["label"]) == ("3", "2", "sad") and "no such file" in row["error"]
    (tmp_path / "missing.mp4").write_bytes((tmp_path / "a.mp4").read_bytes())  # fixed: the rerun retries it
    again = extract(manifest, tmp_path / "store", extractors)
    assert again.done == 1 and again.skipped == 1 and again.failed_csv is None
    assert not (tmp_path / "store" / "failed.csv").exists()  # no stale list of an earlier run


def test_ckplus_sequences_are_extracted_as_three_frame_clips(tmp_path, extractors):
    """``--dataset ckplus-sequences --detector none``: one record per sequence, its images in frame order."""
    import cv2

    from emocontext.data.datasets import load_dataset
    from emocontext.video.faces import create_detector

    levels = {}
    for cls, seq in (("anger", "S010_004"), ("happy", "S011_002")):
        (tmp_path / "ck" / cls).mkdir(parents=True)
        for k, frame in enumerate((17, 18, 19)):
            level = 40 + 60 * k + (10 if cls == "happy" else 0)
            cv2.imwrite(str(tmp_path / "ck" / cls / f"{seq}_{frame:08d}.png"), np.full((48, 48), level, np.uint8))
            levels.setdefault(seq, []).append(level)
    manifest = load_dataset("ckplus-sequences", tmp_path / "ck")
    whole = Extractors(create_detector("none"), extractors.face, extractors.context)
    summary = extract(manifest, tmp_path / "store", whole)
    assert summary.done == 2 and not summary.failed and summary.failed_csv is None
    store = FeatureStore(tmp_path / "store")
    for e in manifest:
        r = store.get(e.clip_id)
        assert r.face.shape == (3, 1280) and r.face_present.all() and r.meta["label"] == e.label
        np.testing.assert_allclose(r.timestamps, [0.0, 0.2, 0.4])
        assert [Path(f).name for f in r.meta["frames"]] == [Path(f).name for f in e.frames]
        crops = whole.streams(e).face  # the frames in order: brightness rises with the frame number
        assert [int(c.mean()) for c in crops] == levels[Path(e.path).name]


def test_interrupted_extraction_resumes_without_corrupt_records(tmp_path, manifest, extractors, monkeypatch):
    calls = {"n": 0}
    real_put = FeatureStore.put

    def put_then_die(self, clip_id, record):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed while writing the second record
        real_put(self, clip_id, record)

    monkeypatch.setattr(FeatureStore, "put", put_then_die)
    with pytest.raises(KeyboardInterrupt):
        extract(manifest, tmp_path / "store", extractors)
    monkeypatch.setattr(FeatureStore, "put", real_put)
    records = list((tmp_path / "store" / "records").iterdir())
    assert len(records) == 1 and not any(p.name.endswith(".tmp") for p in records)
    summary = extract(manifest, tmp_path / "store", extractors)
    assert summary.skipped == 1 and summary.done == 2


def test_store_refuses_other_settings(tmp_path, manifest, extractors):
    extract(Manifest(manifest.entries[:1]), tmp_path / "store", extractors)
    other = Extractors(extractors.detector, extractors.face, extractors.context, StreamConfig(fps=10))
    with pytest.raises(IncompatibleFeaturesError, match="fps"):
        extract(manifest, tmp_path / "store", other)


def test_predict_api_on_a_synthetic_face(tmp_path):
    import emocontext

    path = square_video(tmp_path / "v.mp4")
    p = emocontext.predict(path, detector=SquareDetector())
    assert p.num_frames == 10 and p.frames_with_face == 6 and not p.no_face
    assert p.label in p.probabilities and abs(sum(p.probabilities.values()) - 1) < 1e-2
    assert p.frames[7].probabilities is None and p.frames[0].box is not None
    d = p.to_dict()
    assert d["no_face"] is False and len(d["frames"]) == 10


def test_dataset_face_boxes_replace_detection(tmp_path):
    """ExpW-style data: the labelled boxes are used (no detector), two faces of one image are two clips."""
    import cv2
    from typer.testing import CliRunner

    from emocontext.cli import app
    from emocontext.data.manifest import FaceEntry
    from emocontext.labels import EKMAN7
    from emocontext.training import manifest_from_store
    from emocontext.training.datasets import FeatureSequenceDataset

    root = tmp_path / "expw"
    (root / "images").mkdir(parents=True)
    img = np.full((120, 200, 3), 90, np.uint8)
    cv2.imwrite(str(root / "images" / "a.jpg"), img)
    (root / "labels.csv").write_text(
        "image,face_id,x1,y1,x2,y2,label,face_confidence\na.jpg,0,10,10,50,50,happy,9.0\na.jpg,1,120,20,170,70,sad,8.0\n"
    )
    (root / "splits.csv").write_text("image,split\na.jpg,train\n")
    r = CliRunner().invoke(app, ["extract", str(root), "--dataset", "expw", "-o", str(tmp_path / "s"), "-q"])
    assert r.exit_code == 0, r.output
    store = FeatureStore(tmp_path / "s")
    assert store.signature["detector"] == "mtcnn"  # the default, not used for boxed faces
    m = manifest_from_store(store, EKMAN7)
    assert len(m) == 2 and all(isinstance(e, FaceEntry) for e in m)
    boxes = {e.face_id: e.box for e in m}
    assert boxes[1] == (120.0, 20.0, 170.0, 70.0)
    rec = store.get(m[1].clip_id)
    assert rec.face_present.all()
    np.testing.assert_allclose(rec.boxes[0], boxes[m[1].face_id])
    ds = FeatureSequenceDataset(store, m, EKMAN7)
    assert sorted(ds.labels.tolist()) == [EKMAN7.index("happy"), EKMAN7.index("sad")]


# ---------------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------------


def tone_video(path, *, onset=1.0, seconds=2.0, audio_start=0.0, n=10, fps=5):
    """A square 'face' on every frame and an AAC track: silence, then a 440 Hz tone from ``onset`` s.

    ``onset`` is on the container clock (video starts at 0); the audio stream itself starts at
    ``audio_start`` s (a late audio track), so its first ``onset - audio_start`` s are silent.
    """
    import av

    frames = np.full((n, 120, 160, 3), 60, np.uint8)
    frames[:, 40:80, 60:100] = 255
    y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * SR)) / SR)).astype(np.float32)
    y[: int(round((onset - audio_start) * SR))] = 0
    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        aus = c.add_stream("aac", rate=SR, layout="mono")
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        offset = int(round(audio_start * SR))
        for i in range(0, len(y), 1024):
            af = av.AudioFrame.from_ndarray(y[None, i : i + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = SR, offset + i, Fraction(1, SR)
            for p in aus.encode(af):
                c.mux(p)
        for p in aus.encode():
            c.mux(p)
    return path


def onset_time(audio, times):
    """Time of the first audio frame whose log energy (column 0) rises above silence."""
    return float(times[np.argmax(audio[:, 0] > -10)])


@pytest.fixture(scope="module")
def audio_extractors(extractors):
    return replace(extractors, audio=PAPER_AUDIO)


def test_extract_with_audio_on_the_frames_clock(tmp_path, audio_extractors, caplog):
    tone = tone_video(tmp_path / "tone.mkv")
    silent = square_video(tmp_path / "silent.mp4")  # no audio track at all
    manifest = Manifest(
        [
            ClipEntry(str(tone), "happy", "train"),
            ClipEntry(str(tone), "happy", "val", start=0.6, end=1.8),  # a segment: audio follows it
            ClipEntry(str(silent), "sad", "train"),
        ]
    )
    with caplog.at_level(logging.WARNING, logger="emocontext.features.extract"):
        summary = extract(manifest, tmp_path / "store", audio_extractors)
    assert summary.done == 3 and not summary.failed and summary.no_audio == [str(silent)]
    assert any("silent.mp4" in r.message and "no audio stream" in r.message for r in caplog.records)
    store = FeatureStore(tmp_path / "store")
    assert store.has_audio and store.signature["audio"] == {**PAPER_AUDIO.signature(), "span": AUDIO_SPAN}

    full = store.get(manifest[0].clip_id)
    hop = PAPER_AUDIO.hop_length / SR
    assert full.audio.shape == (1 + round(2.0 * SR) // PAPER_AUDIO.hop_length, 47)  # 10 frames at 5 fps = 2 s
    assert full.audio.dtype == np.float32 and full.audio_timestamps.dtype == np.float64
    np.testing.assert_allclose(full.audio_timestamps, np.arange(len(full.audio)) * hop)
    assert onset_time(full.audio, full.audio_timestamps) == pytest.approx(1.0, abs=0.05)

    seg = store.get(manifest[1].clip_id)
    assert seg.timestamps[0] == pytest.approx(0.6) and seg.audio_timestamps[0] == pytest.approx(0.6)
    assert seg.audio_timestamps[-1] < 1.8  # the entry's end
    assert onset_time(seg.audio, seg.audio_timestamps) == pytest.approx(1.0, abs=0.05)  # same clock
    # same sound in the same place (steady tone, away from the onset and the segment's edges; the
    # segment's audio frames sit on a grid shifted by 0.6 s, not on the full clip's grid)
    in_seg = (seg.audio_timestamps > 1.2) & (seg.audio_timestamps < 1.6)
    in_full = (full.audio_timestamps > 1.2) & (full.audio_timestamps < 1.6)
    np.testing.assert_allclose(
        np.median(seg.audio[in_seg, :14], 0), np.median(full.audio[in_full, :14], 0), rtol=0.02, atol=0.05
    )

    none = store.get(manifest[2].clip_id)
    assert none.audio.shape == (0, 47) and none.audio_timestamps.shape == (0,) and len(none) == 10


@pytest.mark.parametrize("suffix", ["mkv", "mp4"])
def test_a_late_audio_track_is_placed_on_the_video_clock(tmp_path, audio_extractors, suffix):
    """The audio stream starts 0.5 s after the video: the first 0.5 s are silence, the tone stays at 1.0 s."""
    path = tone_video(tmp_path / f"late.{suffix}", audio_start=0.5)
    streams = video_streams(path, SquareDetector(), StreamConfig())
    feats, times = clip_audio(path, streams.timestamps, PAPER_AUDIO, fps=5)
    assert times[0] == 0 and times[-1] == pytest.approx(2.0, abs=0.04)
    assert onset_time(feats, times) == pytest.approx(1.0, abs=0.07)
    assert (feats[times < 0.4, 0] < -20).all()  # before the track starts: silence


def test_audio_store_refuses_other_audio_settings(tmp_path, extractors, audio_extractors):
    path = tone_video(tmp_path / "tone.mkv")
    manifest = Manifest([ClipEntry(str(path), "happy", "train")])
    extract(manifest, tmp_path / "store", audio_extractors)
    with pytest.raises(IncompatibleFeaturesError, match="audio"):
        extract(manifest, tmp_path / "store", extractors)  # without audio
    with pytest.raises(IncompatibleFeaturesError, match="audio"):
        extract(manifest, tmp_path / "store", replace(extractors, audio=SPEECH_AUDIO))
    # and a store made without audio refuses audio
    extract(manifest, tmp_path / "plain", extractors)
    with pytest.raises(IncompatibleFeaturesError, match="audio"):
        extract(manifest, tmp_path / "plain", audio_extractors)
    assert "audio" not in extractors.signature()  # stores made before audio existed still match


def test_clip_record_reads_the_audio_itself(tmp_path, audio_extractors):
    path = tone_video(tmp_path / "tone.mkv")
    streams = video_streams(path, SquareDetector(), StreamConfig())
    rec = clip_record(streams, audio_extractors, path=path)
    via_load = clip_record(streams, audio_extractors, audio=audio_extractors.load(ClipEntry(str(path)))[1])
    np.testing.assert_array_equal(rec.audio, via_load.audio)
    with pytest.raises(ConfigError, match="path"):
        clip_record(streams, audio_extractors)
    assert Extractors.build(detector=SquareDetector(), audio=True).audio == PAPER_AUDIO
