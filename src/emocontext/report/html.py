"""A self-contained HTML report of one :class:`~emocontext.inference.Prediction`.

:func:`write_html_report` writes ONE ``.html`` file that needs nothing else: every image is
embedded as a base64 ``data:image/png`` URI, the CSS is inline, there is no JavaScript and
no link to any external resource, so the file can be mailed, archived or opened offline.

Sections: a header (file name, clip emotion and confidence or "no face found", model, frames
with a face / sampled frames, a warning when the file was truncated), the clip probability
bars, the timeline of per-frame probabilities (:func:`~emocontext.report.plots.timeline_figure`),
a few **key frames** (see :func:`select_key_frames`) re-read from the video, each with its face
crop, the frame with the context attention overlaid (context-aware models) or with the face
box, its top emotion and the fusion weights ``lambda_face`` / ``lambda_context``; and a table
of every sampled frame.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import ConfigError
from ..video.streams import face_crop
from ._frames import grab_frames, scale_box, source_path, top_emotion
from .plots import attention_overlay, draw_box, figure_png, image_png, probability_bars_figure, timeline_figure

if TYPE_CHECKING:
    from ..inference import FramePrediction, PersonPrediction, Prediction

__all__ = [
    "write_html_report",
    "render_html_report",
    "select_key_frames",
    "report_frame_times",
    "key_frame_images",
    "key_frame_view",
]

#: Longest side in pixels of the key-frame images embedded in the report (larger frames are downscaled).
MAX_IMAGE_SIDE = 480

_CSS = """
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0;
       color: #1d2330; background: #f4f5f7; line-height: 1.4; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
header, section { background: #fff; border-radius: 8px; padding: 16px 20px; margin-bottom: 18px;
                  box-shadow: 0 1px 3px rgba(0, 0, 0, .12); }
