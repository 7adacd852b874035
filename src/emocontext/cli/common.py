"""What the ``emocontext`` commands share: the consoles, one-line errors and warnings, logging, option types.

An :class:`~emocontext.errors.EmoContextError` becomes ``error: <message>`` on stderr and exit status 1
(:data:`INPUT`); a wrong command line exits with 2 (:data:`USAGE`, as click does); never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..options import DetectorName, PredictOptions

__all__ = [
    "DetectEvery",
    "Detector",
    "Fps",
    "INPUT",
    "RayAddress",
    "RayWorkers",
    "ShowProgress",
    "Store",
    "TestFraction",
    "Threads",
    "USAGE",
    "Workers",
    "err",
    "error",
    "fail",
    "local_workers",
    "out",
    "print_results",
    "progress_bar",
    "say",
    "set_threads",
    "setup_logging",
    "warn",
]

out = Console()
err = Console(stderr=True)

#: Exit status when an input or the run failed (a file, the weights, an output, a failed file of a batch).
INPUT = 1
#: Exit status when the command line is wrong (click's own for unknown options and bad values).
USAGE = 2


def fail(message: str, code: int = INPUT) -> typer.Exit:
    """Print ``error: <message>``; the :class:`typer.Exit` to raise (``code``: :data:`INPUT` or :data:`USAGE`)."""
    error(message)
    return typer.Exit(code)


def say(message: str) -> None:
    """One line on stdout, printed as it is (a module-level function: it goes to the processes of ``--nproc``)."""
    out.print(message, markup=False, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """``error: <message>`` on stderr; the message is printed as is (no rich markup: brackets stay)."""
    err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """``warning: <message>`` on stderr (a module-level function: it goes to the processes of ``--nproc``)."""
    err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


Detector = Annotated[
    DetectorName,
    typer.Option(
        help="Face detector: mtcnn (offline default), yunet (fast; `emocontext weights download yunet`), haar, "
        "dlib, or none (each image or frame IS the face: pre-cropped or aligned faces, FER-style folders).",
        case_sensitive=False,
    ),
]
Fps = Annotated[
    float,
    typer.Option(
        help="Frames sampled per second of video (CACA-RNN uses 5).",
        min=PredictOptions.MIN_FPS,
        max=PredictOptions.MAX_FPS,
    ),
]
DetectEvery = Annotated[
    int,
    typer.Option(
        help="Search the whole frame for faces on every K-th sampled frame only (a key frame); between key frames "
        "look for each face near its last box, which is 2-3x faster. A face that enters the picture is found at "
        "the next key frame; one that is lost triggers a whole-frame search at once. 1: every frame "
        "(benchmarks/keyframe_detection.md gives the recall cost).",
        min=1,
        metavar="K",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Spread the files over a Ray cluster (pip install -e \".[ray]\"): 'local' starts one on this machine, "
        "'auto' joins the one `ray start` made here, HOST:PORT joins that head. Actors load the models once each; "
        "the results are the same as without --ray.",
        show_default=False,
    ),
]
RayWorkers = Annotated[
    int | None, typer.Option(help="With --ray: actors in the pool (default: one per CPU of the cluster).", min=1)
]
Threads = Annotated[
    int | None,
    typer.Option(
        help="Threads of the networks (ONNX Runtime, torch) in this process, or of each Ray actor with --ray "
        "(default: all cores, divided among the files analysed at once; 1 per actor). Results are bit-identical "
        "between runs with the same number of threads.",
        min=1,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        help="Files analysed at once: threads of this process sharing the loaded models (default: one per core, "
        "at most 4), or Ray actors with --ray (default: one per CPU of the cluster).",
        min=1,
    ),
]


def local_workers(workers: int | None, threads: int | None, files: int) -> tuple[int, int | None]:
    """``(files at once, network threads)`` for a run of ``files`` files in this process.

    Default: one file per core (at most 4, at most ``files``), the cores divided among them; on 2 cores
    two files with one torch thread each ran 1.4x faster than one file with two threads, since
    detection and the small CNNs gain little from a second intra-op thread.
    """
    import os

    cores = os.cpu_count() or 1
    n = max(1, min(workers or min(4, cores), files))
    if threads is None and n > 1:
        threads = max(1, cores // n)
    return n, threads


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr, driven by the library's one progress callback: yields ``on_progress(done, total)``.

    The library never draws: it calls ``on_progress``; the commands draw (``enabled=False``: nothing is shown).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err, disable=not enabled, transient=False) as bar:
        task = bar.add_task(label, total=None)

        def on_progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield on_progress


def set_threads(threads: int | None) -> None:
    """Intra-op threads of every network (ONNX Runtime, torch) when given: :func:`emocontext.runtime.set_threads`."""
    from .. import runtime

    runtime.set_threads(threads)


#: ``--progress/--no-progress`` of the commands that read many frames.
ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars on stderr: files done and the sampled frames of the file being read. Default: on "
        "when stderr is a terminal (and not --quiet), off when it is piped or redirected.",
        show_default=False,
    ),
]
Store = Annotated[Path, typer.Option("--store", "-s", help="Feature store made by `emocontext extract`.")]
TestFraction = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=0.9,
        help="Without a test split, hold out this fraction of the clips (grouped by subject) as one, so that a "
        "result is reported on clips never used to select a checkpoint. 0: none (val numbers are then "
        "selection-set numbers, optimistic). Give `evaluate` the same value as `train`.",
    ),
]


def print_results(summaries: list[dict], title: str = "results (median over seeds)") -> None:
    """The table ``train`` and ``compare`` print: one row per model summary (:func:`emocontext.training.run`)."""
    from rich.table import Table

    table = Table(title=title)
    for c in (
        "model",
        "parameters",
        "val macro P (selection)",
        "val mAP (selection)",
        "val acc (selection)",
        "test macro P (held out)",
        "test mAP (held out)",
        "test acc (held out)",
        "train clips/s",
    ):
        table.add_column(c, justify="right")
    table.caption = (
        "val: the split that picked each checkpoint (and fitted ensemble weights): optimistic. "
        "macro P: macro precision (MEC's metric); mAP: mean average precision"
    )
    for s in summaries:
        med = s["median"]

        def cell(part, metric, med=med):
            return f"{med[part][metric]:.4f}" if part in med else "-"

        table.add_row(
            s["model"],
            f"{s['parameters']:,}",
            cell("val", "macro_precision"),
            cell("val", "macro_map"),
            cell("val", "accuracy"),
            cell("test", "macro_precision"),
            cell("test", "macro_map"),
            cell("test", "accuracy"),
            "-" if s["clips_per_second"] is None else f"{s['clips_per_second']:.0f}",
        )
    out.print(table)
