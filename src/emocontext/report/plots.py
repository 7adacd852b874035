"""Figures and image overlays that explain a :class:`~emocontext.inference.Prediction`.

Everything here is pure: no file is read or written, and matplotlib is used through
:class:`matplotlib.figure.Figure` with the Agg canvas only, so no ``pyplot`` global state
(open figures, the current backend) is touched and the functions are safe in servers and
threads.

* :func:`timeline_figure` -- per-frame probability of every emotion over time, with the
  frames without a face shaded and, for context-aware models, the face fusion weight
  ``lambda_face`` (CAER-Net eq. 5) in a second axis.
* :func:`probability_bars_figure` -- the clip probabilities as horizontal bars.
* :func:`attention_overlay` -- a frame with the context stream's spatial attention map
  drawn as a heat map over the region the context stream saw.
* :func:`figure_png` / :func:`image_png` -- PNG bytes of a figure / an RGB image.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..labels import EMOTION_COLORS, emotion_color

if TYPE_CHECKING:
    from ..inference import Prediction

__all__ = [
    "EMOTION_COLORS",
    "emotion_color",
    "label_order",
    "timeline_figure",
    "probability_bars_figure",
    "attention_overlay",
    "draw_box",
    "figure_png",
    "image_png",
]

#: Face box colour (RGB) in every image.
FACE_BOX_COLOR = (0, 255, 0)


def _mpl_color(name: str) -> tuple[float, float, float]:
    return tuple(c / 255.0 for c in emotion_color(name))  # type: ignore[return-value]


def label_order(prediction: Prediction) -> list[str]:
    """The emotion names of a prediction: the clip's order, else the order of first appearance in the frames."""
    names = list(prediction.probabilities)
    for f in prediction.frames:
        for k in f.probabilities or {}:
            if k not in names:
                names.append(k)
    return names


