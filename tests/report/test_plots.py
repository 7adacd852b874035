from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from emocontext.report import attention_overlay, timeline_figure
from emocontext.report.plots import figure_png, image_png, probability_bars_figure
from tests.report.conftest import LABELS, N_SAMPLED, NO_FACE, make_prediction, one_hot_attention

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("row,col", [(0, 0), (2, 5), (6, 3)])
def test_attention_overlay_brightest_where_attention_peaks(row, col):
    h, w = 100, 140
    frame = np.full((h, w, 3), 128, np.uint8)
    box = [20.0, 0.0, 120.0, 100.0]  # the centre square the context stream saw
    out = attention_overlay(frame, one_hot_attention(row, col), box)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (frame == 128).all()  # input untouched
    y, x = np.unravel_index(np.argmax(_luma(out)), (h, w))
    cell = 100 / 7
    assert int((x - 20) // cell) == col and int(y // cell) == row
    # the peak cell is brighter than the input, the cells far from it are not
    assert _luma(out)[y, x] > 160
    far_r, far_c = (6 - row, 6 - col) if (row, col) != (6 - row, 6 - col) else (0, 6)
    fy, fx = int((far_r + 0.5) * cell), int(20 + (far_c + 0.5) * cell)
    assert _luma(out)[fy, fx] < 128
    # outside the context box: darkened, unchanged otherwise (grey stays grey)
    outside = out[:, :20]
    assert (outside < 128).all() and np.ptp(outside) == 0


def test_attention_overlay_draws_face_box_and_covers_whole_frame_without_box():
    frame = np.full((60, 80, 3), 100, np.uint8)
    att = np.full((7, 7), 1 / 49)
    out = attention_overlay(frame, att, None, face_box=[10, 10, 40, 50])
    assert tuple(out[10, 25]) == (0, 255, 0)  # green top edge of the box
    assert tuple(out[30, 25]) != (0, 255, 0)
    # uniform attention: one colour everywhere inside the box (no hot spot), scaled to the lower half
    inner = out[20:40, 50:70].reshape(-1, 3).astype(int)
    assert np.ptp(inner, axis=0).max() <= 2  # float rounding only
    assert _luma(inner).mean() < 128


def test_attention_overlay_rejects_bad_input():
    frame = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="2-D"):
        attention_overlay(frame, [1.0, 2.0], None)
    with pytest.raises(ValueError, match="RGB uint8"):
        attention_overlay(frame.astype(np.float32), np.ones((7, 7)), None)
    with pytest.raises(ValueError, match="overlap"):
        attention_overlay(frame, np.ones((7, 7)), [30, 30, 40, 40])


def test_timeline_face_only_has_gaps_for_frames_without_probabilities(tmp_path):
    pred = make_prediction(tmp_path / "x.mp4", context=False)
    fig = timeline_figure(pred)
    assert isinstance(fig, Figure) and len(fig.axes) == 1  # no fusion weights: no lambda axis
    lines = fig.axes[0].get_lines()
    assert [ln.get_label().split(" ")[0] for ln in lines] == LABELS
    for ln in lines:
        y = np.asarray(ln.get_ydata(), dtype=float)
        assert len(y) == N_SAMPLED
        assert all(math.isnan(y[k]) == (k in NO_FACE) for k in range(N_SAMPLED))
    clip = next(ln for ln in lines if ln.get_label() == f"{pred.label} (clip)")
    assert clip.get_linewidth() > max(ln.get_linewidth() for ln in lines if ln is not clip)
    assert figure_png(fig).startswith(PNG_MAGIC)


def test_timeline_context_model_has_lambda_axis():
    pred = make_prediction("x.mp4", context=True)
    fig = timeline_figure(pred)
    assert len(fig.axes) == 2
    lam = np.asarray(fig.axes[1].get_lines()[0].get_ydata(), dtype=float)
    assert lam.tolist() == [0.0 if k in NO_FACE else 0.6 for k in range(N_SAMPLED)]
    # the frames without a face are shaded (one band for the run 7..9, in both axes)
    assert len(fig.axes[0].patches) == 1 and len(fig.axes[1].patches) == 1
    assert figure_png(fig).startswith(PNG_MAGIC)


def test_timeline_and_bars_without_anything():
    pred = make_prediction("x.mp4", context=False, no_face_everywhere=True)
    assert pred.label is None and pred.probabilities == {}
    assert figure_png(timeline_figure(pred)).startswith(PNG_MAGIC)
    pred.frames, pred.num_frames = [], 0
    assert figure_png(timeline_figure(pred)).startswith(PNG_MAGIC)
    assert figure_png(probability_bars_figure({})).startswith(PNG_MAGIC)


def test_probability_bars_and_image_png():
    fig = probability_bars_figure({"happy": 0.7, "sad": 0.2, "neutral": 0.1})
    widths = [p.get_width() for p in fig.axes[0].patches]
    assert widths == pytest.approx([0.7, 0.2, 0.1])
    assert figure_png(fig, dpi=50).startswith(PNG_MAGIC)
    assert image_png(np.zeros((4, 6, 3), np.uint8)).startswith(PNG_MAGIC)
    with pytest.raises(ValueError):
        image_png(np.zeros((4, 6, 3), np.float32))
