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

Odd frame sizes are padded by one replicated pixel row / column (``yuv420p`` needs even sizes).

Still images: if ``out_path`` has an image suffix (``.png``, ``.jpg``, ...) the annotated image
is written in that format; otherwise a 1-second video (25 identical frames at 25 fps) is
written, so that ``out.mp4`` is always a playable video.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import ConfigError, VideoDecodeError
from ..outputs import atomic_path
from ..video.decode import IMAGE_SUFFIXES, is_image, iter_frames, probe
from ._frames import NearestFrame, scale_box, source_path, top_emotion
from .plots import FACE_BOX_COLOR, draw_box, emotion_color, label_order

if TYPE_CHECKING:
    from ..predict import FramePrediction, Prediction

__all__ = ["write_annotated_video", "annotate_frame", "VIDEO_SUFFIXES", "STILL_VIDEO_FPS"]

log = logging.getLogger(__name__)

#: Container formats by output suffix.
VIDEO_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
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


def _even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return img
    return cv2.copyMakeBorder(img, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


class _Encoder:
    """H.264 writer: RGB frames with times in seconds -> ``path``."""

    def __init__(self, path: Path, fmt: str, rate: Fraction):
        import av

        self.container = av.open(str(path), "w", format=fmt)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "veryfast", "crf": "20"}
        self.time_base = Fraction(1, 90000)
        self.stream.codec_context.time_base = self.time_base
        self.size: tuple[int, int] | None = None
        self.last_pts = -1
        self.count = 0

    def add(self, image_rgb: np.ndarray, t: float) -> None:
        import av

        img = _even(image_rgb)
        if self.size is None:
            self.size = img.shape[:2]
            self.stream.height, self.stream.width = self.size
        elif img.shape[:2] != self.size:  # a resolution change mid-stream: keep the first size
            img = cv2.resize(img, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        pts = max(int(round(t / self.time_base)), self.last_pts + 1)
        f.pts, f.time_base = pts, self.time_base
        self.last_pts = pts
        for p in self.stream.encode(f):
            self.container.mux(p)
        self.count += 1

    def close(self, flush: bool = True) -> None:
        try:
            if flush and self.count:
                for p in self.stream.encode():
                    self.container.mux(p)
        finally:
            self.container.close()


def _open_native(path: Path):
    """``(container, stream, rate)`` of the first video stream of ``path``; ``rate`` a Fraction in Hz.

    Raises:
        VideoDecodeError: missing, empty or unreadable file, or no video stream.
    """
    import av

    info = probe(path)  # clear errors for missing / empty / no video stream
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise VideoDecodeError(f"{path}: not a readable media file ({e})") from None
    vs = container.streams.video[0]
    vs.thread_type = "AUTO"
    rate = (
        vs.average_rate
        or vs.guessed_rate
        or (Fraction(info.average_fps).limit_denominator(1001) if info.average_fps else None)
    )
    return container, vs, Fraction(rate) if rate else Fraction(25)


def _native_frames(container, vs, rate: Fraction, path: Path):
    """Every decoded frame as ``(rgb, t)``, ``t`` in seconds from the first frame.

    Raises:
        VideoDecodeError: no frame decodes (a break after some frames ends the iteration with a warning).
    """
    import av

    origin = None
    n = 0
    try:
        for fr in container.decode(vs):
            t_abs = fr.time if fr.time is not None else n / float(rate)
            if origin is None:
                origin = t_abs
            n += 1
            yield fr.to_ndarray(format="rgb24"), t_abs - origin
    except av.FFmpegError as e:
        if n == 0:
            raise VideoDecodeError(f"{path}: no decodable video frame ({e})") from None
        log.warning("%s: decoding stopped after %d frames (%s); the annotated video ends there", path, n, e)
    if n == 0:
        raise VideoDecodeError(f"{path}: the video stream has no frames")


_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus"},
    "mov": {"aac", "mp3", "ac3", "alac", "pcm_s16le"},
}


