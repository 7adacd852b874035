"""Every person: tracking through a crossing, person ids, per-person streams, the whole-frame 'detector'."""

from __future__ import annotations

import numpy as np
import pytest

from emocontext.video.faces import Detection, WholeFrameDetector, create_detector, track_faces
from emocontext.video.pipeline import StreamConfig, video_streams
from tests.conftest import encode_video


def _crossing_detections(n=15, hide=(6, 7, 8)):
    """Two faces walking past each other; the one behind is not detected while it is hidden."""
    per_frame = []
    for t in range(n):
        a = 10 + 16 * t  # moves right
        b = 234 - 16 * t  # moves left
        dets = [Detection((a, 40, a + 60, 100), 0.99)]
        if t not in hide:
            dets.append(Detection((b, 50, b + 60, 110), 0.98))
        per_frame.append(dets)
    return per_frame


def test_tracks_keep_their_ids_through_a_crossing():
    tracks = track_faces(_crossing_detections())
    assert len(tracks) == 2
    for tr in tracks:
        xs = [tr.detections[t].box[0] for t in tr.frames]
        steps = np.diff(xs)
        assert (steps > 0).all() or (steps < 0).all(), xs  # each track moves one way: no swap


def test_greedy_iou_on_last_box_alone_would_swap():
    """The case the prediction fixes: right after the crossing, the last boxes overlap the wrong detections."""
    per_frame = _crossing_detections(hide=())
    tracks = track_faces(per_frame)
    assert len(tracks) == 2 and all(len(tr) == 15 for tr in tracks)
    right = next(tr for tr in tracks if tr.detections[0].box[0] < 100)
    assert [right.detections[t].box[0] for t in right.frames] == [10 + 16 * t for t in range(15)]


def test_appearance_breaks_ties():
    # two faces side by side that swap places between two frames (a cut): appearance keeps them apart
    look_a, look_b = np.ones(192, np.float32), -np.ones(192, np.float32)
    dets = [
        [Detection((0, 0, 50, 50), 1), Detection((10, 0, 60, 50), 1)],
        [Detection((0, 0, 50, 50), 1), Detection((10, 0, 60, 50), 1)],
    ]
    tracks = track_faces(dets, appearance=[[look_a, look_b], [look_b, look_a]])
    assert tracks[0].detections[1].box == (10.0, 0.0, 60.0, 50.0)
    assert track_faces(dets)[0].detections[1].box == (0.0, 0.0, 50.0, 50.0)  # boxes alone: no swap seen


class TwoFaces:
    """A fixed left face in every frame and a right face in the last 6 of 10."""

    name = "two_faces"

    def __init__(self):
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        dets = [Detection((4.0, 10.0, 36.0, 42.0), 0.99)]
        if self.calls > 4:
            dets.append(Detection((56.0, 12.0, 88.0, 44.0), 0.97))
        return dets


@pytest.fixture(scope="module")
def two_face_clip(tmp_path_factory):
    frames = np.zeros((10, 64, 96, 3), np.uint8)
    frames[:, :, :48] = (200, 60, 60)  # left half red, right half blue: each person's crop differs
    frames[:, :, 48:] = (60, 60, 200)
    return encode_video(tmp_path_factory.mktemp("v") / "two.mp4", frames, fps=5)


def test_every_person_gets_a_stream_and_the_subject_is_the_most_persistent(two_face_clip):
    s = video_streams(two_face_clip, TwoFaces(), StreamConfig(hide_face=True), persons=True)
    assert [p.person_id for p in s.persons] == [1, 2]
    assert [p.frames_with_face for p in s.persons] == [10, 6] and s.subject_id == 1
    np.testing.assert_array_equal(s.face_present, s.persons[0].face_present)
    left, right = s.persons
    assert left.face[0].mean(axis=(0, 1))[0] > 150 and right.face[-1].mean(axis=(0, 1))[2] > 150
    # each person's context hides their own face, not the other's
    for p in s.persons:
        ctx = s.for_person(p.person_id).context[-1]
        x0, _, x1, _ = StreamConfig().to_context_coords(p.boxes[-1], s.frame_size).clip(0, 224).round().astype(int)
        assert ctx[100:140, x0 + 4 : x1 - 4].max() == 0, p.person_id
    other = s.for_person(2).context[-1]
    x0, _, x1, _ = (
        StreamConfig().to_context_coords(s.persons[0].boxes[-1], s.frame_size).clip(0, 224).round().astype(int)
    )
    assert other[100:140, x0 + 4 : x1 - 4].max() > 0  # person 1's face is visible in person 2's context


def test_subject_only_streams_keep_one_person(two_face_clip):
    s = video_streams(two_face_clip, TwoFaces(), StreamConfig())
    assert [p.person_id for p in s.persons] == [1] and s.subject_id == 1


def test_whole_frame_detector_feeds_the_frame_unresized(tmp_path):
    import cv2

    img = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), img)
    s = video_streams(tmp_path / "face.png", create_detector("none"), StreamConfig(), with_context=False)
    assert isinstance(create_detector("none"), WholeFrameDetector)
    assert s.face.shape == (1, 48, 48, 3) and s.face_present.all()
    np.testing.assert_array_equal(s.face[0], cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    assert s.boxes[0].tolist() == [0, 0, 48, 48]
