"""The input video with the prediction drawn on every frame.

:func:`write_annotated_video` re-encodes the video at its **native** frame rate (every decoded
frame, with its own presentation time, so variable-frame-rate files keep their timing) as
H.264 (``libx264``, ``yuv420p``) in an MP4 (or MOV / MKV) container, with the input's audio
track (copied; re-encoded as AAC when the container cannot hold its codec; left out with a
warning if neither works). Each frame shows, from the sampled frame of the prediction nearest
in time:

* the subject's face box (green) with the clip label and the frame's top emotion and probability
  next to it; every other person's box (orange) with their id, top emotion and probability;
* a panel in the corner overlapping the face least with one bar per emotion (the sampled frame's
  probabilities, the current top one outlined) under a header with the clip label; frames too
  small for the labelled panel (under ~ 250 px) get bars only, coloured by emotion as in the report;
* "no face" when the sampled frame had no face (plus "context only" when the context-aware
  model still read the scene), and "not analysed" past the analysed part of the file (e.g.
  after ``max_duration``).

Odd frame sizes are padded by one replicated pixel row / column (``yuv420p`` needs even sizes). The
file is read and written by :mod:`emocontext.video` (:class:`~emocontext.video.decode.VideoReader`,
:class:`~emocontext.video.encode.VideoWriter`).

Still images: if ``out_path`` has an image suffix (``.png``, ``.jpg``, ...) the annotated image
is written in that format; otherwise a 1-second video (25 identical frames at 25 fps) is
written, so that ``out.mp4`` is always a playable video.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import ConfigError
from ..outputs import atomic_path
from ..video.decode import (
    CONTAINER_FORMATS,
    DEFAULT_FPS,
    IMAGE_SUFFIXES,
    Frame,
    FrameSampler,
    VideoReader,
    is_image,
    iter_frames,
)
from ..video.encode import VideoWriter, add_audio
from ._frames import NearestFrame, scale_box, source_path, top_emotion
from .plots import FACE_BOX_COLOR, draw_box, emotion_color, label_order

if TYPE_CHECKING:
    from ..inference import FramePrediction, Prediction

__all__ = ["write_annotated_video", "annotate_frame", "STILL_VIDEO_FPS"]

#: Frame rate of the 1-second video made from a still image.
STILL_VIDEO_FPS = 25

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_GREY = (170, 170, 170)
_WARN = (255, 200, 60)


def _style(h: int, w: int) -> tuple[float, int]:
    """Font scale and line thickness for a ``h x w`` frame (readable from 48 px to 4K)."""
    scale = max(0.3, min(h, w) / 720 * 0.9)
    return scale, max(1, round(scale * 1.6))


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int, color=_WHITE) -> None:
    cv2.putText(img, text, org, _FONT, scale, color, thick, cv2.LINE_AA)


def _blend_rect(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, color=_BLACK, alpha: float = 0.6) -> None:
    h, w = img.shape[:2]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 <= x1 or y2 <= y1:
        return
    roi = img[y1:y2, x1:x2].astype(np.float32)
    img[y1:y2, x1:x2] = np.round(roi * (1 - alpha) + np.array(color, np.float32) * alpha).astype(np.uint8)


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    dx = min(a[2], b[2]) - max(a[0], b[0])
    dy = min(a[3], b[3]) - max(a[1], b[1])
    return max(dx, 0.0) * max(dy, 0.0)


def _label_near_box(
    img: np.ndarray, box: Sequence[float], lines: list[str], scale: float, thick: int, *, draw: bool = True
) -> tuple[int, int, int, int] | None:
    """Text lines on a dark background just above the box (below it when there is no room).

    Returns the xyxy rectangle of the label (None when skipped: on frames too small for the
    text, where it would hide the face). ``draw=False`` only computes the rectangle.
    """
    h, w = img.shape[:2]
    sizes = [cv2.getTextSize(t, _FONT, scale, thick) for t in lines]
    line_h = max(s[0][1] + s[1] for s in sizes) + 2 * thick
    tw = max(s[0][0] for s in sizes) + 4 * thick
    th = line_h * len(lines) + 2 * thick
    if not lines or tw > 0.8 * w or th > 0.35 * h:
        return None
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    top = y1 - th if y1 - th >= 0 else min(y2 + 1, h - th)
    left = min(max(0, x1), max(0, w - tw))
    if not draw:
        return left, top, left + tw, top + th
    _blend_rect(img, left, top, left + tw, top + th, alpha=0.65)
    for i, t in enumerate(lines):
        base = top + thick + line_h * (i + 1) - sizes[i][1] - thick
        _text(img, t, (left + 2 * thick, base), scale, thick, FACE_BOX_COLOR if i else _WHITE)
    return left, top, left + tw, top + th


def _panel(
    img: np.ndarray,
    header: list[tuple[str, tuple[int, int, int]]],
    names: list[str],
    probs: dict[str, float] | None,
    avoid: Sequence[float] | None,
    scale: float,
    thick: int,
) -> tuple[int, int, int, int]:
    """Draw the header lines and one probability bar per emotion in a corner; return the panel box."""
    h, w = img.shape[:2]
    fs = scale * 0.85
    (_, ch), cb = cv2.getTextSize("Ag", _FONT, fs, thick)
    row = ch + cb + 3 * thick
    pad = 2 * thick + 1
    name_w = max([cv2.getTextSize(n, _FONT, fs, thick)[0][0] for n in names] + [0])
    bar_w = max(30, int(round(name_w * 1.2)))
    head_w = max([cv2.getTextSize(t, _FONT, fs, thick)[0][0] for t, _ in header] + [0])
    rows = names if probs else []
    pct_w = cv2.getTextSize(" 100%", _FONT, fs * 0.9, thick)[0][0]
    pw = max(head_w, name_w + pad + bar_w + pct_w) + 2 * pad
    ph = row * (len(header) + len(rows)) + 2 * pad
    if ph > 0.9 * h or pw > 0.6 * w:
        return _compact_panel(img, header, rows, probs, avoid, row, ch, fs, thick)
    x0, y0 = _corner(h, w, pw, ph, avoid)
    _blend_rect(img, x0, y0, x0 + pw, y0 + ph, alpha=0.6)
    y = y0 + pad
    for t, color in header:
        _text(img, t, (x0 + pad, y + ch + thick), fs, thick, color)
        y += row
    top = top_emotion(probs)
    for n in rows:
        p = float(probs.get(n, 0.0)) if probs else 0.0
        _text(img, n, (x0 + pad, y + ch + thick), fs, thick, _WHITE)
        bx = x0 + pad + name_w + pad
        by1, by2 = y + thick, y + row - thick
        cv2.rectangle(img, (bx, by1), (bx + bar_w, by2), (70, 70, 70), -1)
        fill = int(round(bar_w * min(max(p, 0.0), 1.0)))
        if fill > 0:
            cv2.rectangle(img, (bx, by1), (bx + fill, by2), emotion_color(n), -1)
        if top is not None and n == top[0]:
            cv2.rectangle(img, (bx, by1), (bx + bar_w, by2), _WHITE, 1)
        _text(img, f" {p:.0%}", (bx + bar_w, y + ch + thick), fs * 0.9, thick, _WHITE)
        y += row
    return x0, y0, x0 + pw, y0 + ph


def _corner(h: int, w: int, pw: int, ph: int, avoid: Sequence[float] | None) -> tuple[int, int]:
    """Top-left corner of a ``pw x ph`` panel: the frame corner overlapping ``avoid`` least (top-left on ties)."""
    corners = [(0, 0), (w - pw, 0), (0, h - ph), (w - pw, h - ph)]
    if avoid is not None:
        corners.sort(key=lambda c: _overlap((c[0], c[1], c[0] + pw, c[1] + ph), avoid))
    return max(0, corners[0][0]), max(0, corners[0][1])


def _compact_panel(img, header, rows, probs, avoid, row, ch, fs, thick) -> tuple[int, int, int, int]:
    """Bars only (colour = emotion, as in the report), for frames too small for the labelled panel.

    Header lines are kept only where the text fits the frame (its width, half its height).
    """
    h, w = img.shape[:2]
    header = [(t, c) for t, c in header if cv2.getTextSize(t, _FONT, fs, thick)[0][0] + 2 <= w]
    n_head = len(header)
    while n_head and row * n_head > 0.5 * h:
        n_head -= 1
    bar_h = max(1, min(row, int((0.9 * h - row * n_head) / max(len(rows), 1))))
    bar_w = max(6, int(0.25 * w))
    head_w = max([cv2.getTextSize(t, _FONT, fs, thick)[0][0] for t, _ in header[:n_head]] + [0])
    pw = min(w, max(bar_w, head_w) + 2)
    ph = min(h, row * n_head + bar_h * len(rows) + 2)
    x0, y0 = _corner(h, w, pw, ph, avoid)
    _blend_rect(img, x0, y0, x0 + pw, y0 + ph, alpha=0.6)
    y = y0 + 1
    for t, color in header[:n_head]:
        _text(img, t, (x0 + 1, y + ch + thick), fs, thick, color)
        y += row
    for n in rows:
        p = float(probs.get(n, 0.0)) if probs else 0.0
        fill = int(round(bar_w * min(max(p, 0.0), 1.0)))
        if fill > 0:
            cv2.rectangle(img, (x0 + 1, y), (x0 + fill, y + max(bar_h - 2, 0)), emotion_color(n), -1)
        y += bar_h
    return x0, y0, x0 + pw, y0 + ph


_OTHER_BOX = (255, 150, 40)


def _draw_others(img: np.ndarray, prediction: Prediction, others, scale: float, thick: int) -> None:
    """Box, ``P<id>`` and top emotion of every person other than the subject."""
    for person_id, f in others:
        if f is None or not f.face_present:
            continue
        box = scale_box(f.box, prediction, img.shape)
        draw_box(img, box, color=_OTHER_BOX, thickness=max(1, round(min(img.shape[:2]) / 240)))
        top = top_emotion(f.probabilities)
        text = f"P{person_id}" + (f" {top[0]} {top[1]:.0%}" if top else "")
        x1, y1 = int(box[0]), int(box[1])
        (tw, th), base = cv2.getTextSize(text, _FONT, scale * 0.8, thick)
        y = y1 - 4 if y1 - th - 4 >= 0 else int(box[3]) + th + 4
        _blend_rect(img, x1, y - th - 2, x1 + tw + 4, y + base, alpha=0.65)
        _text(img, text, (x1 + 2, y), scale * 0.8, thick, _OTHER_BOX)


def annotate_frame(
    image_rgb: np.ndarray,
    prediction: Prediction,
    frame: FramePrediction | None,
    *,
    analysed: bool = True,
    others: Sequence[tuple[int, FramePrediction | None]] = (),
) -> np.ndarray:
    """Draw one sampled frame's prediction on an image (see the module docstring for what is drawn).

    Args:
        image_rgb: RGB uint8 ``(H, W, 3)``; not modified.
        prediction: the clip prediction (label, emotion names, ``frame_wh`` for box scaling).
        frame: the subject's sampled frame to show, or None (then only the clip label and a note).
        analysed: False when the image lies outside the analysed part of the file.
        others: ``(person_id, frame)`` of every other person at this time (drawn with their id).

    Returns:
        A new RGB uint8 image of the same shape.
    """
    img = np.ascontiguousarray(image_rgb).copy()
    h, w = img.shape[:2]
    scale, thick = _style(h, w)
    names = label_order(prediction)
    if prediction.label is not None:
        conf = "" if prediction.confidence is None else f" {prediction.confidence:.0%}"
        header = [(f"clip: {prediction.label}{conf}", _WHITE)]
    else:
        header = [("clip: no face found", _WARN)]
    box = scale_box(frame.box, prediction, img.shape) if frame is not None and frame.face_present else None
    probs = frame.probabilities if frame is not None else None
    if not analysed:
        header.append(("not analysed", _GREY))
    elif frame is None or box is None:
        header.append(("no face (context only)" if probs else "no face", _WARN))
    lines = []
    if prediction.label is not None:
        who = f"P{prediction.subject_id} " if len(prediction.persons) > 1 and prediction.subject_id else ""
        lines.append(f"{who}clip: {prediction.label}")
    top = top_emotion(probs)
    if top is not None:
        lines.append(f"{top[0]} {top[1]:.0%}")
    avoid = None
    if box is not None:  # keep the panel off the face and its label
        avoid = list(box)
        label_rect = _label_near_box(img, box, lines, scale, thick, draw=False)
        if label_rect is not None:
            avoid = [
                min(avoid[0], label_rect[0]),
                min(avoid[1], label_rect[1]),
                max(avoid[2], label_rect[2]),
                max(avoid[3], label_rect[3]),
            ]
    _panel(img, header, names, probs, avoid, scale, thick)
    _draw_others(img, prediction, others, scale, thick)
    if box is not None:
        draw_box(img, box, thickness=max(1, round(min(h, w) / 240)))
        _label_near_box(img, box, lines, scale, thick)
    return img


def write_annotated_video(
    prediction: Prediction,
    out_path: str | Path,
    *,
    video_path: str | Path | None = None,
    on_sampled: Callable[[Frame], object] | None = None,
) -> Path:
    """Write the video with the prediction drawn on every frame (see the module docstring).

    Every frame of the video at its native rate is matched to the sampled frame of
    ``prediction`` nearest in time (within one sampling period; beyond that it is marked "not
    analysed"). Boxes are scaled if the video's resolution differs from
    ``prediction.frame_wh``. The output is written atomically (:func:`emocontext.outputs.atomic_path`):
    on any error the temporary file is removed and ``out_path`` is left as it was.

    Args:
        prediction: what :meth:`~emocontext.inference.Predictor.predict` returned.
        out_path: ``.mp4`` (or ``.m4v`` / ``.mov`` / ``.mkv``) file; for a still-image input also an
            image suffix (``.png``, ``.jpg``, ...), which writes an annotated image instead of a video.
        video_path: the file to annotate (default ``prediction.path``).
        on_sampled: called with each frame of the same decoding sampled at ``prediction.fps``, exactly as
            :func:`~emocontext.video.decode.iter_frames` gives them (:func:`~emocontext.report.explain` takes
            the report's key frames from this pass instead of decoding the file again).

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        VideoDecodeError: the input cannot be read.
        ConfigError: unsupported output suffix.
        OutputError: the file cannot be written (nothing is left behind).
    """
    src = source_path(prediction, video_path)
    out = Path(out_path)
    suffix = out.suffix.lower()
    still = is_image(src)
    if suffix in IMAGE_SUFFIXES and not still:
        raise ConfigError(f"{out}: a video input needs a video output ({', '.join(CONTAINER_FORMATS)}), not {suffix}")
    if suffix not in IMAGE_SUFFIXES and suffix not in CONTAINER_FORMATS:
        allowed = ", ".join(sorted(CONTAINER_FORMATS)) + (", or an image suffix" if still else "")
        raise ConfigError(f"{out}: unsupported output suffix {suffix or '(none)'}; use {allowed}")
    nearest = NearestFrame(prediction)
    people = [(p.person_id, NearestFrame(prediction, p.frames)) for p in prediction.persons if not p.subject]
    sampled = on_sampled or (lambda frame: None)

    def others(t: float):
        return [(pid, near(t)) for pid, near in people]

    if still:
        first = next(iter_frames(src))
        sampled(first)
        frame = nearest(0.0) or (prediction.frames[0] if prediction.frames else None)
        annotated = annotate_frame(first.image, prediction, frame, others=others(0.0))
        with atomic_path(out) as tmp:
            if suffix in IMAGE_SUFFIXES:
                ok, data = cv2.imencode(suffix, cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise ConfigError(f"{out}: OpenCV cannot write {suffix} images")
                tmp.write_bytes(data.tobytes())
            else:
                enc = VideoWriter(tmp, CONTAINER_FORMATS[suffix], Fraction(STILL_VIDEO_FPS))
                try:
                    for i in range(STILL_VIDEO_FPS):
                        enc.add(annotated, i / STILL_VIDEO_FPS)
                finally:
                    enc.close()
        return out

    sampler = FrameSampler(prediction.fps if prediction.fps and prediction.fps > 0 else DEFAULT_FPS)
    with VideoReader(src) as video, atomic_path(out) as tmp:
        enc = VideoWriter(tmp, CONTAINER_FORMATS[suffix], video.native_rate)
        try:
            for decoded in video.frames():
                for frame in sampler.push(decoded):
                    sampled(frame)
                t = decoded.timestamp
                f = nearest(t)  # None: further than one sampling period from every sampled frame
                enc.add(annotate_frame(decoded.image, prediction, f, analysed=f is not None, others=others(t)), t)
            for frame in sampler.finish(1.0 / video.rate):
                sampled(frame)
        except BaseException:
            try:
                enc.close(flush=False)
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            raise
        enc.close()
        add_audio(tmp, src, CONTAINER_FORMATS[suffix])
    return out
