"""Video file -> streams: masking of face-less frames, face hiding, and the real clips."""

from __future__ import annotations

import numpy as np
import pytest

from emocontext.video.faces import Detection, create_detector
from emocontext.video.pipeline import StageTimes, StreamConfig, video_streams
from tests.conftest import data_path, encode_video


class SquareDetector:
    """Finds the bright square drawn by :func:`square_video` (a stand-in face), or nothing."""

    name = "square"

    def detect(self, frame):
        ys, xs = np.nonzero(frame[..., 0] > 200)
        if len(xs) < 20:
            return []
        return [Detection((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)), 0.99)]


def square_video(path, n=10, present=lambda i: i < 6):
    frames = np.full((n, 120, 160, 3), 60, np.uint8)
    for i in range(n):
        if present(i):
            frames[i, 40:80, 60:100] = 255
    return encode_video(path, frames, fps=5)


def test_faceless_frames_are_masked_not_dropped(tmp_path):
    path = square_video(tmp_path / "v.mp4")
    times = StageTimes()
    s = video_streams(path, SquareDetector(), StreamConfig(fps=5), times=times)
    assert len(s) == 10 and s.face.shape == (10, 128, 128, 3) and s.context.shape == (10, 224, 224, 3)
    assert s.face_present.tolist() == [True] * 6 + [False] * 4
    assert (s.face[~s.face_present] == 0).all() and s.face[0].mean() > 150
    np.testing.assert_allclose(s.boxes[0], [60, 40, 100, 80], atol=2)
    assert not s.boxes[~s.face_present].any()
    assert set(times.seconds) >= {"decode", "detect", "crop", "track"}


def test_hide_face_blacks_out_the_subject_in_context(tmp_path):
    path = square_video(tmp_path / "v.mp4", present=lambda i: True)
    shown = video_streams(path, SquareDetector(), StreamConfig(fps=5))
    hidden = video_streams(path, SquareDetector(), StreamConfig(fps=5, hide_face=True))
    # the square sits at the centre of the 120x120 centre crop -> centre of the 224 context frame
    assert shown.context[0, 112, 112].min() > 200
    assert hidden.context[0, 112, 112].max() < 10
    assert hidden.context[0, 10, 10].min() > 40  # the rest of the scene is untouched


