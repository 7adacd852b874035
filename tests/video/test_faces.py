from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from emocontext.errors import ConfigError, NoFaceError, WeightsError
from emocontext.hub import resolve
from emocontext.video import faces
from emocontext.video.faces import (
    Detection,
    FaceDetector,
    FaceTrack,
    MTCNNDetector,
    Track,
    box_iou,
    create_detector,
    detect_track,
    list_detectors,
    nms,
    opencv,
    select_subject,
    track_faces,
    yunet,
)
from emocontext.video.faces import boxes as boxes_module
from emocontext.weights import YUNET_WEIGHTS, Weights
from tests.conftest import REPO, data_path


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a URL fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(scope="module")
def mtcnn():
    return MTCNNDetector()


def det(x1, y1, x2, y2, score=0.9, landmarks=None):
    return Detection((x1, y1, x2, y2), score, landmarks)


# ---------------------------------------------------------------------------------------------------------------------
# Detection, IoU, NMS
# ---------------------------------------------------------------------------------------------------------------------


def test_detection_is_frozen_and_normalised():
    d = Detection([1, 2, 11, 22], np.float32(0.5), np.arange(10))
    assert d.box == (1.0, 2.0, 11.0, 22.0) and isinstance(d.score, float)
    assert d.landmarks.shape == (5, 2) and d.landmarks.dtype == np.float32
    assert d.area == 200.0 and d.center == (6.0, 12.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.score = 1.0
    s = d.scaled(2.0)
    assert s.box == (2.0, 4.0, 22.0, 44.0) and s.landmarks[4, 1] == 18.0
    with pytest.raises(ConfigError):
        Detection((0, 0, 1), 1.0)


def test_box_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0])
    np.testing.assert_allclose(iou[1], 0.0)


def _reference_nms(boxes, scores, thr, mode):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        ok = True
        for k in keep:
            ix = max(0, min(boxes[i, 2], boxes[k, 2]) - max(boxes[i, 0], boxes[k, 0]))
            iy = max(0, min(boxes[i, 3], boxes[k, 3]) - max(boxes[i, 1], boxes[k, 1]))
            inter = ix * iy
            ai = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            ak = (boxes[k, 2] - boxes[k, 0]) * (boxes[k, 3] - boxes[k, 1])
            ov = inter / (ai + ak - inter) if mode == "union" else inter / min(ai, ak)
            if ov > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("matrix", [True, False])
