"""The ``emocontext`` command: the app, and every command registered on it (one module per command).

``emocontext`` (the ``emocontext.cli:app`` entry point) and ``python -m emocontext`` run it. Each
command lives in its own module (:mod:`.predict`, :mod:`.extract`, :mod:`.models`, :mod:`.train`,
:mod:`.evaluate`, :mod:`.compare`, :mod:`.serve`, :mod:`.weights`); :mod:`.common` holds what they
share. The commands read their options and print; the library decides. Nothing here imports torch
until a command runs, so ``--help`` and ``--version`` answer at once.

Exit status: 0 when everything worked; 1 when an input or the run failed (a missing or unreadable
file, a file that does not decode, weights that cannot be found, an output that cannot be written,
any failed file of a batch); 2 when the command line is wrong (an unknown command or option, a value
outside its choices or range, a missing argument, options that do not go together). Every
:class:`~emocontext.errors.EmoContextError` is one ``error:`` line on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .common import err, out  # the consoles every command prints with (tests widen them)
from .compare import compare
from .evaluate import evaluate
from .extract import extract
from .models import models
from .predict import predict
from .serve import serve
from .train import train
from .weights import weights_app

__all__ = ["app", "main", "out", "err"]

app = typer.Typer(
    help=(
        "Context-aware video emotion recognition.\n\n"
        "Point `emocontext predict` at videos, images or folders to get the emotion of every person in them "
        "(`emocontext predict --sample` runs on a clip that ships with the package).\n\n"
        "To train the published models on your data: `extract` (manifest -> feature store), then `train`, "
        "`evaluate` and `compare` on the store; `models` lists the architectures.\n\n"
        "Exit status: 0 all went well; 1 an input or the run failed (a file missing, unreadable or not "
        "decodable, weights not found, an output not writable, a failed file of a batch); 2 the command line "
        "is wrong (an unknown option, a value outside its choices or range, a missing argument)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: wrapped to the terminal, never cut with an ellipsis
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

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


def version() -> None:
    """Print the version (same as `emocontext --version`)."""
    from .. import __version__

    out.print(__version__)


# the order `emocontext --help` lists them
for command in (predict, extract, models, train, evaluate, compare, serve, version):
    app.command()(command)
app.add_typer(weights_app, name="weights")


def main() -> None:  # pragma: no cover
    sys.exit(app())