@pytest.mark.realdata
@pytest.mark.parametrize("emotion", ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"])
def test_crema_d_face_found_in_most_frames(emotion):
    path = data_path("videos", "crema-d", f"1001_DFA_{emotion}_XX.flv")
    s = video_streams(path, _mtcnn(), StreamConfig())
    assert s.face_present.mean() >= 0.9, s.face_present
    w = s.boxes[s.face_present, 2] - s.boxes[s.face_present, 0]
    assert (w > 50).all()  # head and shoulders at 480x360: a big face


@pytest.mark.realdata
def test_face_then_no_face_is_masked():
    s = video_streams(data_path("videos", "unlabeled", "face_noface.mov"), _mtcnn(), StreamConfig())
    t = s.timestamps
    assert s.face_present[t < 2.0].mean() >= 0.9  # the face is there ...
    assert not s.face_present[t >= 3.0].any()  # ... then the scene has no face: masked
    assert len(s) == len(t) and s.context.shape[0] == len(t)  # no frame dropped


@pytest.mark.realdata
def test_no_face_then_face():
    s = video_streams(data_path("videos", "unlabeled", "noface_face.mov"), _mtcnn(), StreamConfig())
    assert s.face_present.any() and not s.face_present[0]


@pytest.mark.realdata
def test_ravdess_and_single_face():
    for parts in [("ravdess", "01-01-08-02-01-01-19.mp4"), ("unlabeled", "single_face.mp4")]:
        s = video_streams(data_path("videos", *parts), _mtcnn(), StreamConfig())
        assert s.face_present.mean() >= 0.9, parts


_DET = {}


def _mtcnn():
    if "m" not in _DET:
        _DET["m"] = create_detector("mtcnn")
    return _DET["m"]


def test_crop_store_keeps_every_crop_across_blocks():
    from emocontext.video.pipeline import _CropStore

    store = _CropStore()
    store.BLOCK_BYTES = 5 * 12  # five 2x2x3 crops a block
    crops = [np.full((2, 2, 3), i, np.uint8) for i in range(12)]
    assert [store.add(c) for c in crops] == list(range(12))
    assert all((store[i] == crops[i]).all() for i in range(12))
    assert len(store._blocks) == 3


@pytest.mark.parametrize("fixed_box", [True, False])
def test_a_fixed_box_detector_sees_every_whole_frame(tmp_path, fixed_box):
    """A detector that returns a known box (fixed_box) is asked on every whole frame; a searching one only on key
    frames, and near the face between them (the attribute decides, not the detector's name)."""

    class Recorder(SquareDetector):
        name = "given_box"  # the name no longer matters

        def __init__(self):
            self.sizes = []

        def detect(self, frame):
            self.sizes.append(frame.shape[:2])
            return super().detect(frame)

    det = Recorder()
    det.fixed_box = fixed_box
    video_streams(square_video(tmp_path / "v.mp4", present=lambda i: True), det, StreamConfig(fps=5, detect_every=5))
    whole = sum(size == (120, 160) for size in det.sizes)
    assert whole == (10 if fixed_box else 2) and (len(det.sizes) == 10 if fixed_box else len(det.sizes) > whole)


class _Squares:
    """Finds the bright squares of a frame (stand-in faces); misses every face in the calls listed in ``miss``."""

    name = "squares"

    def __init__(self, miss=()):
        self.miss, self.calls = set(miss), 0

    def detect(self, frame):
        import cv2

        from emocontext.video.faces import Detection

        self.calls += 1
        if self.calls - 1 in self.miss:
            return []
        mask = (frame[..., 0] > 200).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [
            Detection((float(x), float(y), float(x + w), float(y + h)), 0.99)
            for x, y, w, h, area in stats[1:n]
            if area >= 20
        ]


def _two_people_video(path, n=6):
    from tests.conftest import encode_video

    frames = np.full((n, 120, 160, 3), 60, np.uint8)
    frames[:, 40:80, 60:100] = 255  # the subject: large, centre
    frames[:, 10:30, 125:145] = 255  # another person: small, top right
    return encode_video(path, frames, fps=5)


def test_hide_undetected_keeps_the_face_hidden_where_the_detector_missed_it(tmp_path):
    path = _two_people_video(tmp_path / "v.mp4")
    leaky = video_streams(path, _Squares(miss={2, 3}), StreamConfig(fps=5, hide_face=True))
    assert leaky.face_present.tolist() == [True, True, False, False, True, True]
    assert leaky.context[2, 112, 112].min() > 200  # before: the missed face shows in the context stream
    held = video_streams(path, _Squares(miss={2, 3}), StreamConfig(fps=5, hide_face=True, hide_undetected=True))
    assert held.face_present.tolist() == leaky.face_present.tolist()  # the face stream is unchanged
    assert held.context[:, 112, 112].max() < 10  # every frame hides the subject


def test_hide_all_faces_hides_other_people_too(tmp_path):

    path = _two_people_video(tmp_path / "v.mp4")
    # the other person's square: x 125..145 of 160, y 10..30 of 120 -> the centre crop's x 105..125 (of 120)
    one = video_streams(path, _Squares(), StreamConfig(fps=5, hide_face=True))
    every = video_streams(path, _Squares(), StreamConfig(fps=5, hide_face=True, hide_all_faces=True))
    y, x = int(20 * 224 / 120), int(115 * 224 / 120)
    assert one.context[0, y, x].min() > 200 and every.context[0, y, x].max() < 10
    assert one.context[0, 112, 112].max() < 10 and every.context[0, 112, 112].max() < 10
    assert every.context[0, 200, 20].min() > 40  # the scene stays
    assert StreamConfig(hide_face=True, hide_all_faces=True).signature()["hide_all_faces"] is True
    assert "hide_all_faces" not in StreamConfig(hide_face=True).signature()  # older stores still match
