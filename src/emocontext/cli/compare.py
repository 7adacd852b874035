"""``emocontext compare``: several models trained and evaluated on one store, and their table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import EmoContextError
from .common import Store, TestFraction, fail, print_results, say, warn

__all__ = ["compare"]


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
    fps: Annotated[
        float | None,
        typer.Option(
            help="Train every model at this frame rate (the store's). Default: each model's recipe; a model "
            "whose recipe samples at another rate than the store is refused.",
            min=0.01,
        ),
    ] = None,
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

    Examples:

    \b
      emocontext compare -s features/ -o runs/compare --seeds 5 --ensemble caca_rnn_a,cnn_2d3d
      emocontext compare -s features/ -o runs/two --models face_rnn,caca_rnn_a --test-fraction 0.2
    """
    from ..training.compare import compare_models
    from ..training.run import NO_TEST_WARNING

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
            fps=fps,
            label_set=label_set,
            test_fraction=test_fraction,
            on_log=say,
        )
    except EmoContextError as e:
        raise fail(str(e)) from None
    if not any("test" in s["median"] for s in summaries):
        warn(NO_TEST_WARNING)
    print_results(summaries)
    say(f"wrote {table}")
