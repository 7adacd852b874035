"""Classification metrics: accuracy, macro mAP, per-class AP, macro precision, confusion matrix, bootstrap CIs.

Conventions: ``y_true`` is ``(N,)`` int class ids in ``[0, K)``; ``probs`` is ``(N, K)`` float scores
(probabilities or logits: only their order within a column matters for AP, their argmax for the
predicted class); wherever "probs or pred" is accepted, a ``(N,)`` int array of predicted ids works too.
The arithmetic is scikit-learn's (average precision is computed here in numpy, vectorised for the
ensemble weight search, and tested equal to :func:`sklearn.metrics.average_precision_score`); this
module fixes the conventions around it (absent classes, shapes, JSON-friendly output). It is the one
mAP of the project: every caller passes ``(y_true, probs)`` in that order. Nothing here imports torch.

Two "MAP"s appear in the literature this project follows:

- :func:`macro_precision`: mean over classes of the precision ``TP_k / (TP_k + FP_k)`` of the hard
  predictions. The MEC 2016/2017 overview papers (Li et al.) call their primary measure "macro average
  precision", and it is the "mAP" the CACA-RNN paper (Sun et al. 2018, Tables I-II) reports beside the
  MEC 2017 baseline's 21.7 %: the CACA-RNN recipe selects on it (FIDELITY.md, "The MEC metric").
- :func:`macro_map`: mean over classes of one-vs-rest average precision of the scores (the area under
  each class's precision-recall curve), reported beside it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, precision_score

from .labels import LabelSet
from .outputs import atomic_write_bytes

__all__ = [
    "accuracy",
    "average_precision",
    "bootstrap_ci",
    "confusion",
    "evaluate_probs",
    "macro_map",
    "macro_precision",
    "per_class_ap",
    "plot_confusion",
]


def _labels_1d(y_true) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D class ids (N,), got shape {y.shape}")
    if y.size == 0:
        raise ValueError("y_true is empty")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise ValueError("y_true must hold integer class ids")
        y = y.astype(np.int64)
    return y


def _pred(probs_or_pred, n: int) -> np.ndarray:
    """``(N,)`` predicted ids from ``(N, K)`` scores (argmax; ties -> lowest id) or ``(N,)`` ids."""
    p = np.asarray(probs_or_pred)
    if p.ndim == 2:
        p = p.argmax(axis=1)
    elif p.ndim != 1:
        raise ValueError(f"expected (N, K) scores or (N,) predicted ids, got shape {p.shape}")
    if len(p) != n:
        raise ValueError(f"{len(p)} predictions for {n} labels")
    return p.astype(np.int64)


def _scores(y: np.ndarray, probs, num_classes: int | None) -> np.ndarray:
    s = np.asarray(probs, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != len(y):
        raise ValueError(f"probs must have shape (N={len(y)}, K), got {s.shape}")
    if num_classes is not None and s.shape[1] != num_classes:
        raise ValueError(f"probs has {s.shape[1]} columns, num_classes is {num_classes}")
    if y.min() < 0 or y.max() >= s.shape[1]:
        raise ValueError(f"class ids must be in [0, {s.shape[1]}), got {y.min()}..{y.max()}")
    return s


def accuracy(y_true, probs_or_pred) -> float:
    """Fraction of samples whose predicted class (argmax of ``(N, K)`` scores, or ``(N,)`` ids) is right."""
    y = _labels_1d(y_true)
    return float(np.mean(_pred(probs_or_pred, len(y)) == y))


def average_precision(positive: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of ``(N,)`` scores for the ``(N,)`` bool ``positive`` samples; NaN without positives.

    ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, in decreasing order, without
    interpolation: the definition of :func:`sklearn.metrics.average_precision_score` (tested equal to it),
    in a few numpy operations so that the ensemble weight search can call it thousands of times.
    """
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_class_ap(y_true, probs, num_classes: int | None = None) -> np.ndarray:
    """One-vs-rest average precision of each class, ``(K,)`` float; NaN for a class absent from ``y_true``.

    AP (:func:`average_precision`) of ``y_true == k`` against ``probs[:, k]``: ``sum_n (R_n - R_{n-1}) P_n``
    over decreasing thresholds, without interpolation. A class with no positive sample has no defined AP
    (recall is 0/0), hence NaN.
    """
    y = _labels_1d(y_true)
    s = _scores(y, probs, num_classes)
    return np.array([average_precision(y == k, s[:, k]) for k in range(s.shape[1])])