def _add_audio(video: Path, src: Path, fmt: str) -> bool:
    """Put the first audio track of ``src`` into ``video`` (in place): copied, or re-encoded as AAC.

    Returns False (with a logged warning) when ``src`` has no audio or it cannot be carried over; ``video``
    is then left as it was.
    """
    import av

    try:
        with av.open(str(src), metadata_errors="ignore") as a_in:
            if not a_in.streams.audio:
                return False
    except av.FFmpegError:
        return False
    merged = video.with_name(video.name + ".av" + video.suffix)
    try:
        with (
            av.open(str(src), metadata_errors="ignore") as a_in,
            av.open(str(video)) as v_in,
            av.open(str(merged), "w", format=fmt) as o,
        ):
            a_src, v_src = a_in.streams.audio[0], v_in.streams.video[0]
            v_out = o.add_stream_from_template(v_src)
            copy = a_src.codec_context.name in _COPYABLE_AUDIO.get(fmt, {"aac", "mp3", "opus", "vorbis", "flac"})
            if copy:
                a_out = o.add_stream_from_template(a_src)
            else:
                a_out = o.add_stream("aac", rate=a_src.codec_context.sample_rate or 44100)
            for packet in v_in.demux(v_src):
                if packet.dts is not None:
                    packet.stream = v_out
                    o.mux(packet)
            if copy:
                for packet in a_in.demux(a_src):
                    if packet.dts is not None:
                        packet.stream = a_out
                        o.mux(packet)
            else:
                for frame in a_in.decode(a_src):
                    frame.pts = None
                    for packet in a_out.encode(frame):
                        o.mux(packet)
                for packet in a_out.encode():
                    o.mux(packet)
        os.replace(merged, video)
        return True
    except (av.FFmpegError, ValueError, TypeError) as e:
        log.warning("%s: the audio track could not be carried over (%s); the annotated video has none", src, e)
        merged.unlink(missing_ok=True)
        return False


def write_annotated_video(
    prediction: Prediction, out_path: str | Path, *, video_path: str | Path | None = None
) -> Path:
    """Write the video with the prediction drawn on every frame (see the module docstring).

    Every frame of the video at its native rate is matched to the sampled frame of
    ``prediction`` nearest in time (within one sampling period; beyond that it is marked "not
    analysed"). Boxes are scaled if the video's resolution differs from
    ``prediction.frame_wh``. The output is written atomically (:func:`emocontext.outputs.atomic_path`):
    on any error the temporary file is removed and ``out_path`` is left as it was.

    Args:
        prediction: what :meth:`~emocontext.predict.Predictor.predict` returned.
        out_path: ``.mp4`` (or ``.m4v`` / ``.mov`` / ``.mkv``) file; for a still-image input also an
            image suffix (``.png``, ``.jpg``, ...), which writes an annotated image instead of a video.
        video_path: the file to annotate (default ``prediction.path``).

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
        raise ConfigError(f"{out}: a video input needs a video output ({', '.join(VIDEO_SUFFIXES)}), not {suffix}")
    if suffix not in IMAGE_SUFFIXES and suffix not in VIDEO_SUFFIXES:
        allowed = ", ".join(sorted(VIDEO_SUFFIXES)) + (", or an image suffix" if still else "")
        raise ConfigError(f"{out}: unsupported output suffix {suffix or '(none)'}; use {allowed}")
    nearest = NearestFrame(prediction)
    people = [(p.person_id, NearestFrame(prediction, p.frames)) for p in prediction.persons if not p.subject]

    def others(t: float):
        return [(pid, near(t)) for pid, near in people]

    if still:
        image = next(iter_frames(src)).image
        frame = nearest(0.0) or (prediction.frames[0] if prediction.frames else None)
        annotated = annotate_frame(image, prediction, frame, others=others(0.0))
        with atomic_path(out) as tmp:
            if suffix in IMAGE_SUFFIXES:
                ok, data = cv2.imencode(suffix, cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise ConfigError(f"{out}: OpenCV cannot write {suffix} images")
                tmp.write_bytes(data.tobytes())
            else:
                enc = _Encoder(tmp, VIDEO_SUFFIXES[suffix], Fraction(STILL_VIDEO_FPS))
                try:
                    for i in range(STILL_VIDEO_FPS):
                        enc.add(annotated, i / STILL_VIDEO_FPS)
                finally:
                    enc.close()
        return out

    container, vs, rate = _open_native(src)
    with container, atomic_path(out) as tmp:
        enc = _Encoder(tmp, VIDEO_SUFFIXES[suffix], rate)
        try:
            for image, t in _native_frames(container, vs, rate, src):
                f = nearest(t)  # None: further than one sampling period from every sampled frame
                enc.add(annotate_frame(image, prediction, f, analysed=f is not None, others=others(t)), t)
        except BaseException:
            try:
                enc.close(flush=False)
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            raise
        enc.close()
        _add_audio(tmp, src, VIDEO_SUFFIXES[suffix])
    return out
