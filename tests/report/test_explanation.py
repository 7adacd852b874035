"""report.explain: report, annotated video and key-frame pictures of one prediction, the video decoded once."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from emocontext.report import explain, write_annotated_video, write_html_report
from emocontext.report.html import key_frame_images
from emocontext.video import decode
from emocontext.video.encode import VideoWriter
from tests.report.conftest import make_prediction


@pytest.fixture
def decodes(monkeypatch):
    """Counts the files opened for reading (every reader goes through decode.open_container)."""
    opened = []
    real = decode.open_container

    def counting(path):
        opened.append(str(path))
        return real(path)

    monkeypatch.setattr(decode, "open_container", counting)
    return opened


def test_everything_from_one_decoding_and_the_same_files_as_one_by_one(tmp_path, video, decodes, monkeypatch):
    pred = make_prediction(video, context=True)
    pred.persons = []
    done = explain(pred, tmp_path / "out", key_frames=3)
    assert decodes.count(str(video)) == 1, decodes  # the annotation pass samples the report's frames too
    assert done.report == tmp_path / "out" / "report.html" and done.annotated == tmp_path / "out" / "annotated.mp4"
    assert [k.path.name for k in done.key_frames] == ["keyframe-0.png", "keyframe-1.png", "keyframe-2.png"]
    # the same bytes as the report written alone (its own decoding) and the same pictures as key_frame_images
    alone = write_html_report(pred, tmp_path / "alone.html", key_frames=3)
    assert done.report.read_bytes() == alone.read_bytes()
    for k, (i, image) in zip(done.key_frames, key_frame_images(pred, k=3), strict=True):
        assert k.index == i and k.timestamp == pred.frames[i].timestamp
        np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(k.path)), cv2.COLOR_BGR2RGB), image)
    # the annotated video: the same frames at the same times go to the encoder as when written alone (the bytes
    # themselves move between runs on a busy machine: libx264's, with main's code as with this one)
    encoded = {"explain": [], "alone": []}
    real_add = VideoWriter.add

    def recording(key):
        def add(self, image, t):
            encoded[key].append((t, hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()))
            return real_add(self, image, t)

        return add

    monkeypatch.setattr(VideoWriter, "add", recording("explain"))
    explain(pred, tmp_path / "again", report=None, key_frame_names=None)
    monkeypatch.setattr(VideoWriter, "add", recording("alone"))
    write_annotated_video(pred, tmp_path / "alone.mp4")
    assert len(encoded["explain"]) == 20 and encoded["explain"] == encoded["alone"]


def test_only_what_is_asked_for(tmp_path, video, decodes):
    pred = make_prediction(video, context=False)
    done = explain(pred, tmp_path, report="r.html", annotated=None, key_frame_names=None)
    assert done.annotated is None and done.key_frames == [] and done.report == tmp_path / "r.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
    assert decodes.count(str(video)) == 1  # the report's frames in one sampled pass
    absolute = tmp_path / "elsewhere" / "v.mp4"
    done = explain(pred, tmp_path / "ignored", report=None, annotated=absolute, key_frame_names=None)
    assert done.annotated == absolute and absolute.is_file() and not (tmp_path / "ignored").exists()


def test_more_frames_from_the_same_decoding(tmp_path, video, decodes):
    """``frame_times``: the caller's own pictures' frames come back from the annotation pass, nothing more is read."""
    from emocontext.report._frames import grab_frames

    pred = make_prediction(video, context=False)
    done = explain(pred, tmp_path, key_frame_names=None, frame_times=[0.6, 1.4])
    assert decodes.count(str(video)) == 1
    alone = grab_frames(video, pred.fps, [0.6, 1.4])
    for t, image in zip([0.6, 1.4], alone, strict=True):
        np.testing.assert_array_equal(done.frames[t], image)


def test_bad_input_raises_and_leaves_nothing(tmp_path, video):
    from emocontext.errors import ConfigError, VideoDecodeError

    pred = make_prediction(tmp_path / "missing.mp4", context=False)
    with pytest.raises(VideoDecodeError, match="no such file"):
        explain(pred, tmp_path / "out")
    with pytest.raises(ConfigError, match="key_frames must be >= 0"):
        explain(make_prediction(video, context=False), tmp_path / "out", key_frames=-1)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
