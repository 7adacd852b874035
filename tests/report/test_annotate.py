from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from emocontext.errors import ConfigError, VideoDecodeError
from emocontext.report import write_annotated_video
from emocontext.report.annotate import STILL_VIDEO_FPS, annotate_frame
from tests.report.conftest import N_FRAMES, VIDEO_FPS, H, W, make_frames, make_prediction, rect_box


def _decode(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return frames, s.average_rate, s.codec_context.name, (s.height, s.width)


def _outline(box) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the 1-px outline of an xyxy box."""
    x1, y1, x2, y2 = (int(v) for v in box)
    ys = np.r_[np.full(x2 - x1 + 1, y1), np.full(x2 - x1 + 1, y2), np.arange(y1, y2 + 1), np.arange(y1, y2 + 1)]
    xs = np.r_[np.arange(x1, x2 + 1), np.arange(x1, x2 + 1), np.full(y2 - y1 + 1, x1), np.full(y2 - y1 + 1, x2)]
    return ys, xs


@pytest.mark.parametrize("context", [True, False])
def test_annotated_video_keeps_frames_and_rate_and_draws_the_box(tmp_path, video, context):
    pred = make_prediction(video, context=context)
    out = write_annotated_video(pred, tmp_path / "annotated.mp4")
    assert out == tmp_path / "annotated.mp4"
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.mp4"]  # temp file moved into place
    src, src_rate, _, _ = _decode(video)
    ann, rate, codec, size = _decode(out)
    assert codec == "h264" and size == (H, W)
    assert abs(len(ann) - len(src)) <= 1 and len(src) == N_FRAMES
    assert float(rate) == pytest.approx(float(src_rate)) == VIDEO_FPS
    # video frame 4 is sampled frame 2 exactly: the green box is drawn around the rectangle
    ys, xs = _outline(rect_box(4))
    diff = np.abs(ann[4].astype(int) - src[4].astype(int))[ys, xs].sum(-1)
    assert diff.mean() > 60
    gain = ann[4][ys, xs].astype(int) - src[4][ys, xs].astype(int)
    assert gain[:, 1].mean() > 80 and gain[:, 1].mean() > 2 * abs(gain[:, 0].mean())  # the outline turned green
    # far from the box and the bar panel (top-right here), the frame is unchanged up to codec noise
    assert np.abs(ann[4][-4:, :8].astype(int) - src[4][-4:, :8].astype(int)).max() < 25
    # a frame without a face (video frame 16 = sampled frame 8): no box, the rest of the frame unchanged
    assert np.abs(ann[16][:, -24:].astype(int) - src[16][:, -24:].astype(int)).max() < 25


def test_other_container_and_odd_sized_input(tmp_path):
    from tests.conftest import encode_video

    frames = np.zeros((6, 36, 50, 3), np.uint8)
    frames[:, 10:20, 10:20] = 200
    path = encode_video(tmp_path / "v.mp4", frames, fps=6)
    pred = make_prediction(path, context=False)
    pred.frame_wh = (50, 36)
    ann, rate, codec, size = _decode(write_annotated_video(pred, tmp_path / "a.mkv"))
    assert codec == "h264" and size == (36, 50) and len(ann) == 6 and float(rate) == 6
    # an odd-sized (still) input is padded by one pixel to even sizes for yuv420p
    odd = tmp_path / "odd.png"
    cv2.imwrite(str(odd), np.full((37, 51, 3), 90, np.uint8))
    pred = make_prediction(odd, context=False)
    pred.frames, pred.frame_wh = pred.frames[:1], (51, 37)
    _, _, _, size = _decode(write_annotated_video(pred, tmp_path / "odd.mp4"))
    assert size == (38, 52)


def test_boxes_are_scaled_to_the_frame_size():
    pred = make_prediction("x.mp4", context=True)  # boxes in pixels of 64 x 48 frames
    big = np.zeros((2 * H, 2 * W, 3), np.uint8)
    out = annotate_frame(big, pred, pred.frames[2])  # box (12, 16, 28, 32) -> (24, 32, 56, 64)
    assert tuple(out[64, 40]) == (0, 255, 0) and tuple(out[32, 40]) == (0, 255, 0)  # bottom and top edge
    assert tuple(out[48, 40]) == (0, 0, 0)  # inside the box: untouched


def test_frames_past_the_analysed_part_are_marked(tmp_path, video):
    pred = make_prediction(video, context=True)
    pred.frames = pred.frames[:3]  # as with max_duration=0.6 s
    out = write_annotated_video(pred, tmp_path / "a.mp4")
    ann, _, _, _ = _decode(out)
    assert len(ann) == N_FRAMES
    plain = annotate_frame(make_frames()[19], pred, None, analysed=False)
    assert np.abs(ann[19].astype(int) - plain.astype(int)).mean() < 12  # lossy codec


def test_still_image_to_image_and_to_one_second_video(tmp_path):
    img = make_frames()[4]
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    pred = make_prediction(src, context=True)
    pred.frames = pred.frames[:1]
    pred.frames[0].box = rect_box(4)
    pred.num_frames = 1
    out = write_annotated_video(pred, tmp_path / "photo_annotated.png")
    got = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert got.shape == img.shape and np.array_equal(got, annotate_frame(img, pred, pred.frames[0]))
    assert not np.array_equal(got, img)
    ann, rate, codec, size = _decode(write_annotated_video(pred, tmp_path / "photo.mp4"))
    assert codec == "h264" and size == (H, W) and float(rate) == STILL_VIDEO_FPS and len(ann) == STILL_VIDEO_FPS


def test_errors_leave_no_file(tmp_path, video, context_prediction):
    with pytest.raises(VideoDecodeError, match="no such file"):
        write_annotated_video(context_prediction, tmp_path / "a.mp4", video_path=tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(VideoDecodeError):
        write_annotated_video(context_prediction, tmp_path / "a.mp4", video_path=bad)
    with pytest.raises(ConfigError, match="video output"):
        write_annotated_video(context_prediction, tmp_path / "a.png")
    with pytest.raises(ConfigError, match="unsupported output suffix"):
        write_annotated_video(context_prediction, tmp_path / "a.avi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


def test_variable_frame_rate_timing_is_kept(tmp_path):
    from tests.conftest import encode_video

    pts = [0.0, 0.1, 0.15, 0.5, 0.55, 1.0, 1.3]
    frames = np.zeros((len(pts), 48, 64, 3), np.uint8)
    path = encode_video(tmp_path / "vfr.mp4", frames, fps=100, pts_seconds=pts)  # codec clock 1/100 s
    out = write_annotated_video(make_prediction(path, context=True), tmp_path / "a.mp4")
    with av.open(str(out)) as c:
        times = [f.time for f in c.decode(video=0)]
    assert times == pytest.approx(pts, abs=0.002)