def macro_map(y_true, probs, num_classes: int | None = None) -> float:
    """Mean over classes of one-vs-rest average precision (:func:`per_class_ap`).

    Classes absent from ``y_true`` are **skipped** (their AP is undefined), so the mean runs over the
    classes present; with every class present this is the plain mean over K classes.

    Args:
        y_true: ``(N,)`` int class ids.
        probs: ``(N, K)`` scores.
        num_classes: K, checked against ``probs`` when given.
    """
    return float(np.nanmean(per_class_ap(y_true, probs, num_classes)))


def macro_precision(y_true, probs_or_pred, num_classes: int | None = None) -> float:
    """Mean over classes of ``TP_k / (TP_k + FP_k)`` of the hard predictions (MEC's "macro average precision").

    Runs over the classes present in ``y_true`` (as :func:`macro_map`); a present class that is never
    predicted has precision 0.
    """
    y = _labels_1d(y_true)
    p = _pred(probs_or_pred, len(y))
    if num_classes is None and np.ndim(probs_or_pred) == 2:
        num_classes = np.shape(probs_or_pred)[1]
    present = np.unique(y)
    if num_classes is not None and present.max() >= num_classes:
        raise ValueError(f"class ids must be in [0, {num_classes})")
    return float(precision_score(y, p, labels=present, average="macro", zero_division=0))


def confusion(y_true, y_pred, num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts; row = true class, column = predicted class. ``y_pred`` may be ``(N, K)`` scores."""
    y = _labels_1d(y_true)
    return confusion_matrix(y, _pred(y_pred, len(y)), labels=np.arange(num_classes)).astype(np.int64)


def bootstrap_ci(
    y_true,
    probs,
    metric: Callable[[np.ndarray, np.ndarray], float],
    n: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` confidence interval of ``metric(y_true, probs)``.

    Draws ``n`` resamples of the N samples with replacement (``numpy.random.default_rng(seed)``), computes
    the metric on each and returns the ``alpha/2`` and ``1 - alpha/2`` quantiles. Resamples where the
    metric is NaN are ignored. Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13.

    Args:
        y_true: ``(N,)`` int class ids.
        probs: ``(N, K)`` scores, or ``(N,)`` predictions for metrics that take them.
        metric: e.g. :func:`accuracy` or :func:`macro_map`.
    """
    y = _labels_1d(y_true)
    s = np.asarray(probs)
    if len(s) != len(y):
        raise ValueError(f"{len(s)} score rows for {len(y)} labels")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for b in range(n):
        idx = rng.integers(0, len(y), len(y))
        values[b] = metric(y[idx], s[idx])
    if np.all(np.isnan(values)):
        return float("nan"), float("nan")
    low, high = np.nanquantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def evaluate_probs(y_true, probs, labels: LabelSet | Sequence[str]) -> dict:
    """All the metrics of one evaluation, JSON-serialisable.

    Args:
        y_true: ``(N,)`` int class ids.
        probs: ``(N, K)`` scores.
        labels: the K class names (or a LabelSet), in column order.

    Returns:
        ``{"n", "labels", "accuracy", "macro_map", "macro_precision", "per_class_ap": {name: AP or None},
        "support": {name: count}, "confusion": K lists of K ints (row = true)}``; None marks an AP that
        is undefined because the class is absent.
    """
    names = list(labels.names if isinstance(labels, LabelSet) else labels)
    y = _labels_1d(y_true)
    s = _scores(y, probs, len(names))
    ap = per_class_ap(y, s)
    return {
        "n": int(len(y)),
        "labels": names,
        "accuracy": accuracy(y, s),
        "macro_map": macro_map(y, s),
        "macro_precision": macro_precision(y, s),
        "per_class_ap": {k: (None if np.isnan(v) else float(v)) for k, v in zip(names, ap, strict=True)},
        "support": {k: int(c) for k, c in zip(names, np.bincount(y, minlength=len(names)), strict=True)},
        "confusion": confusion(y, s, len(names)).tolist(),
    }


def plot_confusion(cm, labels: LabelSet | Sequence[str], path: str | Path, *, title: str | None = None) -> Path:
    """Write a confusion matrix as a PNG: colours are row-normalised (fraction of each true class), text the counts.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend change).

    Args:
        cm: ``(K, K)`` counts, row = true class, column = predicted class (as :func:`confusion`).
        labels: the K class names.
        path: output file (``.png``); its folder must exist.
        title: optional title.

    Returns:
        ``path`` as a Path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(cm)
    names = list(labels.names if isinstance(labels, LabelSet) else labels)
    k = len(names)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {cm.shape} for {k} labels")
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)

    size = 1.2 + 0.6 * k
    fig = Figure(figsize=(size + 1.2, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(k), names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            color = "white" if frac[i, j] > 0.5 else "black"
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8, color=color)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
