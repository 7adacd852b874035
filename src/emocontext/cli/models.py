"""``emocontext models``: the registered architectures, or their training recipes (``--recipes``)."""

from __future__ import annotations

import json
import textwrap
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .common import out

__all__ = ["models"]


def _recipe_groups() -> list[tuple[list[str], object]]:
    """``[(model names, recipe)]``: models that share one recipe (one paper's family) in one row."""
    from ..models.registry import list_models, model_info

    groups: dict[object, list[str]] = {}
    for name in list_models():
        groups.setdefault(model_info(name).recipe, []).append(name)
    return [(names, recipe) for recipe, names in groups.items()]


def _sci(x: float) -> str:
    """``1e-4``, ``5e-3``, ``1``, ``0``: a learning rate or weight decay in scientific notation, never cut."""
    if x == 0 or 1e-2 <= abs(x) < 1e3:
        return f"{x:g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _print_recipes(as_json: bool) -> None:
    groups = _recipe_groups()
    if as_json:
        rows = [{"models": names, **r.settings(), "source": r.source, "ours": r.ours} for names, r in groups]
        typer.echo(json.dumps(rows, indent=2))
        return
    # every cell is broken into lines here, at its words, so the table's natural width fits 100 columns
    # and rich never has to cut or fold a cell (the model names are the API: never split)
    width = max(len(n) for names, _ in groups for n in names) + 4
    table = Table(title="training recipes (train uses them unless an option overrides)")
    for c in (
        "models",
        "optimizer",
        "lr\nschedule",
        "batch",
        "epochs\n(patience)",
        "select\non val",
        "frames/s\nx frames",
    ):
        table.add_column(c)
    for n, (names, r) in enumerate(groups, 1):
        table.add_row(
            textwrap.fill(f"[{n}] " + ", ".join(names), width, break_long_words=False, break_on_hyphens=False),
            f"{r.optimizer}\nlr {_sci(r.lr)}\nwd {_sci(r.weight_decay)}",
            textwrap.fill(r.schedule(), 10),
            str(r.batch_size),
            f"{r.epochs} ({r.patience})",
            r.selection.replace("_", "\n"),
            f"{r.sampling()}\nx {r.frames()}",
        )
    out.print(table)
    for n, (_, r) in enumerate(groups, 1):
        out.print(f"\\[{n}] {escape(r.source)}; not in the paper (ours): {escape(r.ours or '-')}", highlight=False)


def models(
    recipes: Annotated[
        bool,
        typer.Option(
            "--recipes",
            help="Show the training recipes instead (optimiser, learning rate and schedule, weight decay, batch, "
            "epochs, patience, selection metric, sampling, source): what `train` runs unless told otherwise.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for programs) instead of a table.")] = False,
) -> None:
    """List the registered models with their streams, parameter counts and papers.

    Parameter counts are for 8 classes and the project's 1280-d face and context features.
    With --recipes: the training recipe of each family of models (FIDELITY.md says what each paper gives).
    """
    from ..models.registry import list_models, model_info, parameter_table

    if recipes:
        _print_recipes(as_json)
        return
    names = list_models()
    counts = parameter_table()
    if as_json:
        rows = []
        for name in names:
            info = model_info(name)
            rows.append(
                {
                    "name": name,
                    "streams": list(info.streams),
                    "parameters": counts.get(name),
                    "description": info.description,
                    "paper": info.paper,
                }
            )
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="emocontext models (create_model(name, ...))")
    table.add_column("name", no_wrap=True, min_width=max(map(len, names)))  # names are never cut: they are the API
    for c in ("streams", "parameters", "description", "paper"):
        table.add_column(c, overflow="fold")
    for name in names:
        info = model_info(name)
        n = counts.get(name)
        table.add_row(name, "+".join(info.streams), "-" if n is None else f"{n:,}", info.description, info.paper)
    out.print(table)
