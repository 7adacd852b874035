"""``emocontext extract``: the face and context features of every clip of a manifest, into a feature store.

The command reads its options; :func:`emocontext.features.extract.extract` (or its Ray twin,
:func:`emocontext.distributed.ray.extract_with_ray`) extracts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import EmoContextError
from .common import (
    INPUT,
    USAGE,
    DetectEvery,
    Detector,
    RayAddress,
    RayWorkers,
    Threads,
    err,
    fail,
    out,
    progress_bar,
    set_threads,
    setup_logging,
    warn,
)

__all__ = ["extract"]


def extract(
    inputs: Annotated[
        list[Path], typer.Argument(help="A manifest CSV (path,label,split,group,start,end) or folders/files.")
    ],
    store: Annotated[Path, typer.Option("--store", "-o", help="Feature store directory (created or resumed).")],
    detector: Detector = "mtcnn",
    detect_every: DetectEvery = 1,
    model: Annotated[
        str | None,
        typer.Option(
            help="Extract for this model (see `emocontext models --recipes`): sample at its paper's frame rate "
            "(CACA-RNN 5, CAER-Net 10, CAAN every frame, AV-LSTM 25). Default: 5 frames/s."
        ),
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option(
            help="Frames sampled per second of video. Default: the --model's recipe (5 without one).", min=0.01
        ),
    ] = None,
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

    Examples:

    \b
      emocontext extract clips.csv -o features/
      emocontext extract ../shared/data/videos/crema-d --dataset crema-d -o features/crema --audio
      emocontext extract ../shared/data/expw --dataset expw -o features/expw --spatial --hide-face
    """
    setup_logging(verbose)
    from ..data.datasets import list_datasets, read_manifest
    from ..features.extract import Extractors
    from ..features.extract import extract as run_extract
    from ..models.recipes import sampling_fps
    from ..video.pipeline import StreamConfig

    if dataset is not None and dataset not in list_datasets():
        raise fail(f"unknown dataset {dataset!r}; choose one of {', '.join(list_datasets())}", USAGE)
    try:
        set_threads(threads)
        manifest = read_manifest(inputs, dataset, label_set, keep_going=keep_going)
        build = dict(
            detector=detector,
            context_backbone=context_backbone,
            spatial=spatial,
            config=StreamConfig(fps=sampling_fps(model, fps), hide_face=hide_face, detect_every=detect_every),
            audio=audio,
            context_pool=context_pool,
        )
        with progress_bar("extract", not quiet) as on_progress:
            if ray:  # the same records, from a pool of Ray actors (emocontext.distributed.ray)
                from ..distributed.ray import extract_with_ray

                summary = extract_with_ray(
                    manifest, store, build, address=ray, workers=workers, threads=threads or 1, on_progress=on_progress
                )
            else:
                summary = run_extract(manifest, store, Extractors.build(**build), on_progress=on_progress)
    except EmoContextError as e:
        raise fail(str(e)) from None
    out.print(
        f"{summary.done} clips extracted, {summary.skipped} already in {store}, {len(summary.failed)} failed",
        markup=False,
        highlight=False,
    )
    if summary.no_audio:
        warn(f"{len(summary.no_audio)} clip(s) have no audio track (0 audio frames stored)")
    for _path, msg in summary.failed:
        err.print(f"[red]failed:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    if summary.failed_csv is not None:
        err.print(f"the rows not extracted, with their lines: {escape(str(summary.failed_csv))}", highlight=False)
    if summary.failed:
        raise typer.Exit(INPUT)
