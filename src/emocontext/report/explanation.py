"""Explain one prediction on disk: the HTML report, the annotated video and the key-frame pictures (:func:`explain`).

The one function the command line (``predict --report --annotate``) and the web service (``/v1/jobs``)
call. The video is decoded once: the annotated video's pass at the native frame rate also samples the
frames at ``prediction.fps`` exactly as :func:`~emocontext.video.decode.iter_frames` does, and the
report's key frames and persons' faces are taken from it; without an annotated video one sampled
pass reads them all. A caller that draws more pictures (the service's numbered key frames and face
thumbnails) names their times (``frame_times``) and gets the frames back (:attr:`Explanation.frames`)
from the same pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ._frames import FrameGrab, grab_frames, source_path
from .annotate import write_annotated_video
from .html import key_frame_view, report_frame_times, select_key_frames, write_html_report

if TYPE_CHECKING:
    import numpy as np

    from ..inference import Prediction

__all__ = ["Explanation", "KeyFrame", "explain"]


@dataclass(frozen=True)
class KeyFrame:
    """A key-frame picture written by :func:`explain`: ``index`` into ``prediction.frames``, its
    ``timestamp`` in seconds and the PNG ``path``."""

    index: int
    timestamp: float
    path: Path


@dataclass(frozen=True)
class Explanation:
    """What :func:`explain` wrote: the report, the annotated video (None when not asked for) and the key frames;
    ``frames``: the sampled frames it read (RGB uint8) by timestamp, those of ``frame_times`` included."""

    report: Path | None = None
    annotated: Path | None = None
    key_frames: list[KeyFrame] = field(default_factory=list)
    frames: dict[float, np.ndarray] = field(default_factory=dict, repr=False, compare=False)


def explain(
    prediction: Prediction,
    out_dir: str | Path = ".",
    video: str | Path | None = None,
    *,
    report: str | Path | None = "report.html",
    annotated: str | Path | None = "annotated.mp4",
    key_frames: int = 4,
    key_frame_names: str | None = "keyframe-{n}.png",
    show_video_path: bool = True,
    frame_times: Sequence[float] = (),
) -> Explanation:
    """Write the report, the annotated video and the key-frame pictures of ``prediction`` into ``out_dir``.

    Args:
        prediction: what :meth:`~emocontext.inference.Predictor.predict` returned.
        out_dir: the folder the names below are relative to (an absolute name stands for itself).
        video: the file to read the frames from (default ``prediction.path``; the service's upload).
        report: the HTML report's name (:func:`~.html.write_html_report`), or None for none.
        annotated: the annotated video's name (``.mp4``, ``.mov``, ``.mkv``; an image suffix for a still
            image: :func:`~.annotate.write_annotated_video`), or None for none.
        key_frames: how many key frames the report shows and the pictures hold (:func:`~.html.select_key_frames`).
        key_frame_names: name of the ``n``-th key-frame PNG (:func:`~.html.key_frame_view`), or None for none.
        show_video_path: name ``video`` in the report when it is not ``prediction.path``.
        frame_times: more timestamps (seconds) whose sampled frames to take from the same decoding, for the
            caller's own pictures: each is the sampled frame nearest to it, in :attr:`Explanation.frames`.

    Returns:
        An :class:`Explanation` with the paths written.

    Raises:
        VideoDecodeError: the video cannot be read.
        ConfigError: an unsupported annotated-video suffix, ``key_frames < 0``.
        OutputError: a file cannot be written (each is written atomically: nothing partial is left).
    """
    if key_frames < 0:
        raise ConfigError(f"key_frames must be >= 0, got {key_frames}")
    out_dir = Path(out_dir)
    src = source_path(prediction, video)
    picks = select_key_frames(prediction, key_frames) if report is not None or key_frame_names else []
    times = (
        report_frame_times(prediction, picks) if report is not None else [prediction.frames[i].timestamp for i in picks]
    ) + list(frame_times)
    grab = FrameGrab(times)
    annotated_path = None
    if annotated is not None:  # one decoding: the annotation pass hands over the sampled frames
        annotated_path = write_annotated_video(prediction, out_dir / annotated, video_path=src, on_sampled=grab.offer)
        images = grab.images(src) if times else []
    else:
        images = grab_frames(src, prediction.fps, times) if times else []
    frames = dict(zip(times, images, strict=True))
    report_path = None
    if report is not None:
        report_path = write_html_report(
            prediction,
            out_dir / report,
            video_path=video,
            key_frames=key_frames,
            show_video_path=show_video_path,
            frames=frames,
        )
    written = []
    if key_frame_names:
        import cv2

        from ..outputs import atomic_write_bytes

        for n, i in enumerate(picks):
            image = key_frame_view(prediction, prediction.frames[i], frames[prediction.frames[i].timestamp])
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if ok:
                path = atomic_write_bytes(out_dir / key_frame_names.format(n=n), png.tobytes())
                written.append(KeyFrame(i, prediction.frames[i].timestamp, Path(path)))
    return Explanation(report_path, annotated_path, written, frames)
