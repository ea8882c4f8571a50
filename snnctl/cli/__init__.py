"""The ``snnctl`` command line: parse, call one service function, render its result.

Each command group has its module (train, checkpoints, figures, export, sweep) and every
command hands its result to :func:`snnctl.cli.render.run`, the one output path: results
on stdout (a table, or one JSON document with --json), progress and notices on stderr,
exit codes 0 ok, 1 a failure while running, 2 bad usage or parameters, 130/143
interrupted. torch and BindsNET are imported only inside the commands that need them,
so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from snnctl import __version__
from snnctl.cli import checkpoints, export, figures, render, sweep, train

app = typer.Typer(
    name="snnctl",
    cls=render.CommandGroup,
    help="Train and study Diehl & Cook (2015) spiking networks that learn to classify images without labels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(shown: bool) -> None:
    if shown:
        render.out.print(f"snnctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    render.state["debug"] = debug


app.command(epilog=train.EPILOG, cls=render.Command)(train.train)
app.command(epilog=checkpoints.EVALUATE_EPILOG, cls=render.Command)(checkpoints.evaluate)
app.command(epilog=checkpoints.ASSIGN_EPILOG, cls=render.Command)(checkpoints.assign)
app.command(epilog=checkpoints.INSPECT_EPILOG, cls=render.Command)(checkpoints.inspect)
app.command(epilog=export.EPILOG, cls=render.Command)(export.export)
app.add_typer(figures.app, name="visualize")
app.command(epilog=sweep.EPILOG, cls=render.Command)(sweep.sweep)


def main() -> None:
    app()
