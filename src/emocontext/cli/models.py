"""``emocontext models``: the registered architectures, or their training recipes (``--recipes``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .common import out

__all__ = ["models"]


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
    from ..models.registry import list_models, model_info, parameter_table

    names = list_models()
    if recipes:
        table = Table(title="training recipes (emocontext train uses them unless an option overrides)")
        table.add_column("name", no_wrap=True, min_width=max(map(len, names)))
        for c in (
            "optimizer",
            "lr",
            "schedule",
            "weight decay",
            "batch",
            "epochs",
            "patience",
            "select on val",
            "frames/s",
            "frames",
        ):
            # the selection metric and the sampling are never cut (the source columns give way first)
            wide = {"select on val": len("macro_precision"), "frames/s": len("every frame")}
            table.add_column(c, no_wrap=True, min_width=wide.get(c))
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
                r.sampling(),
                r.frames(),
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