def test_nms_matches_reference(mode, matrix, monkeypatch):
    if not matrix:
        monkeypatch.setattr(boxes_module, "_NMS_MATRIX_MAX", 0)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (150, 2))
    wh = rng.uniform(5, 40, (150, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.permutation(150).astype(np.float32)  # distinct scores: a unique answer
    for thr in (0.3, 0.5, 0.7):
        got = nms(boxes, scores, thr, mode=mode).tolist()
        assert got == _reference_nms(boxes.astype(np.float64), scores, thr, mode)


def test_nms_modes_and_edge_cases():
    big_and_inner = np.array([[0.0, 0, 100, 100], [10, 10, 30, 30]])
    scores = np.array([0.9, 0.8])
    assert nms(big_and_inner, scores, 0.7).tolist() == [0, 1]  # IoU 0.04: both kept
    assert nms(big_and_inner, scores, 0.7, mode="min").tolist() == [0]  # inner box covered: dropped
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0
    assert nms(big_and_inner, [0.1, 0.8], 0.7, mode="min").tolist() == [1]
    with pytest.raises(ConfigError):
        nms(big_and_inner, scores, 0.5, mode="max")
    with pytest.raises(ConfigError):
        nms(big_and_inner, scores[:1], 0.5)


class _FixedBackend(faces.BaseFaceDetector):
    """A backend that 'finds' fixed candidates in pixels of the downscaled image it is given."""

    name = "fixed"

    def __init__(self, candidates, max_side=None, order="score"):
        self.candidates, self.max_side, self.order = candidates, max_side, order
        self.seen_shapes = []

    def _find(self, image):
        self.seen_shapes.append(image.shape)
        return self.candidates


def test_base_detector_downscales_rescales_clips_drops_and_sorts():
    lm = np.arange(10, dtype=np.float32).reshape(5, 2)
    cands = [
        ((10, 10, 20, 20), 0.95, None),
        ((-5, 40, 30, 60), 0.9, lm),  # starts left of the frame: clipped to 0
        ((100, 0, 100.2, 5), 0.99, None),  # 0.4 px wide once rescaled: dropped
    ]
    d = _FixedBackend(cands, max_side=100)
    out = d.detect(np.zeros((100, 200, 3), np.uint8))  # long side 200 -> detected at half size
    assert d.seen_shapes == [(50, 100, 3)]
    assert [x.box for x in out] == [(20.0, 20.0, 40.0, 40.0), (0.0, 80.0, 60.0, 100.0)]  # by score
    np.testing.assert_allclose(out[1].landmarks, lm * 2)
    assert out[0].landmarks is None
    by_area = _FixedBackend(cands, max_side=100, order="area").detect(np.zeros((100, 200, 3), np.uint8))
    assert [x.score for x in by_area] == [0.9, 0.95]
    with pytest.raises(ConfigError, match="RGB uint8"):
        d.detect(np.zeros((10, 10), np.uint8))


def test_mtcnn_on_blank_tiny_and_bad_frames(mtcnn):
    assert mtcnn.detect(np.full((120, 160, 3), 128, np.uint8)) == []
    assert mtcnn.detect(np.zeros((8, 8, 3), np.uint8)) == []
    with pytest.raises(ConfigError, match="RGB uint8"):
        mtcnn.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(ConfigError, match="RGB uint8"):
        mtcnn.detect(np.zeros((32, 32, 3), np.float32))


def test_mtcnn_options_are_checked():
    with pytest.raises(ConfigError):
        MTCNNDetector(min_face_size=8)
    with pytest.raises(ConfigError):
        MTCNNDetector(thresholds=(0.6, 0.7))


# ---------------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------------


def test_create_detector_by_name(mtcnn):
    assert list_detectors() == ["mtcnn", "yunet", "haar", "dlib", "none"]
    d = create_detector("MTCNN", min_face_size=40)
    assert isinstance(d, MTCNNDetector) and d.name == "mtcnn" and d.min_face_size == 40
    assert isinstance(d, FaceDetector)
    with pytest.raises(ConfigError, match="mtcnn, yunet, haar, dlib"):
        create_detector("retinaface")
    with pytest.raises(ConfigError, match="bad option"):
        create_detector("mtcnn", no_such_option=1)


def test_dlib_missing_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(ConfigError, match="pip install dlib-bin"):
        create_detector("dlib")


def test_haar_without_cascade_support_is_a_config_error(monkeypatch):
    monkeypatch.setattr(opencv, "_cascade_classifier_class", lambda: None)
    with pytest.raises(ConfigError, match="CascadeClassifier"):
        create_detector("haar")


def test_haar_missing_cascade_file(tmp_path):
    if opencv._cascade_classifier_class() is None:
        pytest.skip("this OpenCV has no CascadeClassifier (OpenCV 5 moved it to opencv-contrib)")
    with pytest.raises(WeightsError):
        create_detector("haar", cascade=tmp_path / "missing.xml")


# ---------------------------------------------------------------------------------------------------------------------
# YuNet weights: never the network
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOCONTEXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EMOCONTEXT_YUNET", raising=False)
    return tmp_path / "cache"


def _pinned(digest: str) -> Weights:
    """The YuNet record expecting ``digest``."""
    return dataclasses.replace(YUNET_WEIGHTS, sha256={YUNET_WEIGHTS.filename: digest})


def test_yunet_not_found_tells_how_to_get_it(cache):
    with pytest.raises(WeightsError) as e:
        yunet.YuNetDetector()
    msg = str(e.value)
    assert "EMOCONTEXT_YUNET" in msg and "download=True" in msg and YUNET_WEIGHTS.url in msg
    with pytest.raises(WeightsError, match="not found"):
        yunet.YuNetDetector(cache / "nope.onnx")


def test_yunet_path_env_and_cache(cache, tmp_path, monkeypatch):
    explicit = tmp_path / "mine.onnx"
    explicit.write_bytes(b"x")
    assert resolve(YUNET_WEIGHTS, explicit) == explicit
    monkeypatch.setenv("EMOCONTEXT_YUNET", str(explicit))
    assert resolve(YUNET_WEIGHTS) == explicit
    monkeypatch.setenv("EMOCONTEXT_YUNET", str(tmp_path / "gone.onnx"))
    with pytest.raises(WeightsError, match="EMOCONTEXT_YUNET"):
        resolve(YUNET_WEIGHTS)
    monkeypatch.delenv("EMOCONTEXT_YUNET")
    cache.mkdir()
    cached = cache / YUNET_WEIGHTS.filename
    cached.write_bytes(b"model bytes")
    with pytest.raises(WeightsError, match="SHA-256"):  # a cached file must pass its checksum
        resolve(YUNET_WEIGHTS)
    assert resolve(_pinned(hashlib.sha256(b"model bytes").hexdigest())) == cached


# ---------------------------------------------------------------------------------------------------------------------
# Tracking and the subject
# ---------------------------------------------------------------------------------------------------------------------


def test_track_links_across_gaps_and_subject_is_masked_not_dropped():
    per_frame = [[det(10 + 2 * t, 10, 60 + 2 * t, 60)] for t in range(10)]
    per_frame[3] = per_frame[4] = []  # two missed frames: within max_gap
    tracks = track_faces(per_frame, max_gap=2)
    assert len(tracks) == 1 and tracks[0].frames == [0, 1, 2, 5, 6, 7, 8, 9]
    ft = select_subject(tracks, 10)
    assert len(ft) == 10 and ft.boxes.shape == (10, 4) and ft.boxes.dtype == np.float32
    np.testing.assert_array_equal(ft.present, [1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
    assert not ft.boxes[3:5].any() and not ft.scores[3:5].any()
    np.testing.assert_allclose(ft.boxes[9], [28, 10, 78, 60])
    assert ft.landmarks is None and ft.num_present == 8


def test_a_long_gap_starts_a_new_track():
    per_frame = [[det(0, 0, 50, 50)], [], [], [], [det(0, 0, 50, 50)]]
    assert len(track_faces(per_frame, max_gap=3)) == 1
    assert len(track_faces(per_frame, max_gap=2)) == 2


def test_two_people_most_persistent_wins_over_larger():
    a = (10, 10, 40, 40)  # small, present in 8 frames
    b = (100, 10, 200, 110)  # large, present in 5 frames
    per_frame = [[det(*a)] + ([det(*b)] if t < 5 else []) for t in range(8)]
    tracks = track_faces(per_frame)
    assert sorted(len(t) for t in tracks) == [5, 8]
    ft = select_subject(tracks, 8)
    assert ft.present.all()
    np.testing.assert_allclose(ft.boxes, np.tile(a, (8, 1)))


def test_two_people_tie_broken_by_area():
    small, large = (10, 10, 40, 40), (100, 10, 200, 110)
    per_frame = [[det(*small), det(*large)] for _ in range(6)]
    tracks = track_faces(per_frame)
    assert len(tracks) == 2 and all(len(t) == 6 for t in tracks)
    np.testing.assert_allclose(select_subject(tracks, 6).boxes[0], large)


def test_greedy_matching_prefers_the_higher_iou():
    per_frame = [[det(0, 0, 50, 50), det(60, 0, 110, 50)], [det(58, 0, 108, 50), det(3, 0, 53, 50)]]
    tracks = track_faces(per_frame)
    assert len(tracks) == 2
    assert tracks[0].detections[1].box[0] == 3.0 and tracks[1].detections[1].box[0] == 58.0


def test_no_face_is_an_all_absent_track_or_an_error():
    ft = select_subject(track_faces([[], [], []]), 3)
    assert len(ft) == 3 and not ft.present.any() and not ft.boxes.any()
    with pytest.raises(NoFaceError):
        select_subject([], 3, require_face=True)
    with pytest.raises(ConfigError):
        select_subject([Track(0, {5: det(0, 0, 10, 10)})], 3)
    with pytest.raises(ConfigError):
        track_faces([[]], iou_threshold=0)


class _Scripted:
    """A FaceDetector that returns a fixed list per call."""

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)

    def detect(self, frame):
        return self.script.pop(0)


def test_detect_track_with_any_detector_keeps_landmarks():
    lm = np.arange(10, dtype=np.float32).reshape(5, 2)
    script = [[det(0, 0, 20, 20, 0.8, lm)], [], [det(1, 0, 21, 20, 0.9, lm + 1)], [det(300, 300, 310, 310)]]
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    ft = detect_track(frames, _Scripted(script))
    assert isinstance(ft, FaceTrack) and len(ft) == 4
    np.testing.assert_array_equal(ft.present, [True, False, True, False])
    np.testing.assert_allclose(ft.scores, [0.8, 0, 0.9, 0])
    assert ft.landmarks.shape == (4, 5, 2) and ft.landmarks[2, 0, 0] == 1.0 and not ft.landmarks[1].any()
    with pytest.raises(NoFaceError):
        detect_track(frames[:1], _Scripted([[]]), require_face=True)


# ---------------------------------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------------------------------


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _expw_test_faces(n: int) -> list[tuple[Path, np.ndarray]]:
    expw = data_path("expw")
    with open(expw / "splits.csv", newline="") as f:
        split = {r["image"]: r["split"] for r in csv.DictReader(f)}
    with open(expw / "labels.csv", newline="") as f:
        rows = sorted(
            (r for r in csv.DictReader(f) if split.get(r["image"]) == "test"),
            key=lambda r: (r["image"], int(r["face_id"])),
        )
    return [(expw / "images" / r["image"], np.array([float(r[k]) for k in ("x1", "y1", "x2", "y2")])) for r in rows[:n]]


def _yunet_weights() -> Path:
    env = os.environ.get("EMOCONTEXT_YUNET")
    p = Path(env) if env else REPO.parent / "shared" / "weights" / YUNET_WEIGHTS.filename
    if not p.is_file():
        pytest.skip(f"YuNet weights not found: {p} (set EMOCONTEXT_YUNET)")
    return p


def _found(detector, faces_: list[tuple[Path, np.ndarray]]) -> int:
    found = 0
    for path, gt in faces_:
        d = detector.detect(_read_rgb(path))
        if d and box_iou(gt[None], np.array([x.box for x in d])).max() >= 0.3:
            found += 1
    return found


@pytest.mark.realdata
def test_mtcnn_finds_expw_faces(mtcnn):
    assert _found(mtcnn, _expw_test_faces(8)) >= 7


@pytest.mark.realdata
def test_mtcnn_finds_every_face_of_a_group_photo(mtcnn):
    img = _read_rgb(data_path("images", "multi_face.jpg"))
    d = mtcnn.detect(img)
    assert len(d) == 5
    assert [x.score for x in d] == sorted((x.score for x in d), reverse=True)
    h, w = img.shape[:2]
    for x in d:
        x1, y1, x2, y2 = x.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h and x.score > 0.9
        lm = x.landmarks
        assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left eye / mouth corner first
        assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()  # eyes above nose above mouth
    # max_side: the same faces when the frame is detected at a smaller size
    small = MTCNNDetector(max_side=500)
    d2 = small.detect(img)
    assert len(d2) == 5
    assert box_iou(np.array([x.box for x in d]), np.array([x.box for x in d2])).max(1).min() > 0.7


@pytest.mark.realdata
def test_yunet_on_real_images():
    yunet = create_detector("yunet", weights=_yunet_weights())
    assert yunet.name == "yunet" and isinstance(yunet, FaceDetector)
    d = yunet.detect(_read_rgb(data_path("images", "multi_face.jpg")))
    assert len(d) == 5 and all(x.landmarks.shape == (5, 2) for x in d)
    assert _found(yunet, _expw_test_faces(8)) >= 7


@pytest.mark.realdata
def test_track_on_a_clip_where_the_face_leaves(mtcnn):
    import av

    path = data_path("videos", "unlabeled", "face_noface.mov")
    frames = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 20 == 0:
                frames.append(f.to_ndarray(format="rgb24"))
            if i >= 120:
                break
    ft = detect_track(frames, mtcnn)
    assert len(ft) == len(frames) == 7
    assert ft.present[:3].all() and not ft.present[-3:].any()  # the face is there, then gone: masked
    assert not ft.boxes[~ft.present].any()


@pytest.mark.realdata
def test_haar_on_a_group_photo():
    if opencv._cascade_classifier_class() is None:
        pytest.skip("this OpenCV has no CascadeClassifier (OpenCV 5 moved it to opencv-contrib)")
    d = create_detector("haar").detect(_read_rgb(data_path("images", "multi_face.jpg")))
    assert len(d) >= 3 and all(x.score == 1.0 and x.landmarks is None for x in d)


def test_backends_that_keep_state_are_called_one_frame_at_a_time():
    import threading
    import time

    from emocontext.video.faces import BaseFaceDetector

    class Stateful(BaseFaceDetector):
        name = "stateful"

        def __init__(self):
            self.inside = 0
            self.most = 0

        def _find(self, image):
            self.inside += 1
            self.most = max(self.most, self.inside)
            time.sleep(0.01)
            self.inside -= 1
            return [((1, 1, 5, 5), 0.9, None)]

    def most_at_once(safe: bool) -> int:
        det = Stateful()
        det.thread_safe = safe
        frame = np.zeros((8, 8, 3), np.uint8)
        threads = [threading.Thread(target=lambda: [det.detect(frame) for _ in range(30)]) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return det.most

    assert most_at_once(False) == 1
    assert most_at_once(True) == 2  # the probe does see two threads inside when nothing serialises them
