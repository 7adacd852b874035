"""``emocontext weights list | download``: the pretrained files and where each is found; fetch the others."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import EmoContextError
from .common import USAGE, fail, out

__all__ = ["weights_app"]

weights_app = typer.Typer(
    help="Pretrained model files: list them (licence, metrics), fetch those that do not ship (SHA-256 checked).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@weights_app.command("download")
def weights_download(
    name: Annotated[str, typer.Argument(help="Which model file: yunet (the YuNet face detector, OpenCV zoo, MIT).")],
) -> None:
    """Fetch a model file into the cache (~/.cache/emocontext) and check its SHA-256.

    Examples:

    \b
      emocontext weights download yunet
      emocontext predict clip.mp4 --detector yunet
    """
    from ..hub import resolve
    from ..weights import get_weights, list_weights

    downloadable = [n for n in list_weights() if get_weights(n).url]
    if name.lower() not in downloadable:
        raise fail(f"unknown model file {name!r}; known: {', '.join(downloadable)}", USAGE)
    try:
        path = resolve(get_weights(name.lower()), download=True)
    except EmoContextError as e:
        raise fail(str(e)) from None
    out.print(f"{name.lower()}: {path} (SHA-256 checked)", markup=False, highlight=False)


@weights_app.command("list")
def weights_list() -> None:
    """Every pretrained artifact: where this install finds it, its licence, source and measured metrics."""
    from ..hub import resolve
    from ..weights import get_weights, list_weights

    table = Table(show_lines=True)
    table.add_column("name", no_wrap=True)
    # a path is folded at any character, never cut: it must stay copyable
    table.add_column("file", overflow="fold", ratio=2)
    table.add_column("licence")
    table.add_column("metrics (see the benchmark)", overflow="fold", ratio=3)
    for name in list_weights():
        w = get_weights(name)
        try:
            where = str(resolve(w))
        except EmoContextError as e:
            where = f"not available: {e}"
        metrics = "\n".join(f"{k}: {v}" for k, v in w.metrics.items())
        table.add_row(name, escape(where), w.licence, escape(f"{metrics}\n({w.benchmark})"))
    out.print(table)
