"""The ``emocontext`` command: the app, and every command but ``predict`` (:mod:`emocontext.commands.predict`).

Every :class:`~emocontext.errors.EmoContextError` becomes a one-line message on
stderr and exit status 1 (2 for bad arguments, as click does); never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .commands.common import DetectEvery, Detector, Fps, RayAddress, RayWorkers, Threads, err, out, set_threads
from .commands.common import fail as _fail
from .commands.common import setup_logging as _setup_logging
from .commands.common import warn as _warn
from .commands.predict import predict
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
    help="Pretrained model files: list them (licence, metrics), fetch those that do not ship (SHA-256 checked).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(weights_app, name="weights")


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


app.command()(predict)  # emocontext/commands/predict.py


@app.command()
def extract(
    inputs: Annotated[
        list[Path], typer.Argument(help="A manifest CSV (path,label,split,group,start,end) or folders/files.")
    ],
    store: Annotated[Path, typer.Option("--store", "-o", help="Feature store directory (created or resumed).")],
    detector: Detector = "mtcnn",
    detect_every: DetectEvery = 1,
    fps: Fps = 5.0,
    context_backbone: Annotated[
        str, typer.Option(help="efficientnet_lite0 (default) or squeezenet1_1.")
    ] = "efficientnet_lite0",
    spatial: Annotated[
        bool, typer.Option(help="Keep context feature maps (C x 7 x 7) instead of pooled vectors.")
    ] = False,
    context_pool: Annotated[
        str,
        typer.Option(
            help="mean: the map's mean (C values); flatten: the map pooled to 7x7 and flattened (49 C values; "
            "with squeezenet1_1 the CACA-RNN paper's 25,088-d context feature)."
        ),
    ] = "mean",
    hide_face: Annotated[
        bool, typer.Option(help="Black out the subject's face in the context stream (CAER-Net).")
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Read INPUTS as the root of a dataset: caer, afew, cheavd, ravdess, crema-d, ckplus (one clip per "
            "image), ckplus-sequences (one clip per sequence of images; CK+48's 327 sequences of 3 frames: they "
            "are face crops, so add --detector none), expw."
        ),
    ] = None,
    audio: Annotated[
        bool,
        typer.Option(
            help="Also store per-audio-frame features over each clip's sampled span (the audio-visual LSTM's "
            "librosa descriptors, Chao et al.); clips without an audio track get none and a warning."
        ),
    ] = False,
    label_set: Annotated[
        str | None,
        typer.Option(
            help="The manifest's label set (ekman7, ekman8, cheavd8, ckplus7, ravdess8, cremad6); every label is "
            "checked against it. Default: the smallest known set that holds every label."
        ),
    ] = None,
    keep_going: Annotated[
        bool | None,
        typer.Option(
            "--keep-going/--no-keep-going",
            help="Extract the rows whose files exist and list the others (with their manifest line) in "
            "STORE/failed.csv, instead of stopping before anything runs. Default: on for folders and files, off "
            "for a manifest CSV or a dataset.",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    ray: RayAddress = None,
    workers: RayWorkers = None,
    threads: Threads = None,
) -> None:
    """Extract face and context features of every clip into a feature store.

    Datasets that give face boxes (ExpW) use them instead of the detector.

    Resumable: run the same command again after an interruption and finished clips
    are skipped. Failed clips are listed at the end, in STORE/failures.jsonl and,
    with their manifest line, in STORE/failed.csv; the same command retries them.
    A manifest's errors name its lines (line 1 is the header). The store remembers
    which extractors made it and refuses to mix others in.
    """
    _setup_logging(verbose)
    from .data.datasets import read_manifest
    from .features.extract import Extractors
    from .features.extract import extract as run_extract
    from .video.pipeline import StreamConfig

    try:
        set_threads(threads)
        manifest = read_manifest(inputs, dataset, label_set, keep_going=keep_going)
        build = dict(
            detector=detector,
            context_backbone=context_backbone,
            spatial=spatial,
            config=StreamConfig(fps=fps, hide_face=hide_face, detect_every=detect_every),
            audio=audio,
            context_pool=context_pool,
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
    if summary.failed_csv is not None:
        err.print(f"the rows not extracted, with their lines: {escape(str(summary.failed_csv))}", highlight=False)
    if summary.failed:
        raise typer.Exit(1)


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


def _warn_no_test(test) -> None:
    if not test:
        _warn(
            "no test split: every number below is measured on the validation clips that selected the checkpoint "
            "(optimistic); --test-fraction 0.15 holds out a test split"
        )


@app.command()
def models(
    recipes: Annotated[
        bool,
        typer.Option(
            "--recipes",
            help="Show each model's training recipe instead (optimiser, learning rate and schedule, weight decay, "
            "batch, epochs, patience, selection metric, source): what `train` runs unless told otherwise.",
        ),
    ] = False,
) -> None:
    """List the registered models with their streams, parameter counts and papers.

    Parameter counts are for 8 classes and the project's 1280-d face and context features.
    With --recipes: the training recipe of each (FIDELITY.md says what each paper gives).
    """
    from .models.registry import list_models, model_info, parameter_table

    names = list_models()
    if recipes:
        table = Table(title="training recipes (emocontext train uses them unless an option overrides)")
        table.add_column("name", no_wrap=True, min_width=max(map(len, names)))
        for c in ("optimizer", "lr", "schedule", "weight decay", "batch", "epochs", "patience", "select on val"):
            table.add_column(c, no_wrap=True)
        for c in ("source", "not in the paper (ours)"):
            table.add_column(c, overflow="fold")
        for name in names:
            r = model_info(name).recipe
            table.add_row(
                name,
                r.optimizer,
                f"{r.lr:g}",
                r.schedule(),
                f"{r.weight_decay:g}",
                str(r.batch_size),
                str(r.epochs),
                str(r.patience),
                r.selection,
                r.source,
                r.ours or "-",
            )
        out.print(table)
        return
    counts = parameter_table()
    table = Table(title="emocontext models (create_model(name, ...))")
    table.add_column("name", no_wrap=True, min_width=max(map(len, names)))  # names are never cut: they are the API
    for c in ("streams", "parameters", "description", "paper"):
        table.add_column(c, overflow="fold")
    for name in names:
        info = model_info(name)
        n = counts.get(name)
        table.add_row(name, "+".join(info.streams), "-" if n is None else f"{n:,}", info.description, info.paper)
    out.print(table)


def _key_values(pairs: list[str] | None, option: str) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values read as JSON when they parse, else as text)."""
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise EmoContextError(f"{option} takes KEY=VALUE, got {pair!r}")
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            result[key.strip()] = value
    return result


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
    epochs: Annotated[int | None, typer.Option(min=1, help="Default: the model's recipe.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: the model's recipe.")] = None,
    lr: Annotated[float | None, typer.Option(help="Initial learning rate. Default: the model's recipe.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Default: the model's recipe.")] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="adam, adadelta or sgd (momentum 0.9). Default: the model's recipe.")
    ] = None,
    lr_step: Annotated[
        int | None,
        typer.Option(
            min=0, help="Multiply the learning rate by --lr-gamma every N epochs (0: constant). Default: recipe."
        ),
    ] = None,
    lr_gamma: Annotated[float | None, typer.Option(help="Factor of each --lr-step. Default: the recipe's.")] = None,
    selection: Annotated[
        str | None,
        typer.Option(help="Validation metric that picks the checkpoint: macro_map or accuracy. Default: recipe."),
    ] = None,
    class_weights: Annotated[
        bool, typer.Option(help="Weight the loss (every cross-entropy term) by inverse class frequency.")
    ] = False,
    patience: Annotated[
        int | None, typer.Option(help="Stop after this many epochs without a better selection metric. Default: recipe.")
    ] = None,
    model_option: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE model option (see `emocontext models`; e.g. fusion_dropout=0.5), repeatable."),
    ] = None,
    loss_option: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=VALUE option of a model's own loss (caan: frame_weight, clip_weight, triplet_weight, margin, "
            "triplet=facenet|batch_hard), repeatable."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Train this many seeds (0..N-1) and report the median.")] = 1,
    max_frames: Annotated[int | None, typer.Option(help="Use at most this many frames per clip.")] = None,
    label_set: Annotated[str | None, typer.Option(help="ekman7, cheavd8, ckplus7, ravdess8, cremad6.")] = None,
    test_fraction: TestFraction = 0.0,
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
    Every setting not given comes from the model's recipe (`emocontext models --recipes`).
    Without a `val` split, 15 % of the non-test clips (grouped by subject when known) are held out.
    The validation split picks the checkpoint, so its numbers are labelled "selection"; the test
    split's are the held-out result (without a test split, --test-fraction holds one out).
    Checkpoints are written after every epoch: run the same command again to resume.

    Examples:
      emocontext train -s features/ --model caca_rnn_a -o runs/caca_a --seeds 5
      emocontext train --manifest ../shared/data/expw --dataset expw --model caer_net_s -o runs/caer_s
    """
    params = dict(locals())  # this command's arguments, for the processes of --nproc
    _setup_logging(verbose)
    import os

    from .data.datasets import read_manifest
    from .distributed import ddp

    if nproc > 1 and "WORLD_SIZE" not in os.environ:  # start the processes; each runs this command
        code = ddp.launch(nproc, train, params)
        if code:
            raise typer.Exit(code)
        return
    from .models.registry import model_info
    from .training.fit import TrainConfig, describe_config, resolve_config
    from .training.seeds import labelled_manifest, split_train_val_test, store_splits, train_pixel_seeds, train_seeds

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
            optimizer=optimizer,
            lr_step=lr_step,
            lr_gamma=lr_gamma,
            selection=selection,
            model_kwargs=_key_values(model_option, "--model-option"),
            loss_kwargs=_key_values(loss_option, "--loss-option"),
        )
        if main:
            out.print(f"recipe: {describe_config(resolve_config(cfg))}", markup=False, highlight=False)
        if pixel_model:
            if manifest is None:
                raise EmoContextError(f"{model} learns from pixels: give the clips with --manifest, not a store")
            m = labelled_manifest(read_manifest([manifest], dataset, label_set), manifest)
            tr, va, te = split_train_val_test(m, test_fraction=test_fraction)
            if main:
                _warn_no_test(te)
            from .video.faces import create_detector

            summary = train_pixel_seeds(
                cfg,
                tr,
                va,
                te,
                m.label_set,
                out_dir,
                seeds=range(seeds),
                detector=create_detector(detector),
                progress=say,
            )
        else:
            if store is None:
                raise EmoContextError(f"{model} reads features: give the feature store with --store")
            st, labels, tr, va, te = store_splits(store, label_set, test_fraction=test_fraction)
            if main:
                _warn_no_test(te)
            summary = train_seeds(cfg, st, tr, va, te, labels, out_dir, seeds=range(seeds), progress=say)
    except EmoContextError as e:
        raise _fail(str(e)) from None
    if not main:
        return
    _print_summary([summary])
    out.print(f"checkpoints and metrics in {out_dir}", markup=False, highlight=False)


def _print_summary(summaries: list[dict], title: str = "results (median over seeds)") -> None:
    table = Table(title=title)
    for c in (
        "model",
        "parameters",
        "val mAP (selection)",
        "val acc (selection)",
        "test mAP (held out)",
        "test acc (held out)",
        "train clips/s",
    ):
        table.add_column(c, justify="right")
    table.caption = "val: the split that picked each checkpoint (and fitted ensemble weights): optimistic"
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
    test_fraction: TestFraction = 0.0,
) -> None:
    """Evaluate a trained model: accuracy, macro mAP, per-class AP and the confusion matrix.

    The val split is the one that selected the checkpoint: its numbers are labelled as selection-set
    numbers (optimistic); test is held out; train is the data the model was fitted on.
    """
    from .training.compare import evaluate_checkpoint, write_evaluation

    try:
        metrics, labels, meta = evaluate_checkpoint(checkpoint, store, split, test_fraction=test_fraction)
    except EmoContextError as e:
        raise _fail(str(e)) from None
    role = {
        "val": "selection set: it picked this checkpoint, optimistic",
        "test": "held out",
        "train": "fitted on",
    }.get(split, "")
    metrics["split"], metrics["split_role"] = split, role
    table = Table(title=f"{meta['config']['model']} on {split} ({role}; {metrics['n']} clips)")
    table.add_column("class")
    table.add_column("AP", justify="right")
    table.add_column("clips", justify="right")
    for name in labels.names:
        ap = metrics["per_class_ap"][name]
        table.add_row(name, "-" if ap is None else f"{ap:.4f}", str(metrics["support"][name]))
    table.caption = f"accuracy {metrics['accuracy']:.4f}, macro mAP {metrics['macro_map']:.4f}"
    out.print(table)
    if out_dir:
        try:
            paths = write_evaluation(metrics, labels, out_dir)
        except EmoContextError as e:
            raise _fail(str(e)) from None
        out.print(f"wrote {paths[0]} and {paths[1]}")


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
    epochs: Annotated[int | None, typer.Option(min=1, help="Default: each model's recipe.")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per model; the table shows medians.")] = 1,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: each model's recipe.")] = None,
    lr: Annotated[float | None, typer.Option(help="Default: each model's recipe.")] = None,
    label_set: Annotated[str | None, typer.Option(help="ekman7, cheavd8, ckplus7, ravdess8, cremad6.")] = None,
    test_fraction: TestFraction = 0.0,
) -> None:
    """Train and evaluate several models on one store; write a Table-I-style markdown table.

    With --ensemble, the seed-0 checkpoints of those models are combined by a linear
    weighted average of their probabilities, weights fitted on the validation clips
    (the paper's CACA-RNN + 2D-3D-CNN ensemble, Table II), and evaluated like a model.
    Each model trains with its own recipe (`emocontext models --recipes`) unless overridden.
    The table reports the held-out test split; without one, the validation numbers, labelled
    as selection-set numbers (they picked the checkpoints and the ensemble weights).

    Example: emocontext compare -s features/ -o runs/compare --seeds 5 --ensemble caca_rnn_a,cnn_2d3d
    """
    from .training.compare import compare_models

    names = [n.strip() for n in model_names.split(",") if n.strip()]
    members = [m.strip() for m in (ensemble or "").split(",") if m.strip()]
    try:
        summaries, table = compare_models(
            store,
            out_dir,
            names,
            ensemble=members,
            epochs=epochs,
            seeds=seeds,
            batch_size=batch_size,
            lr=lr,
            label_set=label_set,
            test_fraction=test_fraction,
            progress=out.print,
        )
    except EmoContextError as e:
        raise _fail(str(e)) from None
    if not any("test" in s["median"] for s in summaries):
        _warn_no_test(None)
    _print_summary(summaries)
    out.print(f"wrote {table}")


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
    from .hub import resolve
    from .weights import get_weights, list_weights

    downloadable = [n for n in list_weights() if get_weights(n).url]
    if name.lower() not in downloadable:
        raise _fail(f"unknown model file {name!r}; known: {', '.join(downloadable)}", 2)
    try:
        path = resolve(get_weights(name.lower()), download=True)
    except EmoContextError as e:
        raise _fail(str(e)) from None
    out.print(f"{name.lower()}: {path} (SHA-256 checked)", markup=False, highlight=False)


@weights_app.command("list")
def weights_list() -> None:
    """Every pretrained artifact: where this install finds it, its licence, source and measured metrics."""
    from .hub import resolve
    from .weights import get_weights, list_weights

    table = Table("name", "file", "licence", "metrics (see the benchmark)", show_lines=True)
    for name in list_weights():
        w = get_weights(name)
        try:
            where = str(resolve(w))
        except EmoContextError as e:
            where = f"not available: {e}"
        metrics = "\n".join(f"{k}: {v}" for k, v in w.metrics.items())
        table.add_row(name, escape(where), w.licence, escape(f"{metrics}\n({w.benchmark})"))
    out.print(table)


def main() -> None:  # pragma: no cover
    sys.exit(app())
