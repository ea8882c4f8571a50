"""The ``snnctl`` command line: parse, call one service function, render its result.

Results go to stdout (a rich table, or one JSON document with --json); progress,
notices and warnings to stderr. Exit codes: 0 ok, 1 a failure while running, 2 bad
usage or parameters, 130/143 interrupted. torch and BindsNET are imported only inside
the commands that need them, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from snnctl import __version__
from snnctl.errors import SnnctlError

app = typer.Typer(
    name="snnctl",
    help="Train and study Diehl & Cook (2015) spiking networks that learn to classify images without labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
visualize_app = typer.Typer(help="Draw what a network learned (weights, assignments, theta, ...).", no_args_is_help=True)
app.add_typer(visualize_app, name="visualize")

out = Console()
err = Console(stderr=True)
state = {"debug": False}


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Reduction(str, Enum):
    sum = "sum"
    mean = "mean"
    max = "max"


class Split(str, Enum):
    test = "test"
    train = "train"
    all = "all"


class Task(str, Enum):
    MNIST = "MNIST"
    MAMMO = "MAMMO"


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
DeviceOption = Annotated[Optional[Device], typer.Option(help="auto = CUDA when present.")]


def _version(value: bool) -> None:
    if value:
        out.print(f"snnctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    state["debug"] = debug


@contextmanager
def _reported() -> Iterator[None]:
    """A user error becomes one line on stderr and its exit code, never a traceback."""
    try:
        yield
    except SnnctlError as exc:
        if state["debug"]:
            raise
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _notice(message: str) -> None:
    err.print(f"[yellow]notice:[/yellow] {message}", highlight=False, soft_wrap=True)


@contextmanager
def _progress_bar(enabled: bool):
    """A rich progress bar on a terminal (stderr); a no-op callback elsewhere."""
    if not (enabled and err.is_terminal):
        yield lambda update: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[rate]:.0f} img/s"), TextColumn("{task.fields[accuracy]}"), TimeRemainingColumn()]
    with Progress(*columns, console=err, transient=True) as progress:
        tasks: dict[str, int] = {}

        def update(event) -> None:
            if event.phase not in tasks:
                tasks[event.phase] = progress.add_task(event.phase, total=event.total, rate=0.0, accuracy="")
            accuracy = f"acc {event.running_accuracy:.1%}" if event.running_accuracy is not None else ""
            progress.update(tasks[event.phase], completed=event.done, rate=event.samples_per_second, accuracy=accuracy)

        yield update


def _print_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def _key_values(title: str, rows: list[tuple[str, object]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, str(value))
    return table


@app.command(epilog="Examples:\n\n  snnctl train parameters/mnist.yaml\n\n"
             "  snnctl train parameters/mnist.yaml --set n_neurons=400 --set epochs=3 --out runs/n400\n\n"
             "  snnctl train --resume logs/MNIST/run1/checkpoint.safetensors")
def train(
    params: Annotated[Optional[Path], typer.Argument(help="Parameter file (YAML, ours or the original nested layout).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a parameter: KEY=VALUE (repeatable).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run directory (default: log_dir/TASK/NAME).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run of this checkpoint.")] = None,
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option("--force", help="Write into an existing, non-empty run directory.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Train the network on a task with unsupervised STDP, then label and test it."""
    with _reported():
        from snnctl import config as cfg
        from snnctl import service

        overrides = list(set_ or []) + ([f"device={device.value}"] if device else [])
        if params is None and resume is None:
            raise cfg.ConfigError("train: give a parameter file, or --resume CHECKPOINT")
        config = cfg.load(params) if params is not None else None
        with _progress_bar(not as_json) as on_progress:
            result = service.train(config, out=out_dir, resume=resume, overrides=overrides, force=force,
                                   notice=_notice, on_progress=on_progress)
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(_key_values("Training finished", [
        ("test accuracy (all activity)", f"{result.test_accuracy.all_activity:.2%}"),
        ("test accuracy (proportion weighting)", f"{result.test_accuracy.proportion_weighting:.2%}"),
        ("train accuracy (all activity)", f"{result.train_accuracy.all_activity:.2%}"),
        ("images", f"{result.n_train} train / {result.n_test} test, {result.epochs} epoch(s)"),
        ("speed", f"{result.samples_per_second:.0f} images/s ({result.engine}, {result.device})"),
        ("data", result.data),
        ("checkpoint", result.checkpoint),
        ("TensorBoard run", result.run_dir),
    ]))


def _not_yet(command: str, issue: int) -> None:
    err.print(f"[red]error:[/red] snnctl {command} is not implemented yet (issue #{issue})")
    raise typer.Exit(2)


@app.command()
def export(checkpoint: Annotated[Path, typer.Argument(help="A checkpoint (.safetensors).")]) -> None:
    """Write a trained network to another format (npz, torch, bindsnet, nir)."""
    _not_yet("export", 5)


@visualize_app.command("weights")
def visualize_weights(checkpoint: Annotated[Path, typer.Argument(help="A checkpoint (.safetensors).")]) -> None:
    """Every excitatory neuron's input weights as a grid of tiles."""
    _not_yet("visualize", 5)


def main() -> None:
    app()
