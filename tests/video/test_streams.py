from __future__ import annotations

import numpy as np

from emocontext.video.streams import context_crop, face_crop, hide_face, square_box


def test_square_box_centred_with_margin():
    x1, y1, x2, y2 = square_box((10, 20, 30, 60), margin=0.25)
    assert (x2 - x1) == (y2 - y1) == 60
    assert (x1 + x2) / 2 == 20 and (y1 + y2) / 2 == 40


def test_face_crop_size_and_content():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = 255  # a white "face"
    crop = face_crop(frame, (90, 40, 110, 60), size=128, margin=0.0)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    assert crop[10:-10, 10:-10].min() > 200


def test_face_crop_outside_frame_replicates_border():
    frame = np.full((50, 50, 3), 77, np.uint8)
    crop = face_crop(frame, (-20, -20, 10, 10), size=32)
    assert crop.shape == (32, 32, 3) and (crop == 77).all()


def test_context_crop_is_centre_square():
    frame = np.zeros((100, 300, 3), np.uint8)
    frame[:, 100:200] = 200  # the centre square
    c = context_crop(frame, size=50)
    assert c.shape == (50, 50, 3) and c.min() == 200


def test_hide_face_blacks_out_box_only():
    frame = np.full((100, 100, 3), 128, np.uint8)
    hidden = hide_face(frame, (40, 40, 60, 60), margin=0.0)
    assert (hidden[40:60, 40:60] == 0).all()
    assert (hidden[:40] == 128).all() and (hidden[60:] == 128).all()
    assert (frame == 128).all()  # input untouched
    c = context_crop(frame, size=100, hide=(40, 40, 60, 60))
    assert c[50, 50].max() == 0 and c[10, 10].min() == 128
