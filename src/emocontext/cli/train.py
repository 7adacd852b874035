"""``emocontext train``: one model trained (the paper's recipe by default), its metrics printed.

The command reads its options and the clips; :func:`emocontext.training.run.run` trains.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import EmoContextError
from .common import USAGE, Detector, TestFraction, fail, print_results, say, setup_logging, warn

__all__ = ["train"]


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
        typer.Option(
            help="Validation metric that picks the checkpoint: macro_precision (MEC's), macro_map or accuracy. "
            "Default: recipe."
        ),
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
    max_frames: Annotated[
        int | None,
        typer.Option(
            help="Frames of one training sample (pixel models: the window). Default: the recipe's (caer_net 16, "
            "caer_net_s 1, the others the whole clip)."
        ),
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option(
            help="Frame rate to train at. Default: the recipe's; a store sampled at another rate is refused "
            "unless this gives its rate.",
            min=0.01,
        ),
    ] = None,
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

    \b
      emocontext train -s features/ --model caca_rnn_a -o runs/caca_a --seeds 5
      emocontext train --manifest ../shared/data/expw --dataset expw --model caer_net_s -o runs/caer_s
      emocontext train -s features/ --model face_rnn -o runs/face --nproc 2
    """
    setup_logging(verbose)
    from ..data.datasets import list_datasets, read_manifest
    from ..models.registry import list_models
    from ..training.fit import TrainConfig, resolve_config
    from ..training.run import run

    if dataset is not None and dataset not in list_datasets():
        raise fail(f"unknown dataset {dataset!r}; choose one of {', '.join(list_datasets())}", USAGE)
    if model not in list_models():
        raise fail(f"unknown model {model!r}; `emocontext models` lists them: {', '.join(list_models())}", USAGE)
    try:
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
            fps=fps,
            model_kwargs=_key_values(model_option, "--model-option"),
            loss_kwargs=_key_values(loss_option, "--loss-option"),
        )
        resolve_config(cfg)  # the settings given, checked against the recipe's before anything is read
    except EmoContextError as e:
        raise fail(str(e), USAGE) from None
    try:
        clips = read_manifest([manifest], dataset, label_set) if manifest is not None else None
        summary = run(
            cfg,
            out_dir,
            store=store,
            manifest=clips,
            label_set=label_set,
            detector=detector,
            seeds=seeds,
            test_fraction=test_fraction,
            device=device,
            nproc=nproc,
            on_log=say,
            on_warn=warn,
        )
    except EmoContextError as e:
        raise fail(str(e)) from None
    if summary is None:  # a process of torchrun's group that is not the main one
        return
    print_results([summary])
    say(f"checkpoints and metrics in {out_dir}")


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
