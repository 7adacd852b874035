"""What ``emocontext predict`` writes besides its tables: reports and annotated videos, and the lines for people."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import EmoContextError
from .common import USAGE, err, error, fail, out, warn

__all__ = ["check_folder_targets", "explain_one", "predict_progress", "print_quiet", "print_summary"]


def check_folder_targets(report: Path | None, annotate: Path | None) -> None:
    """Several inputs give one report and one annotated video each: ``--report`` and ``--annotate`` must name
    folders then (exit status 2 otherwise)."""
    from ..video.decode import CONTAINER_FORMATS, IMAGE_SUFFIXES

    if report is not None and report.suffix.lower() in {".html", ".htm"} and not report.is_dir():
        raise fail(f"--report {report}: several inputs give one report each: name a folder, not a .html file", USAGE)
    if (
        annotate is not None
        and annotate.suffix.lower() in {*CONTAINER_FORMATS, *IMAGE_SUFFIXES}
        and not annotate.is_dir()
    ):
        raise fail(f"--annotate {annotate}: several inputs give one video each: name a folder, not a file", USAGE)


def explain_one(pred, report: Path | None, annotate: Path | None, single: bool, name: Path) -> str | None:
    """The HTML report and the annotated video of one prediction (:func:`emocontext.report.explain`); the error
    message if they could not be written."""
    from ..report import explain
    from ..video.decode import IMAGE_SUFFIXES, is_image

    still = is_image(pred.path)
    target = annotate
    if annotate is not None and not single:
        target = annotate / f"{name}{Path(pred.path).suffix.lower() if still else '.mp4'}"
    elif annotate is not None and still and annotate.suffix.lower() not in IMAGE_SUFFIXES:
        target = annotate.with_suffix(".png")  # a still image gives an annotated image, not a video
        warn(f"{pred.path} is a still image: the annotated image is {target}")
    try:
        explain(
            pred,
            report=None if report is None else report if single else report / f"{name}.html",
            annotated=target,
            key_frame_names=None,
        )
    except EmoContextError as e:
        error(str(e))
        return str(e)
    return None


def print_quiet(path: str, pred, problem: str | None, show=out) -> None:
    if problem or pred is None:
        return
    label = "no face" if pred.label is None else f"{pred.label} {pred.confidence:.2f}"
    show.file.write(f"{path}\t{label}\n")  # plain text: no rendering, and no flush per line into a pipe


def print_summary(records: list, single: bool, show=out) -> None:
    """One file's verdict and evidence, or the table of a folder run (:mod:`emocontext.report.console`)."""
    from ..report.console import prediction_summary, predictions_table

    ok = [pred for _, pred, e in records if pred is not None and not e]
    if single and ok:
        for part in prediction_summary(ok[0]):
            show.print(part, highlight=False)
    elif not single and records:
        show.print(predictions_table(records), highlight=False)


class PredictProgress:
    """The bars of a ``predict`` run: files done (several inputs) and the sampled frames of the file being read."""

    def __init__(self, bar, files: int | None, frames: bool):
        self.bar = bar
        self.files = None if files is None else bar.add_task("files", total=files)
        self.frames = bar.add_task("frames", total=None, visible=False) if frames else None
        self.on_frames = self._on_frames if frames else None

    def _on_frames(self, done: int, total: int | None) -> None:
        self.bar.update(self.frames, completed=done, total=total, visible=True)

    def file_done(self) -> None:
        if self.frames is not None and self.files is not None:  # the next file's frames start from zero
            self.bar.reset(self.frames, total=None, visible=False)
        if self.files is not None:
            self.bar.advance(self.files)


@contextmanager
def predict_progress(
    progress: bool | None, quiet: bool, single: bool, files: int, frames: bool
) -> Iterator[PredictProgress]:
    """Progress of ``predict`` on stderr; ``progress`` None: shown when stderr is a terminal and not ``quiet``.

    ``--progress`` on a pipe or a log file draws the bars there too (terminal control codes included), and
    leaves their last state there.
    ``frames``: a bar of the sampled frames of the file being read (one file at a time only).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    show = (err.is_terminal and not quiet) if progress is None else progress
    console = err if err.is_terminal or not show else Console(stderr=True, force_terminal=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    # on a terminal the bars vanish when done; in a pipe or log the last state stays (a run shorter than one
    # refresh, 0.1 s, would otherwise leave nothing there)
    with Progress(*columns, console=console, disable=not show, transient=err.is_terminal) as bar:
        yield PredictProgress(bar, None if single else files, frames)
