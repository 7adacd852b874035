from __future__ import annotations

import cv2
import numpy as np
import pytest

from emocontext.video import align
from emocontext.video.align import TEMPLATE, aligned_face, alignment_matrix
from emocontext.video.pipeline import StreamConfig
from emocontext.video.streams import face_crop


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([r, [[tx], [ty]]])


def _face_in_frame(m: np.ndarray, size: int = 128, frame_hw=(480, 640)) -> tuple[np.ndarray, np.ndarray]:
    """A frame holding a dot at each template landmark of a ``size`` px face moved into the frame by ``m``;
    returns the frame and the landmarks in frame pixels."""
    pts = TEMPLATE * size
    lm = pts @ m[:, :2].T + m[:, 2]
    frame = np.zeros((*frame_hw, 3), np.uint8)
    for x, y in lm:
        cv2.circle(
            frame,
            (round(x), round(y)),
            max(2, round(0.03 * size * np.sqrt(abs(np.linalg.det(m[:, :2]))))),
            (255,) * 3,
            -1,
        )
    return frame, lm.astype(np.float32)


def test_template_is_a_face_layout():
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = TEMPLATE
    assert lex < nx < rex and lmx < nx < rmx  # eyes and mouth corners either side of the nose
    assert max(ley, rey) < ny < min(lmy, rmy)  # eyes above the nose, the nose above the mouth
    assert ((TEMPLATE > 0) & (TEMPLATE < 1)).all()


@pytest.mark.parametrize(("angle", "scale"), [(0, 1.0), (25, 2.5), (-15, 0.6), (40, 4.0)])
def test_aligned_face_puts_the_landmarks_on_the_template(angle, scale):
    size = 128
    frame, lm = _face_in_frame(_similarity(angle, scale, 300, 120), size, frame_hw=(800, 900))
    crop = aligned_face(frame, lm, size=size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    for x, y in TEMPLATE * size:  # every dot comes back to its template place
        assert crop[int(round(y)), int(round(x))].max() > 100, (angle, scale, x, y)


def test_alignment_matrix_inverts_a_similarity():
    m = _similarity(30, 3.0, 50, 80)
    lm = TEMPLATE * 128 @ m[:, :2].T + m[:, 2]
    back = alignment_matrix(lm, 128)
    np.testing.assert_allclose(cv2.transform(lm[None].astype(np.float32), back)[0], TEMPLATE * 128, atol=1e-2)


def test_degenerate_landmarks_fall_back_to_the_box_crop():
    frame = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    same_spot = np.full((5, 2), 50, np.float32)
    assert aligned_face(frame, same_spot, size=64) is None
    np.testing.assert_array_equal(
        face_crop(frame, (30, 30, 70, 70), size=64, landmarks=same_spot), face_crop(frame, (30, 30, 70, 70), size=64)
    )


def test_large_face_is_shrunk_without_aliasing():
    """A face 4x the crop goes through area averaging first: a fine stripe pattern averages to grey instead of
    aliasing into coarse stripes."""
    size = 64
    m = _similarity(0, 4.0, 40, 40)
    frame = np.zeros((400, 400, 3), np.uint8)
    frame[:, ::2] = 255  # 1 px stripes: 8 stripes per output pixel
    lm = (TEMPLATE * size @ m[:, :2].T + m[:, 2]).astype(np.float32)
    crop = aligned_face(frame, lm, size=size)
    inner = crop[8:-8, 8:-8].astype(float)
    assert abs(inner.mean() - 127.5) < 10 and inner.std() < 20


def test_stream_config_records_the_framing():
    sig = StreamConfig().signature()
    assert sig["face_align"] is True and sig["face_margin"] == align.BOX_MARGIN
    assert StreamConfig(face_align=False).signature()["face_align"] is False


class _LandmarkDetector:
    """A stand-in detector: the box and landmarks of the dots drawn by :func:`_face_in_frame`."""

    name = "dots"

    def __init__(self, landmarks: np.ndarray):
        self.landmarks = landmarks

    def detect(self, frame):
        from emocontext.video.faces import Detection

        lm = self.landmarks
        (x1, y1), (x2, y2) = lm.min(0) - 10, lm.max(0) + 10
        return [Detection((x1, y1, x2, y2), 0.99, lm)]


def test_pipeline_aligns_faces_with_landmarks_and_not_without(tmp_path):
    from emocontext.video.pipeline import video_streams

    frame, lm = _face_in_frame(_similarity(20, 1.5, 220, 150), 128, frame_hw=(360, 480))
    path = tmp_path / "still.png"  # a lossless still: the pipeline's frame is exactly ``frame``
    cv2.imwrite(str(path), frame[..., ::-1])
    detector = _LandmarkDetector(lm)
    aligned = video_streams(path, detector, StreamConfig(fps=5)).face[0]
    boxed = video_streams(path, detector, StreamConfig(fps=5, face_align=False)).face[0]
    np.testing.assert_array_equal(aligned, aligned_face(frame, lm, size=128))
    hits = [aligned[int(round(y)), int(round(x))].max() > 100 for x, y in TEMPLATE * 128]
    assert all(hits)
    assert not np.array_equal(aligned, boxed)


class _DotDetector:
    """Finds the five dots of an upright :func:`_face_in_frame` face in whatever image it is given."""

    name = "dots"

    def detect(self, frame):
        from emocontext.video.faces import Detection

        n, _, stats, centres = cv2.connectedComponentsWithStats((frame[..., 0] > 100).astype(np.uint8))
        if n < 6:
            return []
        dots = centres[1:][np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:5]]
        dots = dots[np.argsort(dots[:, 1])]  # by height: eyes, nose, mouth corners
        lm = np.concatenate([dots[:2][np.argsort(dots[:2, 0])], dots[2:3], dots[3:][np.argsort(dots[3:, 0])]])
        (x1, y1), (x2, y2) = lm.min(0) - 10, lm.max(0) + 10
        return [Detection((x1, y1, x2, y2), 0.99, lm)]


def test_given_box_takes_the_landmarks_of_the_face_found_near_it():
    from emocontext.video.faces import GivenBoxDetector

    frame, lm = _face_in_frame(_similarity(0, 1.0, 200, 100), 128)
    (x1, y1), (x2, y2) = lm.min(0) - 12, lm.max(0) + 12
    plain = GivenBoxDetector((x1, y1, x2, y2)).detect(frame)[0]
    assert plain.landmarks is None
    found = GivenBoxDetector((x1, y1, x2, y2), landmarks_from=_DotDetector()).detect(frame)[0]
    assert found.box == plain.box  # the dataset's box stays
    np.testing.assert_allclose(found.landmarks, lm, atol=1.5)  # found in the window, mapped back to the frame
    far = GivenBoxDetector((400, 300, 440, 340), landmarks_from=_DotDetector()).detect(frame)[0]
    assert far.landmarks is None  # no face near that box
