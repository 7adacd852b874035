"""A ``/v1/jobs`` job's pictures and files: the HTML report, key frames with every person numbered, a face
thumbnail per person, and the annotated video. Run in the worker; every file is written atomically.

The key frames are the report's (:func:`~emocontext.report.html.select_key_frames`, the face box or the
context attention of :func:`~emocontext.report.html.key_frame_view`), with the box of every person seen
in that frame drawn and numbered with their ``person_id``, so that "person 3" on the page can be found on
the picture. Each person's thumbnail is their face at their most confident frame. The upload is decoded
once, by :func:`emocontext.report.explain`, which writes the report and the annotated video and hands back
the frames the pictures here are drawn on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import cv2
import numpy as np

from ..outputs import atomic_write_bytes

__all__ = ["write_job_outputs", "write_key_frames", "write_thumbnails", "frame_times", "KEY_FRAMES", "THUMBNAIL_SIZE"]

#: Key frames per job, and the side of a person's face thumbnail in pixels.
KEY_FRAMES = 4
THUMBNAIL_SIZE = 96
#: Box colour (RGB) of the persons other than the subject (the subject keeps the report's green).
OTHER_BOX = (255, 255, 255)


def _png(path: Path, image_rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB picture
        raise ValueError(f"could not encode {path.name}")
    atomic_write_bytes(path, data.tobytes())


def _number(image: np.ndarray, box: list[float], text: str, color: tuple[int, int, int]) -> None:
    """A filled tag with ``text`` at the box's top-left corner (inside the picture)."""
    h, w = image.shape[:2]
    scale = max(0.5, min(h, w) / 400)
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x = int(min(max(0, box[0]), w - tw - 6))
    y = int(max(th + base + 4, box[1]))
    cv2.rectangle(image, (x, y - th - base - 4), (x + tw + 6, y), color, -1)
    cv2.putText(image, text, (x + 3, y - base - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)


def numbered_view(pred, i: int, image: np.ndarray) -> np.ndarray:
    """Key frame ``i`` as the report shows it, with every person's box in that frame drawn and numbered."""
    from ..report._frames import scale_box
    from ..report.html import key_frame_view
    from ..report.plots import FACE_BOX_COLOR, draw_box

    shown = key_frame_view(pred, pred.frames[i], image)
    for person in pred.persons:
        f = person.frames[i] if i < len(person.frames) else None
        if f is None or not f.face_present or f.box is None:
            continue
        box = scale_box(f.box, pred, shown.shape)
        color = FACE_BOX_COLOR if person.subject else OTHER_BOX
        draw_box(shown, box, color=color)
        _number(shown, box, str(person.person_id), color)
    return shown


def _best_frame(person) -> int | None:
    seen = [i for i, f in enumerate(person.frames) if f.face_present and f.box is not None]
    if not seen:
        return None
    return max(seen, key=lambda i: max((person.frames[i].probabilities or {"": 0.0}).values()))


def _thumbnail_picks(pred) -> list[tuple]:
    """``(person, index of their most confident frame with a face box)`` of every person who has one."""
    picks = [(p, _best_frame(p)) for p in pred.persons]
    return [(p, i) for p, i in picks if i is not None]


def frame_times(pred, k: int = KEY_FRAMES) -> list[float]:
    """The timestamps of the frames :func:`write_key_frames` and :func:`write_thumbnails` draw on."""
    from ..report.html import select_key_frames

    keys = [pred.frames[i].timestamp for i in select_key_frames(pred, k)]
    return keys + [p.frames[i].timestamp for p, i in _thumbnail_picks(pred)]


def write_thumbnails(pred, frames: Mapping[float, np.ndarray], out_dir: Path) -> list[dict]:
    """``person-<id>.png`` for every person with a face: ``[{"id", "subject", "file"}]`` in ``persons`` order.

    ``frames``: the sampled frames by timestamp, those of :func:`frame_times` among them.
    """
    from ..report._frames import scale_box
    from ..video.streams import face_crop

    out = []
    for p, i in _thumbnail_picks(pred):
        image = frames[p.frames[i].timestamp]
        name = f"person-{p.person_id}.png"
        _png(out_dir / name, face_crop(image, scale_box(p.frames[i].box, pred, image.shape), size=THUMBNAIL_SIZE))
        out.append({"id": p.person_id, "subject": bool(p.subject), "file": name})
    return out


def write_key_frames(pred, frames: Mapping[float, np.ndarray], out_dir: Path, k: int = KEY_FRAMES) -> list[dict]:
    """``keyframe-<n>.png``: ``[{"frame": index into result.frames, "timestamp", "file", "persons"}]``.

    ``frames``: the sampled frames by timestamp, those of :func:`frame_times` among them.
    """
    from ..report.html import select_key_frames

    out = []
    for n, i in enumerate(select_key_frames(pred, k)):
        name = f"keyframe-{n}.png"
        _png(out_dir / name, numbered_view(pred, i, frames[pred.frames[i].timestamp]))
        shown = [p.person_id for p in pred.persons if i < len(p.frames) and p.frames[i].face_present]
        out.append({"frame": i, "timestamp": pred.frames[i].timestamp, "file": name, "persons": shown})
    return out


def write_job_outputs(pred, path: Path, out_dir: Path, stage: Callable[[str], None]) -> dict:
    """Report, annotated video, key frames and thumbnails of ``pred`` (read from ``path``) in ``out_dir``.

    One decoding of ``path`` (:func:`emocontext.report.explain`): the annotated video's pass also samples the
    frames of the report, of the numbered key frames and of the thumbnails.

    Args:
        pred: the :class:`~emocontext.inference.Prediction` (``pred.path`` already the client's file name).
        path: the upload the prediction was made from.
        out_dir: the job's folder (exists).
        stage: called with ``"annotate"`` (the pass that writes the annotated video and the report) and
            ``"report"`` (the key frames and thumbnails) as the work goes on.

    Returns:
        ``{"key_frames": [...], "persons": [...], "outputs": {"report": "report.html", "annotated": file}}``;
        the annotated file is ``annotated.png`` for a still image, else ``annotated.mp4``.

    Raises:
        VideoDecodeError: the upload cannot be read again.
    """
    from ..report import explain
    from ..video.decode import is_image

    annotated = "annotated.png" if is_image(path) else "annotated.mp4"
    stage("annotate")
    done = explain(
        pred,
        out_dir,
        path,
        report="report.html",
        annotated=annotated,
        key_frames=KEY_FRAMES,
        key_frame_names=None,
        show_video_path=False,
        frame_times=frame_times(pred),
    )
    stage("report")
    key_frames = write_key_frames(pred, done.frames, out_dir)
    persons = write_thumbnails(pred, done.frames, out_dir)
    return {"key_frames": key_frames, "persons": persons, "outputs": {"report": "report.html", "annotated": annotated}}
