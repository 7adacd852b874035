"""Key-frame detection (``detect_every``) and the decoding thread (``prefetch``) of the video pipeline."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from emocontext.errors import ConfigError
from emocontext.video.faces import Detection, box_iou, create_detector
from emocontext.video.faces.keyframes import KeyframeDetection, detect_near
from emocontext.video.pipeline import StreamConfig, video_streams
from emocontext.video.prefetch import prefetch


class SquareFinder:
    """A real (if simple) detector: every bright blob of a dark frame is a face. Counts its calls and pixels."""

    name = "squares"

    def __init__(self):
        self.calls = 0
        self.pixels = 0

    def detect(self, frame):
        self.calls += 1
        self.pixels += frame.shape[0] * frame.shape[1]
        mask = (frame[..., 0] > 127).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        out = [Detection((x, y, x + w, y + h), 0.9) for x, y, w, h, area in stats[1:] if area > 4]
        return sorted(out, key=lambda d: -d.area)


def frame_with(squares, hw=(360, 480)):
    img = np.zeros((*hw, 3), np.uint8)
    for x, y, s in squares:
        img[y : y + s, x : x + s] = 255
    return img


def boxes(dets):
    return np.array([d.box for d in dets])


def test_detect_near_maps_boxes_back_to_the_frame():
    finder = SquareFinder()
    img = frame_with([(200, 100, 96)])  # 96 px face, shrunk to 48 px inside its window
    prev = [Detection((190, 95, 290, 195), 1.0)]  # last frame's box, 10 px away
    got = detect_near(finder, img, prev)
    assert len(got) == 1
    assert np.allclose(got[0].box, (200, 100, 296, 196), atol=2.5)
    assert finder.pixels < 0.05 * img.shape[0] * img.shape[1]  # searched a small window only
    assert detect_near(finder, img, []) == []


def test_detect_near_merges_a_face_seen_from_two_windows_and_finds_neither_far_away():
    img = frame_with([(200, 100, 60)])
    prev = [Detection((195, 95, 255, 155), 1.0), Detection((205, 105, 265, 165), 0.8)]
    assert len(detect_near(SquareFinder(), img, prev)) == 1
    far = [Detection((10, 250, 60, 300), 1.0)]
    assert detect_near(SquareFinder(), img, far) == []


@pytest.mark.parametrize("kw", [{"window": 1.0}, {"face_px": 8}])
def test_detect_near_rejects_bad_options(kw):
    with pytest.raises(ConfigError):
        detect_near(SquareFinder(), frame_with([]), [Detection((0, 0, 10, 10), 1.0)], **kw)


@pytest.mark.parametrize("every", [0, 2.5, -1])
def test_detect_every_must_be_a_whole_number(every):
    with pytest.raises(ConfigError, match="detect_every"):
        KeyframeDetection(SquareFinder(), every)
    with pytest.raises(ConfigError, match="detect_every"):
        StreamConfig(detect_every=every)


def test_key_frames_follow_a_moving_face_and_match_full_detection():
    frames = [frame_with([(50 + 12 * i, 80 + 5 * i, 70)]) for i in range(12)]
    full = SquareFinder()
    ref = [full.detect(f) for f in frames]
    kd = KeyframeDetection(SquareFinder(), 5)
    got = [kd.detect(f) for f in frames]
    assert (kd.full, kd.near) == (3, 9)  # frames 0, 5, 10 are key frames
    for r, g in zip(ref, got, strict=True):
        assert len(g) == 1 and box_iou(boxes(r), boxes(g))[0, 0] > 0.9
    one = KeyframeDetection(SquareFinder(), 1)
    assert [boxes(one.detect(f)).tolist() for f in frames] == [boxes(r).tolist() for r in ref]
    assert (one.full, one.near) == (12, 0)


def test_a_newcomer_waits_for_the_next_key_frame():
    kd = KeyframeDetection(SquareFinder(), 5)
    seq = [[(50 + 5 * i, 50, 60)] + ([(400, 250, 60)] if i >= 2 else []) for i in range(7)]
    got = [len(kd.detect(frame_with(s))) for s in seq]
    assert got == [1, 1, 1, 1, 1, 2, 2]  # the face at (400, 250) from frame 2 on is found at key frame 5
    assert (kd.full, kd.near) == (2, 5)


def test_a_face_out_of_sight_gets_full_searches_until_it_is_back_or_gone_for_good():
    kd = KeyframeDetection(SquareFinder(), 5)
    a, b = (50, 50, 60), (300, 200, 60)
    seq = [[a, b], [a, b], [a], [a], [a, (310, 200, 60)], [a, (320, 200, 60)], [a], [a], [a], [a], [a], [a]]
    got = [len(kd.detect(frame_with(s))) for s in seq]
    assert got == [2, 2, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1]  # b is found the moment it is back (frame 4)
    # full searches: key frame 0; frames 2, 3 (b lost, looked for), 4 (b found); frame 6 (b lost again), 7, 8, 9
    # (LOST_FRAMES = 4 frames of looking for it); then near searches until key frame 14
    assert kd.full == 1 + 3 + 4 and kd.near == 12 - kd.full + 2  # frames 2 and 6 tried a near search first
    assert KeyframeDetection(SquareFinder(), 5).detect(frame_with([])) == []


def test_pipeline_with_key_frames_gives_the_same_face_track(tmp_path):
    from tests.conftest import encode_video

    frames = np.stack([frame_with([(60 + 8 * i, 100 + 3 * i, 80)]) for i in range(20)])
    path = encode_video(tmp_path / "square.mp4", frames, fps=5)
    every_frame = SquareFinder()
    a = video_streams(path, every_frame, StreamConfig(fps=5), with_context=False)
    finder = SquareFinder()
    b = video_streams(path, finder, StreamConfig(fps=5, detect_every=4), with_context=False)
    assert a.face_present.all() and b.face_present.all()
    assert np.diag(box_iou(a.boxes, b.boxes)).min() > 0.9
    assert finder.calls == every_frame.calls == 20  # a full search or one window search per frame
    assert finder.pixels < every_frame.pixels / 3  # but 15 of them on a small window
    assert StreamConfig(detect_every=4).signature()["detect_every"] == 4
    assert "detect_every" not in StreamConfig().signature()  # stores made before the option still match


def test_fixed_box_detectors_ignore_detect_every(tmp_path):
    from tests.conftest import encode_video

    path = encode_video(tmp_path / "faces.mp4", np.full((6, 64, 64, 3), 128, np.uint8), fps=5)
    s = video_streams(path, create_detector("none"), StreamConfig(fps=5, detect_every=3), with_context=False)
    assert s.face_present.all()


def test_mtcnn_key_frames_on_the_shipped_clip():
    from emocontext.samples import sample_video
    from emocontext.video.decode import iter_frames

    det = create_detector("mtcnn")
    frames = [f.image for f in iter_frames(sample_video(), fps=5)]
    kd = KeyframeDetection(det, 5)
    for f in frames:
        ref, got = det.detect(f), kd.detect(f)
        assert len(ref) == len(got) == 1
        assert box_iou(boxes(ref), boxes(got))[0, 0] > 0.75
    assert kd.near >= len(frames) // 2


# --- prefetch -------------------------------------------------------------------------------------------


def test_prefetch_keeps_items_order_and_the_error_position():
    def items():
        yield from range(5)
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for x in prefetch(items(), depth=2):
            seen.append(x)
    assert seen == [0, 1, 2, 3, 4]
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_prefetch_stops_and_closes_the_source_when_the_consumer_stops():
    closed = threading.Event()

    def items():
        try:
            yield from range(10**9)
        finally:
            closed.set()

    def workers():
        return {t for t in threading.enumerate() if t.name == "emocontext-prefetch"}

    before = workers()
    gen = prefetch(items(), depth=2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    assert len(workers() - before) == 1
    gen.close()
    assert closed.is_set()
    assert workers() == before  # the thread has ended


def test_prefetch_rejects_depth_zero():
    with pytest.raises(ValueError):
        list(prefetch([], depth=0))
