"""``emocontext evaluate``: a trained checkpoint's metrics on one split of a feature store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import EmoContextError
from .common import Store, TestFraction, fail, out

__all__ = ["evaluate"]


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
    from ..training.compare import evaluate_checkpoint, write_evaluation

    try:
        metrics, labels, meta = evaluate_checkpoint(checkpoint, store, split, test_fraction=test_fraction)
    except EmoContextError as e:
        raise fail(str(e)) from None
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
    table.caption = (
        f"accuracy {metrics['accuracy']:.4f}, macro precision {metrics['macro_precision']:.4f}, "
        f"macro mAP {metrics['macro_map']:.4f}"
    )
    out.print(table)
    if out_dir:
        try:
            paths = write_evaluation(metrics, labels, out_dir)
        except EmoContextError as e:
            raise fail(str(e)) from None
        out.print(f"wrote {paths[0]} and {paths[1]}")
