"""Metrics against values computed by hand (see the comments)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emocontext.labels import LabelSet
from emocontext.metrics import (
    accuracy,
    average_precision,
    bootstrap_ci,
    confusion,
    evaluate_probs,
    macro_map,
    macro_precision,
    per_class_ap,
    plot_confusion,
)

# 6 samples, 3 classes; no ties within a column.
Y = np.array([0, 0, 1, 1, 2, 2])
P = np.array(
    [
        [0.90, 0.05, 0.05],  # true 0, pred 0
        [0.40, 0.50, 0.10],  # true 0, pred 1
        [0.20, 0.70, 0.10],  # true 1, pred 1
        [0.50, 0.30, 0.20],  # true 1, pred 0
        [0.10, 0.20, 0.70],  # true 2, pred 2
        [0.30, 0.10, 0.60],  # true 2, pred 2
    ]
)
# Class 0 scores in decreasing order: .9(+) .5(-) .4(+) .3(-) .2(-) .1(-)
#   hits at ranks 1 and 3: AP = (1/1 + 2/3) / 2 = 5/6
# Class 1: .7(+) .5(-) .3(+) .2(-) .1(-) .05(-)  -> AP = (1 + 2/3) / 2 = 5/6
# Class 2: .7(+) .6(+) ...                        -> AP = 1
AP = np.array([5 / 6, 5 / 6, 1.0])


def test_accuracy_from_probs_or_ids():
    assert accuracy(Y, P) == pytest.approx(4 / 6)
    assert accuracy(Y, [0, 1, 1, 0, 2, 2]) == pytest.approx(4 / 6)
    assert accuracy([1, 1], [1, 1]) == 1.0


def test_per_class_ap_and_macro_map():
    np.testing.assert_allclose(per_class_ap(Y, P), AP)
    assert macro_map(Y, P, 3) == pytest.approx((5 / 6 + 5 / 6 + 1) / 3)


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_equals_scikit_learn_with_ties(seed):
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    y = rng.random(200) < 0.3
    s = rng.integers(0, 12, 200) / 11  # 12 distinct values: many ties
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), rel=1e-12)
    assert np.isnan(average_precision(np.zeros(5, bool), np.arange(5.0)))


def test_absent_class_is_skipped():
    # only classes 0 and 2 occur; class 1 has no AP and does not count in the mean
    y = np.array([0, 2, 0])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.1, 0.2, 0.7]])
    # class 0: .8(+) .2(-) .1(+) -> (1 + 2/3)/2 = 5/6 ; class 2: .7(-) .5(+) .1(-) -> 1/2
    ap = per_class_ap(y, p)
    assert np.isnan(ap[1])
    np.testing.assert_allclose(ap[[0, 2]], [5 / 6, 1 / 2])
    assert macro_map(y, p) == pytest.approx((5 / 6 + 1 / 2) / 2)


def test_macro_precision():
    # predictions 0,1,1,0,2,2: class 0 predicted at rows 0,3 -> 1/2; class 1 rows 1,2 -> 1/2; class 2 -> 1
    assert macro_precision(Y, P) == pytest.approx((0.5 + 0.5 + 1) / 3)
    # class 1 present but never predicted: precision 0
    assert macro_precision([0, 1], [0, 0], 2) == pytest.approx((0.5 + 0) / 2)


def test_confusion():
    cm = confusion(Y, P, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [1, 1, 0], [0, 0, 2]])
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(confusion([0], [0], 3), [[1, 0, 0], [0, 0, 0], [0, 0, 0]])


def test_shape_errors():
    with pytest.raises(ValueError, match="shape"):
        macro_map(Y, P[:4])
    with pytest.raises(ValueError, match="columns"):
        macro_map(Y, P, 4)
    with pytest.raises(ValueError, match=r"class ids must be in \[0, 3\)"):
        per_class_ap([0, 3], P[:2])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])


def test_bootstrap_ci_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    p = rng.random((200, 3))
    p[np.arange(200), y] += 0.5
    acc = accuracy(y, p)
    lo, hi = bootstrap_ci(y, p, accuracy, n=200, seed=0)
    assert lo < acc < hi and 0.03 < hi - lo < 0.2
    assert bootstrap_ci(y, p, accuracy, n=200, seed=0) == (lo, hi)
    # a constant metric has a zero-width interval
    assert bootstrap_ci(y, p, lambda a, b: 0.5, n=10) == (0.5, 0.5)
    lo_m, hi_m = bootstrap_ci(y, p, macro_map, n=50)
    assert lo_m < macro_map(y, p) < hi_m


def test_evaluate_probs_is_json_ready():
    labels = LabelSet("t3", ("angry", "happy", "sad"))
    r = evaluate_probs(Y[:4], P[:4], labels)  # class 2 ("sad") absent
    json.dumps(r)
    assert r["n"] == 4 and r["labels"] == ["angry", "happy", "sad"]
    assert r["accuracy"] == pytest.approx(0.5)
    # class 0 on rows 0-3: .9(+) .5(-) .4(+) .2(-) -> 5/6; class 1: .7(+) .5(-) .3(+) .05(-) -> 5/6
    assert r["per_class_ap"] == {"angry": pytest.approx(5 / 6), "happy": pytest.approx(5 / 6), "sad": None}
    assert r["macro_map"] == pytest.approx(5 / 6)
    assert r["support"] == {"angry": 2, "happy": 2, "sad": 0}
    assert r["confusion"] == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]


def test_plot_confusion_writes_png(tmp_path):
    out = plot_confusion(np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]]), ["a", "b", "c"], tmp_path / "cm.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="3 labels"):
        plot_confusion(np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "x.png")