h1 { font-size: 1.5em; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 1.15em; margin: 0 0 12px; }
.path { color: #667; font-size: .85em; margin: 0 0 12px; word-break: break-all; }
.verdict { font-size: 1.6em; font-weight: 600; margin: 8px 0; }
.verdict .conf { font-weight: 400; color: #555; font-size: .8em; }
.verdict.none { color: #a33; }
table { border-collapse: collapse; font-size: .9em; }
th, td { padding: 3px 10px; text-align: left; border-bottom: 1px solid #e3e5e8; }
th { background: #f0f1f3; }
.facts th { background: none; font-weight: 500; color: #556; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.noface td { color: #888; }
.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 8px 12px; margin-top: 10px; }
.note { color: #667; font-size: .85em; }
img.plot { max-width: 100%; height: auto; }
.cards { display: flex; flex-wrap: wrap; gap: 14px; }
.card { margin: 0; border: 1px solid #e3e5e8; border-radius: 6px; padding: 10px; width: 316px; background: #fafbfc; }
.card .imgs { display: flex; gap: 8px; align-items: flex-start; }
.card img.frame { max-width: 100%; height: auto; border-radius: 3px; }
.card img.face { width: 96px; height: 96px; border-radius: 3px; flex: none; }
.card .imgs img.frame { min-width: 0; flex: 1 1 auto; }
.card h3 { font-size: 1em; margin: 0 0 6px; }
.card .top { font-weight: 600; }
.card ul { margin: 4px 0; padding-left: 18px; font-size: .85em; }
.lambda { display: flex; height: 12px; width: 100%; border-radius: 3px; overflow: hidden;
          background: #ddd; margin: 3px 0; }
.lambda .lf { background: #2f6fb5; }
.lambda .lc { background: #e08a1e; }
footer { color: #889; font-size: .8em; text-align: center; padding-bottom: 20px; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _img(png: bytes, *, id: str, cls: str, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img id="{_e(id)}" class="{_e(cls)}" alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _fit(image: np.ndarray, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    h, w = image.shape[:2]
    s = max(h, w)
    if s <= max_side:
        return image
    f = max_side / s
    return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _is_context_only(f: FramePrediction) -> bool:
    return f.probabilities is not None and (f.source == "context" or not f.face_present)


def select_key_frames(prediction: Prediction, k: int = 4) -> list[int]:
    """Indices into ``prediction.frames`` of up to ``k`` frames worth showing, in time order.

    Rule: frames with probabilities are ranked by the probability of the clip label (or of
    their own top emotion when the clip has no label); the best one is taken first. When
    ``k >= 2`` the frame **least** like the clip label is taken too when it differs from the
    best by 0.15 or more (the moment that goes against the clip's answer), and the best frame
    read from the context alone (no face), if any. The other slots go greedily to the best
    frames at least ``span / (k + 1)`` seconds from those chosen (``span``: from the first to the
    last frame with probabilities), so they spread over the moments that can be shown (the gap is
    dropped if that leaves slots empty), and never to two frames with the same probabilities (one
    moment shown twice). Without any frame with probabilities (face-only
    model, no face) the frames are spread evenly in time.

    Args:
        prediction: the prediction.
        k: how many frames at most (0 gives none).

    Returns:
        Sorted list of frame indices, ``len <= min(k, len(prediction.frames))``.
    """
    frames = prediction.frames
    n = len(frames)
    if k <= 0 or n == 0:
        return []
    if n <= k:
        return list(range(n))
    times = np.array([f.timestamp for f in frames], dtype=np.float64)
    scored = [i for i in range(n) if frames[i].probabilities]
    if not scored:
        picks = np.linspace(0, n - 1, k).round().astype(int)
        return sorted(set(int(i) for i in picks))

    def score(i: int) -> float:
        p = frames[i].probabilities or {}
        if prediction.label is not None and prediction.label in p:
            return float(p[prediction.label])
        return max(p.values())

    ranked = sorted(scored, key=lambda i: (-score(i), times[i]))
    chosen: list[int] = [ranked[0]]

    def same_moment(i: int) -> bool:
        return any(frames[i].probabilities == frames[j].probabilities for j in chosen)

    if k >= 2 and score(ranked[0]) - score(ranked[-1]) >= 0.15:
        chosen.append(ranked[-1])  # the moment least like the clip's answer
    context_only = [i for i in ranked if _is_context_only(frames[i]) and i not in chosen]
    if len(chosen) < k and context_only and len(context_only) < len(ranked):
        chosen.append(context_only[0])
    gap = (times[scored].max() - times[scored].min()) / (k + 1)  # spread over the frames that can be shown
    for i in ranked:
        if len(chosen) >= k:
            break
        if i not in chosen and not same_moment(i) and all(abs(times[i] - times[j]) >= gap for j in chosen):
            chosen.append(i)
    for i in ranked:  # fill what the spacing left empty, still without repeating a moment
        if len(chosen) >= k:
            break
        if i not in chosen and not same_moment(i):
            chosen.append(i)
    return sorted(chosen[:k], key=lambda i: (times[i], i))


def _fmt_p(p: float | None) -> str:
    return "–" if p is None else f"{p:.1%}"


def _lambda_html(fw: dict[str, float] | None) -> str:
    if fw is None:
        return ""
    lf, lc = float(fw.get("face", 0.0)), float(fw.get("context", 0.0))
    tot = lf + lc if lf + lc > 0 else 1.0
    wf = 100.0 * lf / tot
    return (
        f'<div class="lambdas">λ<sub>face</sub> = {lf:.2f} &nbsp; λ<sub>context</sub> = {lc:.2f}'
        f'<div class="lambda" title="face {lf:.2f} / context {lc:.2f}">'
        f'<span class="lf" style="width:{wf:.1f}%"></span><span class="lc" style="width:{100 - wf:.1f}%"></span>'
        "</div></div>"
    )


def key_frame_view(prediction: Prediction, frame: FramePrediction, image: np.ndarray) -> np.ndarray:
    """The picture of a key frame as the report shows it.

    Args:
        prediction: the prediction ``frame`` belongs to (its ``frame_wh`` scales the boxes).
        frame: the sampled frame's prediction.
        image: the frame re-read from the video, RGB uint8 ``(H, W, 3)``.

    Returns:
        RGB uint8 image, longest side at most :data:`MAX_IMAGE_SIDE`: the context attention overlaid
        on the frame with the face box (context-aware models), or the frame with the face box drawn.
    """
    box = scale_box(frame.box, prediction, image.shape) if frame.face_present else None
    if frame.attention is not None:
        cbox = scale_box(prediction.context_box, prediction, image.shape)
        shown = attention_overlay(image, frame.attention, cbox, face_box=box)
    else:
        shown = image.copy()
        if box is not None:
            draw_box(shown, box)
    return _fit(shown)


def key_frame_images(
    prediction: Prediction, *, video_path: str | Path | None = None, k: int = 4
) -> list[tuple[int, np.ndarray]]:
    """The report's key frames: ``(index into prediction.frames, picture)`` in time order.

    The frames are chosen by :func:`select_key_frames` and re-read from ``video_path`` (default
    ``prediction.path``); each picture is :func:`key_frame_view`.

    Raises:
        VideoDecodeError: the video cannot be read.
    """
    picks = select_key_frames(prediction, k)
    if not picks:
        return []
    times = [prediction.frames[i].timestamp for i in picks]
    images = grab_frames(source_path(prediction, video_path), prediction.fps, times)
    return [(i, key_frame_view(prediction, prediction.frames[i], img)) for i, img in zip(picks, images, strict=True)]


def _key_frame_card(prediction: Prediction, idx: int, f: FramePrediction, image: np.ndarray) -> str:
    """HTML of one key-frame card: face crop (with a face) and the frame (attention overlay or face box)."""
    box = scale_box(f.box, prediction, image.shape) if f.face_present else None
    parts = [f'<figure class="card" id="keyframe-{idx}">', f"<h3>t = {f.timestamp:.2f} s</h3>", '<div class="imgs">']
    if box is not None:
        crop = face_crop(image, box, size=128)
        parts.append(_img(image_png(crop), id=f"keyframe-{idx}-face", cls="face", alt=f"face at {f.timestamp:.2f} s"))
    if f.attention is not None:
        alt = f"context attention at {f.timestamp:.2f} s"
    else:
        alt = f"frame at {f.timestamp:.2f} s"
    shown = key_frame_view(prediction, f, image)
    parts.append(_img(image_png(shown), id=f"keyframe-{idx}-frame", cls="frame", alt=alt))
    parts.append("</div><figcaption>")
    top = top_emotion(f.probabilities)
    if top is None:
        parts.append('<p class="top">no face: no prediction for this frame</p>')
    else:
        parts.append(f'<p><span class="top">{_e(top[0])}</span> {_e(_fmt_p(top[1]))}')
        src = {"face+context": "face + context", "context": "context only (no face)", "face": "face"}.get(
            f.source or "", f.source or ""
        )
        if src:
            parts.append(f' <span class="note">· {_e(src)}</span>')
        parts.append("</p>")
        rest = sorted(f.probabilities.items(), key=lambda kv: -kv[1])[1:3] if f.probabilities else []
        if rest:
            parts.append("<ul>" + "".join(f"<li>{_e(k)} {_e(_fmt_p(v))}</li>" for k, v in rest) + "</ul>")
    parts.append(_lambda_html(f.fusion_weights))
    parts.append("</figcaption></figure>")
    return "".join(parts)


def _frame_table(prediction: Prediction) -> str:
    has_fw = any(f.fusion_weights is not None for f in prediction.frames)
    head = "<tr><th>time (s)</th><th>face</th><th>source</th><th>top emotion</th><th>prob.</th>"
    if prediction.label is not None:
        head += f"<th>p({_e(prediction.label)})</th>"
    if has_fw:
        head += "<th>λ face</th><th>λ context</th>"
    rows = [head + "</tr>"]
    for f in prediction.frames:
        top = top_emotion(f.probabilities)
        cls = "" if f.face_present else ' class="noface"'
        r = f"<tr{cls}><td class='num'>{f.timestamp:.2f}</td><td>{'yes' if f.face_present else 'no'}</td>"
        r += f"<td>{_e(f.source or '–')}</td><td>{_e(top[0]) if top else '–'}</td>"
        r += f"<td class='num'>{_e(_fmt_p(top[1] if top else None))}</td>"
        if prediction.label is not None:
            p = (f.probabilities or {}).get(prediction.label)
            r += f"<td class='num'>{_e(_fmt_p(p))}</td>"
        if has_fw:
            fw = f.fusion_weights
            lf = "–" if fw is None else f"{float(fw.get('face', 0.0)):.2f}"
            lc = "–" if fw is None else f"{float(fw.get('context', 0.0)):.2f}"
            r += f"<td class='num'>{lf}</td><td class='num'>{lc}</td>"
        rows.append(r + "</tr>")
    return '<table class="frames">' + "".join(rows) + "</table>"


def _person_faces(prediction: Prediction) -> list[tuple[PersonPrediction, int]]:
    """``(person, index of their most confident frame)`` for the persons section (none with fewer than 2 persons)."""
    persons = [p for p in prediction.persons if p.frames_with_face]
    if len(persons) < 2:
        return []

    def best(p) -> int:
        idx = [i for i, f in enumerate(p.frames) if f.face_present]
        return max(idx, key=lambda i: max((p.frames[i].probabilities or {"": 0.0}).values()))

    return [(p, best(p)) for p in persons]


def report_frame_times(prediction: Prediction, picks: list[int]) -> list[float]:
    """The timestamps of every frame the report shows: the key frames ``picks`` (indices into
    ``prediction.frames``), then each person's face of the persons section."""
    times = [prediction.frames[i].timestamp for i in picks]
    return times + [p.frames[i].timestamp for p, i in _person_faces(prediction)]


def _persons_section(prediction: Prediction, images: Mapping[float, np.ndarray]) -> str:
    """Every person with their id, face (at their most confident frame), emotion and when they are seen."""
    faces = _person_faces(prediction)
    if not faces:
        return ""
    rows = [
        "<tr><th>person</th><th>face</th><th>emotion</th><th>confidence</th><th>frames with a face</th>"
        "<th>seen (s)</th></tr>"
    ]
    for p, i in faces:
        img = images[p.frames[i].timestamp]
        box = scale_box(p.frames[i].box, prediction, img.shape)
        face = _img(image_png(face_crop(img, box, size=96)), id=f"person-{p.person_id}-face", cls="face", alt="face")
        who = f"{p.person_id}" + (" (subject)" if p.subject else "")
        seen = "" if p.first_seen is None else f"{p.first_seen:.2f} – {p.last_seen:.2f}"
        rows.append(
            f'<tr id="person-{p.person_id}"><td>{_e(who)}</td><td>{face}</td><td>{_e(p.label or "–")}</td>'
            f"<td class='num'>{_e(_fmt_p(p.confidence))}</td>"
            f"<td class='num'>{p.frames_with_face} / {prediction.num_frames}</td><td>{_e(seen)}</td></tr>"
        )
    return (
        f'<section id="persons"><h2>Every person ({len(faces)})</h2>'
        '<p class="note">Each face track is a person with its own emotion; the verdict above is the '
        "subject's (the most persistent, then largest, face).</p>"
        f'<table class="persons">{"".join(rows)}</table></section>'
    )


def render_html_report(
    prediction: Prediction,
    *,
    video_path: str | Path | None = None,
    key_frames: int = 4,
    show_video_path: bool = True,
    frames: Mapping[float, np.ndarray] | None = None,
) -> str:
    """The report as an HTML string (see :func:`write_html_report`, which writes it to a file).

    ``frames``: the pictures the report shows, by timestamp (:func:`report_frame_times`), when the
    caller decoded them already (:func:`emocontext.report.explain`); else they are read here, in
    one pass over the video.

    Raises:
        VideoDecodeError: the video cannot be read (only read when key frames or persons are shown).
        ConfigError: ``key_frames < 0``.
    """
    if key_frames < 0:
        raise ConfigError(f"key_frames must be >= 0, got {key_frames}")
    from .. import __version__

    src = source_path(prediction, video_path)
    name = Path(prediction.path).name or str(prediction.path)
    picks = select_key_frames(prediction, key_frames)
    if frames is None:
        times = report_frame_times(prediction, picks)
        frames = dict(zip(times, grab_frames(src, prediction.fps, times), strict=True)) if times else {}
    images = [frames[prediction.frames[i].timestamp] for i in picks]

    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Emotion report: {_e(name)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
    ]
    # header
    out.append(f'<header><h1 id="file-name">{_e(name)}</h1><p class="path">{_e(prediction.path)}</p>')
    if prediction.label is not None:
        out.append(
            f'<div class="verdict" id="clip-label">{_e(prediction.label)} '
            f'<span class="conf">{_e(_fmt_p(prediction.confidence))}</span></div>'
        )
        if prediction.no_face:
            out.append('<p class="note">No face was found: the emotion was read from the scene (context) alone.</p>')
    else:
        out.append('<div class="verdict none" id="clip-label">no face found</div>')
    facts = [
        ("model", prediction.model),
        ("frames with a face", f"{prediction.frames_with_face} / {prediction.num_frames} sampled"),
        ("sampling rate", f"{prediction.fps:g} frames/s"),
    ]
    if prediction.frames:
        facts.append(("analysed", f"{prediction.frames[0].timestamp:.2f} – {prediction.frames[-1].timestamp:.2f} s"))
    if prediction.frame_wh:
        facts.append(("frame size", f"{prediction.frame_wh[0]} × {prediction.frame_wh[1]} px"))
    if show_video_path and video_path is not None and str(video_path) != str(prediction.path):
        facts.append(("frames read from", str(video_path)))
    out.append('<table class="facts">' + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts))
    out.append("</table>")
    if prediction.truncated:
        out.append(
            '<div class="warning" id="truncated">Warning: the file broke off while decoding (truncated or corrupt); '
            "only the frames before the break were analysed.</div>"
        )
    out.append("</header>")
    # clip probabilities
    out.append('<section id="probabilities"><h2>Clip probabilities</h2>')
    if prediction.probabilities:
        fig = probability_bars_figure(prediction.probabilities, highlight=prediction.label)
        out.append(_img(figure_png(fig), id="clip-probabilities", cls="plot", alt="clip probabilities"))
    else:
        out.append('<p class="note">No clip probabilities: the model had nothing to read.</p>')
    out.append("</section>")
    # timeline
    out.append(_persons_section(prediction, frames))
    if len(prediction.frames) > 1:
        out.append('<section id="timeline"><h2>Emotion over time</h2>')
        out.append(_img(figure_png(timeline_figure(prediction)), id="timeline-plot", cls="plot", alt="timeline"))
        note = "One line per emotion, one point per sampled frame; grey bands: frames without a face."
        if any(f.fusion_weights is not None for f in prediction.frames):
            note += (
                " Lower axis: λ<sub>face</sub>, the weight of the face stream in the fusion "
                "(1 − λ<sub>face</sub> = λ<sub>context</sub>, the weight of the scene)."
            )
        out.append(f'<p class="note">{note}</p></section>')
    # key frames
    if key_frames > 0:
        out.append('<section id="key-frames"><h2>Key frames</h2>')
        if picks:
            if any(prediction.frames[i].attention is not None for i in picks):
                out.append(
                    '<p class="note">The heat map shows where the context stream looked (its spatial attention over '
                    "the centre square it saw; bright = high); the rest of the frame is darkened. Green: the face.</p>"
                )
            out.append('<div class="cards">')
            for i, img in zip(picks, images, strict=True):
                out.append(_key_frame_card(prediction, i, prediction.frames[i], img))
            out.append("</div>")
        else:
            out.append('<p class="note">No sampled frames.</p>')
        out.append("</section>")
    # table
    out.append(f'<section id="frames"><h2>Every sampled frame ({len(prediction.frames)})</h2>')
    out.append(_frame_table(prediction) if prediction.frames else '<p class="note">No sampled frames.</p>')
    out.append("</section>")
    out.append(f"<footer>emocontext {_e(__version__)}</footer></main></body></html>")
    return "\n".join(out)


def write_html_report(
    prediction: Prediction,
    out_path: str | Path,
    *,
    video_path: str | Path | None = None,
    key_frames: int = 4,
    show_video_path: bool = True,
    frames: Mapping[float, np.ndarray] | None = None,
) -> Path:
    """Write a self-contained HTML report of ``prediction`` to ``out_path``.

    The file embeds every image as a base64 PNG (``data:image/png``), has inline CSS and no
    JavaScript or external link. Key frames (see :func:`select_key_frames`) are re-read from
    the video sampled at ``prediction.fps``, matched to the frame timestamps (nearest); their
    boxes are scaled if the video's resolution differs from ``prediction.frame_wh``. The file
    is written atomically (a temporary file in the same folder, then :func:`os.replace`);
    missing parent folders are created.

    Args:
        prediction: what :meth:`~emocontext.inference.Predictor.predict` returned.
        out_path: the ``.html`` file to write (overwritten).
        video_path: where to read the frames (default ``prediction.path``).
        key_frames: how many key frames to show (0: none, and the video is not read).
        show_video_path: name ``video_path`` in the report when it differs from ``prediction.path``
            (off for the web service, whose uploads sit in server-private temporary files).
        frames: the pictures by timestamp, already decoded (see :func:`render_html_report`).

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        VideoDecodeError: the video cannot be read (missing, empty, corrupt, no video stream).
        ConfigError: ``key_frames < 0``.
        OutputError: the file cannot be written (nothing is left behind).
    """
    from ..outputs import atomic_write_text

    text = render_html_report(
        prediction, video_path=video_path, key_frames=key_frames, show_video_path=show_video_path, frames=frames
    )
    return atomic_write_text(out_path, text)
