"""A job's pictures: every person boxed and numbered on the key frame, a face thumbnail per person."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.inference import FramePrediction, PersonPrediction, Prediction  # noqa: E402
from emocontext.serve.explain import (  # noqa: E402
    OTHER_BOX,
    THUMBNAIL_SIZE,
    frame_times,
    numbered_view,
    write_job_outputs,
    write_key_frames,
    write_thumbnails,
)

BOXES = {1: [20.0, 30.0, 80.0, 100.0], 2: [150.0, 40.0, 210.0, 110.0]}


def photo(tmp_path):
    img = np.full((160, 240, 3), 90, np.uint8)
    img[30:100, 20:80] = (200, 40, 40)  # person 1's "face": red
    img[40:110, 150:210] = (40, 40, 200)  # person 2's: blue
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


def prediction() -> Prediction:
    probs = {"happy": 0.9, "sad": 0.1}
    persons = [
        PersonPrediction(pid, pid == 2, "happy", 0.9, probs, 1, 0.0, 0.0, [FramePrediction(0.0, True, box, probs)])
        for pid, box in BOXES.items()
    ]
    frame = FramePrediction(0.0, True, BOXES[2], probs, source="face")
    return Prediction(
        "photo.png", "happy", 0.9, probs, 1, 1, [frame], frame_wh=(240, 160), persons=persons, subject_id=2
    )


def test_every_person_is_boxed_and_numbered(tmp_path):
    from emocontext.report.plots import FACE_BOX_COLOR

    image = cv2.cvtColor(cv2.imread(str(photo(tmp_path))), cv2.COLOR_BGR2RGB)
    shown = numbered_view(prediction(), 0, image)
    assert shown.shape == image.shape
    x1, y1, x2, y2 = (int(v) for v in BOXES[1])
    assert tuple(shown[(y1 + y2) // 2, x2]) == OTHER_BOX  # the box's right edge, in the other persons' colour
    x1, y1, x2, y2 = (int(v) for v in BOXES[2])
    assert tuple(shown[(y1 + y2) // 2, x2]) == FACE_BOX_COLOR  # the subject's, green
    # a filled tag with the number at each box's top-left corner, dark text on the box colour
    tag = shown[max(0, 30 - 20) : 30, 20:40]
    assert (tag == OTHER_BOX).all(axis=-1).mean() > 0.4 and (tag.sum(axis=-1) < 100).any()


def test_key_frames_and_thumbnails_are_written(tmp_path):
    path = photo(tmp_path)
    out = tmp_path / "job"
    out.mkdir()
    pred = prediction()
    assert frame_times(pred) == [0.0, 0.0, 0.0]  # the key frame, then each person's best face
    images = {0.0: cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)}
    frames = write_key_frames(pred, images, out)
    assert frames == [{"frame": 0, "timestamp": 0.0, "file": "keyframe-0.png", "persons": [1, 2]}]
    thumbs = write_thumbnails(pred, images, out)
    assert thumbs == [
        {"id": 1, "subject": False, "file": "person-1.png"},
        {"id": 2, "subject": True, "file": "person-2.png"},
    ]
    red = cv2.cvtColor(cv2.imread(str(out / "person-1.png")), cv2.COLOR_BGR2RGB)
    blue = cv2.cvtColor(cv2.imread(str(out / "person-2.png")), cv2.COLOR_BGR2RGB)
    assert red.shape == (THUMBNAIL_SIZE, THUMBNAIL_SIZE, 3)
    centre = slice(THUMBNAIL_SIZE // 3, 2 * THUMBNAIL_SIZE // 3)
    assert red[centre, centre].mean(axis=(0, 1)).argmax() == 0 and blue[centre, centre].mean(axis=(0, 1)).argmax() == 2
    assert sorted(p.name for p in out.iterdir()) == ["keyframe-0.png", "person-1.png", "person-2.png"]


def test_job_outputs_come_from_one_decoding(tmp_path, monkeypatch):
    """report.explain writes the report and the annotated picture and hands over the frame the key frame and the
    thumbnails are drawn on: the upload is read once."""
    from emocontext.video import decode

    path = photo(tmp_path)
    out = tmp_path / "job"
    out.mkdir()
    reads = []
    real = decode._read_image
    monkeypatch.setattr(decode, "_read_image", lambda p: reads.append(p) or real(p))
    stages = []
    got = write_job_outputs(prediction(), path, out, stages.append)
    assert len(reads) == 1 and stages == ["annotate", "report"]
    assert got == {
        "key_frames": [{"frame": 0, "timestamp": 0.0, "file": "keyframe-0.png", "persons": [1, 2]}],
        "persons": [
            {"id": 1, "subject": False, "file": "person-1.png"},
            {"id": 2, "subject": True, "file": "person-2.png"},
        ],
        "outputs": {"report": "report.html", "annotated": "annotated.png"},
    }
    names = ["annotated.png", "keyframe-0.png", "person-1.png", "person-2.png", "report.html"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert "photo.png" in (out / "report.html").read_text()
