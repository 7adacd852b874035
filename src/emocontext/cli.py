"""The ``emocontext`` command.

Every :class:`~emocontext.errors.EmoContextError` becomes a one-line message on
stderr and exit status 1 (2 for bad arguments, as click does); never a traceback.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .errors import EmoContextError

app = typer.Typer(
    help=(
        "Context-aware video emotion recognition.\n\n"
        "Point `emocontext predict` at videos, images or folders to get the emotion of the person in them; "
        "`emocontext extract` caches face and context features of a dataset for training."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


Detector = Annotated[
    str,
    typer.Option(help="Face detector: mtcnn (offline default), yunet (fast; ONNX file needed), haar, dlib."),
]
Fps = Annotated[float, typer.Option(help="Frames sampled per second of video (CACA-RNN uses 5).", min=0.01)]


@app.command()
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Video/image files or folders (searched recursively).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full result (with per-frame probabilities) as JSON.")
    ] = None,
    jsonl: Annotated[Path | None, typer.Option(help="Write one JSON line per file (with per-frame results).")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write one CSV row per file.")] = None,
    detector: Detector = "mtcnn",
    fps: Fps = 5.0,
    max_duration: Annotated[float | None, typer.Option(help="Read at most this many seconds of each file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Say which emotion the person in each video shows.

    One file: prints the clip emotion with every probability and how many sampled
    frames had a face. Several files or a folder: one row per file, with a progress
    bar; a file that fails is reported and skipped, the others still run, and the
    exit status is 1 if any failed.

    Examples:

      emocontext predict clip.mp4 --json clip.json

      emocontext predict videos/ --jsonl results.jsonl --csv results.csv
    """
    _setup_logging(verbose)
    from .data.manifest import Manifest
    from .predict import Predictor

    try:
        files = [e.path for e in Manifest.from_paths(paths)]
        predictor = Predictor(detector=detector, fps=fps, max_duration=max_duration)
    except EmoContextError as e:
        raise _fail(str(e)) from None

    single = len(files) == 1
    results, failures = [], []
    sinks = _Sinks(jsonl, csv_out)
    from rich.progress import Progress

    with Progress(console=err, disable=quiet or single, transient=True) as bar:
        task = bar.add_task("predict", total=len(files))
        for path, pred, error in predictor.predict_many(files):
            if error:
                failures.append((path, error))
                err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            else:
                results.append(pred)
                sinks.write(pred)
            bar.advance(task)
    sinks.close()

    if json_out and results:
        payload = results[0].to_dict() if single else [r.to_dict() for r in results]
        json_out.write_text(json.dumps(payload, indent=2))
    if not quiet:
        if single and results:
            _print_one(results[0])
        elif results:
            _print_many(results)
    if failures:
        if not single:
            err.print(f"{len(failures)} of {len(files)} files failed")
        raise typer.Exit(1)


class _Sinks:
    """JSON-lines and CSV writers that flush after every file (a crash keeps what was done)."""

    def __init__(self, jsonl: Path | None, csv_path: Path | None):
        self.jsonl = open(jsonl, "w") if jsonl else None
        self.csv = open(csv_path, "w", newline="") if csv_path else None
        self.writer = None

    def write(self, pred) -> None:
        if self.jsonl:
            self.jsonl.write(json.dumps(pred.to_dict()) + "\n")
            self.jsonl.flush()
        if self.csv:
            row = {
                "path": pred.path,
                "label": pred.label or "",
                "confidence": "" if pred.confidence is None else f"{pred.confidence:.4f}",
                "frames": pred.num_frames,
                "frames_with_face": pred.frames_with_face,
                **{f"p_{k}": f"{v:.4f}" for k, v in pred.probabilities.items()},
            }
            if self.writer is None:
                self.writer = csv.DictWriter(self.csv, fieldnames=list(row))
                self.writer.writeheader()
            self.writer.writerow(row)
            self.csv.flush()

    def close(self) -> None:
        for f in (self.jsonl, self.csv):
            if f:
                f.close()


def _print_one(pred) -> None:
    face_note = f"{pred.frames_with_face}/{pred.num_frames} sampled frames had a face"
    if pred.no_face:
        out.print(f"[bold]{pred.path}[/]: [yellow]no face found[/] ({face_note}); no emotion predicted")
        return
    title = f"{Path(pred.path).name}: [bold]{pred.label}[/] ({pred.confidence:.0%})"
    table = Table(title=title, caption=f"{face_note} at {pred.fps:g} fps; model {pred.model}")
    table.add_column("emotion")
    table.add_column("probability", justify="right")
    table.add_column("")
    for name, p in sorted(pred.probabilities.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{p:.3f}", "█" * int(round(p * 30)), style="bold" if name == pred.label else None)
    out.print(table)
    if pred.truncated:
        out.print("[yellow]warning:[/] the file breaks off part-way; only the frames before the break were used")


def _print_many(results) -> None:
    table = Table(title=f"{len(results)} files")
    for c in ("file", "emotion", "confidence", "frames with face"):
        table.add_column(c)
    for r in results:
        table.add_row(
            r.path,
            r.label or "[yellow]no face[/]",
            "" if r.confidence is None else f"{r.confidence:.2f}",
            f"{r.frames_with_face}/{r.num_frames}",
        )
    out.print(table)


@app.command()
def extract(
    inputs: Annotated[
        list[Path], typer.Argument(help="A manifest CSV (path,label,split,group,start,end) or folders/files.")
    ],
    store: Annotated[Path, typer.Option("--store", "-o", help="Feature store directory (created or resumed).")],
    detector: Detector = "mtcnn",
    fps: Fps = 5.0,
    context_backbone: Annotated[
        str, typer.Option(help="efficientnet_lite0 (default) or squeezenet1_1.")
    ] = "efficientnet_lite0",
    spatial: Annotated[
        bool, typer.Option(help="Keep context feature maps (C x 7 x 7) instead of pooled vectors.")
    ] = False,
    hide_face: Annotated[
        bool, typer.Option(help="Black out the subject's face in the context stream (CAER-Net).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Extract face and context features of every clip into a feature store.

    Resumable: run the same command again after an interruption and finished clips
    are skipped. Failed clips are listed at the end and in STORE/failures.jsonl.
    The store remembers which extractors made it and refuses to mix others in.
    """
    _setup_logging(verbose)
    from .data.manifest import Manifest
    from .features.extract import Extractors
    from .features.extract import extract as run_extract
    from .video.pipeline import StreamConfig

    try:
        if len(inputs) == 1 and inputs[0].suffix.lower() == ".csv":
            manifest = Manifest.from_csv(inputs[0])
        else:
            manifest = Manifest.from_paths(inputs)
        ex = Extractors.build(
            detector=detector,
            context_backbone=context_backbone,
            spatial=spatial,
            config=StreamConfig(fps=fps, hide_face=hide_face),
        )
        summary = run_extract(manifest, store, ex, progress=not quiet)
    except EmoContextError as e:
        raise _fail(str(e)) from None
    out.print(f"{summary.done} clips extracted, {summary.skipped} already in {store}, {len(summary.failed)} failed")
    for _path, msg in summary.failed:
        err.print(f"[red]failed:[/] {msg}", highlight=False, soft_wrap=True)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the version."""
    from . import __version__

    out.print(__version__)


def main() -> None:  # pragma: no cover
    sys.exit(app())