def _no_face_runs(times: np.ndarray, no_face: np.ndarray, step: float) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of the runs of consecutive frames without a face, each frame covering +-step/2."""
    runs: list[tuple[float, float]] = []
    i, n = 0, len(times)
    while i < n:
        if not no_face[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and no_face[j + 1]:
            j += 1
        runs.append((times[i] - step / 2, times[j] + step / 2))
        i = j + 1
    return runs


def timeline_figure(prediction: Prediction, *, width: float = 9.0) -> Figure:
    """Per-frame probability of every emotion against time.

    One line per emotion (x: frame timestamp in seconds, y: probability 0..1), with gaps where
    a frame has no probabilities (``FramePrediction.probabilities is None``: the face-only model
    on a frame without a face) and every point marked, so isolated frames stay visible. Frames
    without a face are shaded grey (each covering ``1 / prediction.fps`` seconds). The clip
    label's line is drawn thick and named in the title. When any frame has fusion weights
    (context-aware models), a second, smaller axis below shows ``lambda_face`` over time
    (0 = the frame was read from the context only, 1 = from the face only).

    Args:
        prediction: the prediction to plot (any number of frames, including none).
        width: figure width in inches (height follows).

    Returns:
        A :class:`matplotlib.figure.Figure` (Agg canvas attached); see :func:`figure_png`.
    """
    frames = prediction.frames
    names = label_order(prediction)
    times = np.array([f.timestamp for f in frames], dtype=np.float64)
    has_fusion = any(f.fusion_weights is not None for f in frames)
    fig = Figure(figsize=(width, 4.6 if has_fusion else 3.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if has_fusion:
        gs = fig.add_gridspec(2, 1, height_ratios=[3.2, 1.0])
        ax = fig.add_subplot(gs[0])
        ax_w = fig.add_subplot(gs[1], sharex=ax)
    else:
        ax, ax_w = fig.add_subplot(1, 1, 1), None

    step = 1.0 / prediction.fps if prediction.fps and prediction.fps > 0 else 0.2
    no_face = np.array([not f.face_present for f in frames], dtype=bool)
    for i, (a, b) in enumerate(_no_face_runs(times, no_face, step)):
        for axis in (ax, ax_w):
            if axis is not None:
                axis.axvspan(a, b, color="0.85", zorder=0, lw=0, label="no face" if (i == 0 and axis is ax) else None)

    for name in names:
        y = np.array(
            [np.nan if f.probabilities is None else f.probabilities.get(name, np.nan) for f in frames], dtype=np.float64
        )
        is_label = name == prediction.label
        ax.plot(
            times,
            y,
            color=_mpl_color(name),
            lw=2.8 if is_label else 1.2,
            alpha=1.0 if is_label else 0.75,
            marker="o",
            ms=4 if is_label else 2.5,
            label=f"{name} (clip)" if is_label else name,
            zorder=3 if is_label else 2,
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("probability")
    ax.grid(True, alpha=0.3)
    if len(times):
        lo, hi = float(times.min()) - step / 2, float(times.max()) + step / 2
        ax.set_xlim(lo, hi)
    else:
        ax.text(0.5, 0.5, "no sampled frames", ha="center", va="center", transform=ax.transAxes, color="0.4")
    if prediction.label is not None:
        conf = "" if prediction.confidence is None else f" ({prediction.confidence:.0%})"
        ax.set_title(f"Emotion over time -- clip: {prediction.label}{conf}", loc="left", fontsize=11)
    else:
        ax.set_title("Emotion over time -- no face found", loc="left", fontsize=11)
    if names or no_face.any():
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)

    if ax_w is not None:
        lam = np.array(
            [np.nan if f.fusion_weights is None else f.fusion_weights.get("face", np.nan) for f in frames],
            dtype=np.float64,
        )
        ax_w.plot(times, lam, color="black", lw=1.5, marker="o", ms=2.5, label="lambda_face")
        ax_w.set_ylim(-0.05, 1.05)
        ax_w.set_ylabel("λ face")
        ax_w.grid(True, alpha=0.3)
        ax_w.set_xlabel("time (s)")
        ax_w.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.tick_params(labelbottom=False)
    else:
        ax.set_xlabel("time (s)")
    return fig


def probability_bars_figure(
    probabilities: Mapping[str, float], *, highlight: str | None = None, width: float = 5.0
) -> Figure:
    """Horizontal bars of emotion probabilities (0..1), in the given order, the value written next to each bar.

    Args:
        probabilities: emotion name -> probability (e.g. ``Prediction.probabilities``).
        highlight: a name whose bar gets a black outline (default: the most probable one).
        width: figure width in inches.

    Returns:
        A :class:`matplotlib.figure.Figure`; an empty mapping gives a figure saying so.
    """
    names = list(probabilities)
    values = [float(probabilities[k]) for k in names]
    if highlight is None and names:
        highlight = names[int(np.argmax(values))]
    fig = Figure(figsize=(width, 0.35 * max(len(names), 2) + 0.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if not names:
        ax.text(0.5, 0.5, "no probabilities", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_axis_off()
        return fig
    y = np.arange(len(names))
    bars = ax.barh(y, values, color=[_mpl_color(n) for n in names], height=0.7)
    for bar, name in zip(bars, names, strict=True):
        if name == highlight:
            bar.set_edgecolor("black")
            bar.set_linewidth(1.8)
    for yi, v in zip(y, values, strict=True):
        ax.text(min(v, 1.0) + 0.01, yi, f"{v:.1%}", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("probability")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes at ``dpi`` (the figure is not closed or changed)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def image_png(image_rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 ``(H, W, 3)`` (or grey ``(H, W)``) image.

    Raises:
        ValueError: not a uint8 image or the encoder refused it.
    """
    img = np.asarray(image_rgb)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W[, 3]) image, got {img.dtype} {img.shape}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def _int_box(box: Sequence[float], h: int, w: int) -> tuple[int, int, int, int]:
    """xyxy float box -> integer pixel box clipped to a ``h x w`` image (end exclusive)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    xa, ya = max(0, int(math.floor(x1))), max(0, int(math.floor(y1)))
    xb, yb = min(w, int(math.ceil(x2))), min(h, int(math.ceil(y2)))
    return xa, ya, xb, yb


def draw_box(
    image_rgb: np.ndarray, box: Sequence[float], *, color: tuple[int, int, int] = FACE_BOX_COLOR, thickness=None
) -> np.ndarray:
    """Draw an xyxy pixel box on ``image_rgb`` **in place** (and return it); thickness scales with the image."""
    h, w = image_rgb.shape[:2]
    if thickness is None:
        thickness = max(1, round(min(h, w) / 160))
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    x2, y2 = min(x2, w - 1), min(y2, h - 1)
    cv2.rectangle(image_rgb, (x1, y1), (x2, y2), color, thickness, lineType=cv2.LINE_8)
    return image_rgb


def attention_overlay(
    frame_rgb: np.ndarray,
    attention,
    context_box: Sequence[float] | None,
    *,
    face_box: Sequence[float] | None = None,
    alpha: float = 0.55,
    darken: float = 0.4,
    colormap: int = cv2.COLORMAP_INFERNO,
) -> np.ndarray:
    """The frame with the context stream's spatial attention drawn over the region it covers.

    The ``h x w`` attention map (row 0 = top) is upsampled smoothly (bicubic) to the size of
    ``context_box``, scaled to 0..1 and coloured with ``colormap`` (default *inferno*, whose
    brightness grows with the value, so the brightest spot is where attention peaks); the heat
    map is blended over the box with weight ``alpha``. Pixels outside the box are darkened by
    the factor ``darken``. Scaling: the map is divided by ``max(peak, 2 / (h * w))``, so a
    peaked map uses the full colour range while a (near) uniform map stays in the lower half
    instead of looking uniformly "hot".

    Args:
        frame_rgb: RGB uint8 ``(H, W, 3)``; not modified.
        attention: ``(h, w)`` non-negative weights (nested lists or array), e.g.
            ``FramePrediction.attention``.
        context_box: xyxy pixels of ``frame_rgb`` the map covers (``Prediction.context_box``);
            None = the whole frame.
        face_box: optional xyxy face box to outline in green.
        alpha: heat-map opacity in [0, 1]; ``darken``: 0 keeps the outside as is, 1 makes it black.
        colormap: an OpenCV colormap id (``cv2.COLORMAP_*``).

    Returns:
        New RGB uint8 image of the same shape as ``frame_rgb``.

    Raises:
        ValueError: the frame is not ``(H, W, 3)`` uint8, the map is not 2-D with finite
            values, or the box does not overlap the frame.
    """
    frame = np.asarray(frame_rgb)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be RGB uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    att = np.asarray(attention, dtype=np.float32)
    if att.ndim != 2 or att.size == 0 or not np.isfinite(att).all():
        raise ValueError(f"attention must be a finite 2-D (h, w) map, got shape {att.shape}")
    H, W = frame.shape[:2]
    xa, ya, xb, yb = _int_box(context_box if context_box is not None else (0, 0, W, H), H, W)
    if xb <= xa or yb <= ya:
        raise ValueError(f"context box {context_box} does not overlap the {W}x{H} frame")
    out = frame.astype(np.float32) * (1.0 - float(np.clip(darken, 0.0, 1.0)))
    att = np.clip(att, 0.0, None)
    scale = max(float(att.max()), 2.0 / att.size)
    up = cv2.resize(att / scale, (xb - xa, yb - ya), interpolation=cv2.INTER_CUBIC)
    up = np.clip(up, 0.0, 1.0)
    heat_bgr = cv2.applyColorMap(np.round(up * 255).astype(np.uint8), colormap)
    heat = cv2.cvtColor(heat_bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
    a = float(np.clip(alpha, 0.0, 1.0))
    region = frame[ya:yb, xa:xb].astype(np.float32)
    out[ya:yb, xa:xb] = (1.0 - a) * region + a * heat
    result = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if face_box is not None:
        draw_box(result, face_box)
    return result
