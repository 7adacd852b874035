from __future__ import annotations

import base64
import html
import itertools
import re

import numpy as np
import pytest

from emocontext.errors import ConfigError, EmoContextError, VideoDecodeError
from emocontext.report import write_html_report
from emocontext.report.html import select_key_frames
from tests.report.conftest import NO_FACE, make_prediction

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMG_RE = re.compile(r'<img id="([^"]+)" class="([^"]+)" alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _images(text: str) -> list[tuple[str, str, bytes]]:
    return [(m[1], m[2], base64.b64decode(m[3], validate=True)) for m in IMG_RE.finditer(text)]


def _expected_images(pred, k: int = 4) -> int:
    """bars (when there are clip probabilities) + timeline + per key frame: face crop (with a face) + frame."""
    picks = select_key_frames(pred, k)
    return int(bool(pred.probabilities)) + 1 + sum(2 if pred.frames[i].face_present else 1 for i in picks)


def _assert_self_contained(text: str) -> None:
    low = text.lower()
    for bad in ('src="http', "src='http", 'href="http', "href=", "<link", "<script", "url(", "@import", "<iframe"):
        assert bad not in low, bad
    assert low.count("<img") == len(IMG_RE.findall(text))  # every image is an embedded PNG


def test_context_report_is_one_self_contained_file(tmp_path, video, context_prediction):
    out = write_html_report(context_prediction, tmp_path / "out" / "report.html")
    assert out == tmp_path / "out" / "report.html"
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left behind
    text = out.read_text("utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    _assert_self_contained(text)
    imgs = _images(text)
    assert len(imgs) == _expected_images(context_prediction)
    assert all(data.startswith(PNG_MAGIC) and len(data) > 100 for _, _, data in imgs)
    ids = [i for i, _, _ in imgs]
    assert len(set(ids)) == len(ids) and {"clip-probabilities", "timeline-plot"} <= set(ids)
    # header: escaped file name (never raw), label and confidence, model, frame counts
    assert html.escape(video.name) in text and video.name not in text
    assert f'<div class="verdict" id="clip-label">{context_prediction.label} ' in text
    assert f"{context_prediction.confidence:.1%}" in text
    assert "caer_net_expw" in text and "7 / 10 sampled" in text
    assert 'id="truncated"' not in text
    # key frames: spread in time, one read from the context alone, with the fusion weights
    assert text.count('class="card"') == 4
    assert "context only (no face)" in text
    assert "λ<sub>face</sub> = 0.00 &nbsp; λ<sub>context</sub> = 1.00" in text
    assert "λ<sub>face</sub> = 0.60 &nbsp; λ<sub>context</sub> = 0.40" in text
    # per-frame table: one row per sampled frame
    table = text.split('<table class="frames">')[1].split("</table>")[0]
    assert table.count("<tr") == 1 + context_prediction.num_frames


def test_face_only_report_with_truncation_and_overwrite(tmp_path, face_prediction):
    out = tmp_path / "r.html"
    out.write_text("old")
    face_prediction.truncated = True
    write_html_report(face_prediction, out, key_frames=3)
    text = out.read_text("utf-8")
    _assert_self_contained(text)
    assert len(_images(text)) == _expected_images(face_prediction, 3)
    assert 'id="truncated"' in text and "broke off" in text
    assert "λ" not in text.split('<section id="key-frames">')[1]  # no fusion weights for face-only models


def test_no_face_report(tmp_path, video):
    pred = make_prediction(video, context=False, no_face_everywhere=True)
    text = write_html_report(pred, tmp_path / "r.html").read_text("utf-8")
    _assert_self_contained(text)
    assert '<div class="verdict none" id="clip-label">no face found</div>' in text
    assert "clip-probabilities" not in text  # no bars without clip probabilities
    assert len(_images(text)) == _expected_images(pred) == 1 + 4
    assert "no face: no prediction for this frame" in text


def test_report_with_other_video_path_and_no_key_frames(tmp_path, video, context_prediction):
    context_prediction.path = "/nowhere/<moved>.mp4"
    with pytest.raises(VideoDecodeError, match="no such file"):
        write_html_report(context_prediction, tmp_path / "r.html")
    assert not list(tmp_path.iterdir())  # nothing written on error
    text = write_html_report(context_prediction, tmp_path / "r.html", video_path=video).read_text("utf-8")
    assert "&lt;moved&gt;.mp4" in text and len(_images(text)) == _expected_images(context_prediction)
    # key_frames=0: the video is not needed
    text = write_html_report(context_prediction, tmp_path / "r0.html", key_frames=0).read_text("utf-8")
    assert len(_images(text)) == 2 and 'id="key-frames"' not in text
    with pytest.raises(ConfigError):
        write_html_report(context_prediction, tmp_path / "r1.html", key_frames=-1)


def test_unreadable_video_raises_library_error(tmp_path, context_prediction):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(EmoContextError, match="bad.mp4"):
        write_html_report(context_prediction, tmp_path / "r.html", video_path=bad)
    assert not (tmp_path / "r.html").exists()


def test_select_key_frames(video, context_prediction, face_prediction):
    picks = select_key_frames(context_prediction, 4)
    times = [context_prediction.frames[i].timestamp for i in picks]
    assert len(picks) == 4 and picks == sorted(picks)
    assert any(i in NO_FACE for i in picks)  # a context-only frame is always shown
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= (1.8 / 5) - 1e-9  # spread in time
    assert select_key_frames(context_prediction, 0) == []
    assert select_key_frames(context_prediction, 20) == list(range(10))
    # face-only: frames without probabilities are never picked while others exist
    picks = select_key_frames(face_prediction, 4)
    assert len(picks) == 4 and not set(picks) & set(NO_FACE)
    # nothing to rank: evenly spread
    pred = make_prediction(video, context=False, no_face_everywhere=True)
    assert select_key_frames(pred, 4) == [0, 3, 6, 9]


def test_key_frames_show_the_moment_against_the_answer_and_never_repeat_one(video):
    """Issue 13: four frames at ~76 % happy were shown, not the 38 % one."""
    from emocontext.inference import FramePrediction, Prediction

    def probs(h):
        return {"happy": h, "sad": round(1 - h, 4)}

    values = [0.76, 0.76, 0.76, 0.76, 0.38, 0.76, 0.76, 0.76, 0.75, 0.76]
    frames = [FramePrediction(i * 0.2, True, [1, 1, 20, 20], probs(v), "face") for i, v in enumerate(values)]
    pred = Prediction(str(video), "happy", 0.72, probs(0.72), 10, 10, frames, fps=5.0)
    picks = select_key_frames(pred, 4)
    assert 4 in picks  # the 38 % moment
    shown = [tuple(frames[i].probabilities.items()) for i in picks]
    assert len(set(shown)) == len(shown) and len(picks) >= 3  # no moment shown twice


def test_key_frames_spread_over_the_frames_with_a_face(video):
    """A face in the first 2.2 s of a 6.2 s clip: the key frames spread over those 2.2 s instead of
    three neighbouring frames 0.2 s apart (seen on face_noface.mov)."""
    from emocontext.inference import FramePrediction, Prediction

    values = [0.93, 0.81, 0.82, 0.9990, 0.9991, 0.9992, 0.9993, 0.9994, 0.9995, 0.9996, 0.9997, 0.9998]
    frames = [
        FramePrediction(i * 0.2, True, [1, 1, 20, 20], {"happy": v, "neutral": round(1 - v, 4)}, "face")
        for i, v in enumerate(values)
    ]
    frames += [FramePrediction(i * 0.2, False, None, None, "none") for i in range(len(values), 32)]
    pred = Prediction(str(video), "happy", 0.73, {"happy": 0.73, "neutral": 0.27}, 32, len(values), frames, fps=5.0)
    picks = select_key_frames(pred, 4)
    assert len(picks) == 4 and all(frames[i].face_present for i in picks)
    times = sorted(frames[i].timestamp for i in picks)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 2.2 / 5 - 1e-9


def test_still_image_report_has_no_empty_timeline(tmp_path):
    import cv2

    from emocontext.inference import FramePrediction, Prediction
    from emocontext.report import write_html_report

    img = tmp_path / "photo.png"
    cv2.imwrite(str(img), np.full((40, 60, 3), 128, np.uint8))
    f = FramePrediction(0.0, True, [5, 5, 30, 30], {"happy": 0.8, "sad": 0.2}, "face")
    pred = Prediction(str(img), "happy", 0.8, {"happy": 0.8, "sad": 0.2}, 1, 1, [f], frame_wh=(60, 40))
    text = write_html_report(pred, tmp_path / "r.html").read_text()
    assert 'id="timeline-plot"' not in text and 'id="keyframe-0-face"' in text
