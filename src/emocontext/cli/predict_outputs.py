"""What ``emocontext predict`` writes besides its tables: reports and annotated videos, and the lines for people."""

from __future__ import annotations

from pathlib import Path

from ..errors import EmoContextError
from .common import USAGE, error, fail, out, warn

__all__ = ["check_folder_targets", "explain_one", "print_quiet", "print_summary"]


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
    show.print(f"{path}\t{label}", highlight=False, markup=False, soft_wrap=True)


def print_summary(records: list, single: bool, show=out) -> None:
    """One file's verdict and evidence, or the table of a folder run (:mod:`emocontext.report.console`)."""
    from ..report.console import prediction_summary, predictions_table

    ok = [pred for _, pred, e in records if pred is not None and not e]
    if single and ok:
        for part in prediction_summary(ok[0]):
            show.print(part, highlight=False)
    elif not single and records:
        show.print(predictions_table(records), highlight=False)
