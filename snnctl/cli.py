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


CheckpointArgument = Annotated[Path, typer.Argument(help="A checkpoint (.safetensors) written by snnctl train.")]
TaskOption = Annotated[Optional[Task], typer.Option(help="Data of another task (default: the checkpoint's).")]
DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (default: the checkpoint's).")]
NOption = Annotated[Optional[int], typer.Option("--n", min=1, help="Use at most N images of the split.")]
ReductionOption = Annotated[Optional[Reduction], typer.Option(help="Readout: sum, mean or max over neurons (default: the checkpoint's).")]


def _accuracy_rows(prefix: str, accuracy) -> list[tuple[str, object]]:
    return [(f"{prefix} (all activity)", f"{accuracy.all_activity:.2%}"),
            (f"{prefix} (proportion weighting)", f"{accuracy.proportion_weighting:.2%}")]


def _confusion_table(classes: list[str], confusion: list[list[int]]) -> Table:
    table = Table(title="Confusion matrix (rows: true class, columns: predicted, all-activity vote)",
                  title_justify="left")
    table.add_column("true \\ predicted", style="bold")
    for name in classes:
        table.add_column(name, justify="right")
    for name, row in zip(classes, confusion):
        table.add_row(name, *[str(value) for value in row])
    return table


@app.command(epilog="Examples:\n\n  snnctl evaluate logs/MNIST/run1/checkpoint.safetensors\n\n"
             "  snnctl evaluate CKPT --split train --n 1000 --reduction mean --json\n\n"
             "  snnctl evaluate CKPT --task MAMMO --data-dir data/mammo --predictions predictions.csv")
def evaluate(
    checkpoint: CheckpointArgument,
    task: TaskOption = None,
    data_dir: DataDirOption = None,
    split: Annotated[Split, typer.Option(help="Which images: the held-out test split, train, or all.")] = Split.test,
    n: NOption = None,
    reduction: ReductionOption = None,
    predictions: Annotated[Optional[Path], typer.Option(help="Write one CSV row per image here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing predictions file.")] = False,
    device: DeviceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Classify images with a trained checkpoint (learning off) and report the metrics."""
    with _reported():
        from snnctl import service

        with _progress_bar(not as_json) as on_progress:
            result = service.evaluate(
                checkpoint, task=task.value if task else None, data_dir=str(data_dir) if data_dir else None,
                split=split.value, n=n, reduction=reduction.value if reduction else None, predictions=predictions,
                force=force, device=device.value if device else None, notice=_notice, on_progress=on_progress)
    if as_json:
        _print_json(result.to_dict())
        return
    rows = _accuracy_rows("accuracy", result.accuracy) + [("balanced accuracy", f"{result.balanced_accuracy:.2%}")]
    if result.positive_class is not None:
        rows += [(f"sensitivity (recall of {result.positive_class})", f"{result.sensitivity:.2%}"),
                 (f"specificity (recall of {result.classes[0]})", f"{result.specificity:.2%}")]
    rows += [("images", f"{result.n_samples} ({result.task}, {result.split} split), {result.no_prediction} without a vote"),
             ("readout", result.reduction), ("speed", f"{result.samples_per_second:.0f} images/s")]
    if result.predictions_file:
        rows.append(("predictions", result.predictions_file))
    out.print(_key_values(f"Evaluation of {result.checkpoint}", rows))
    per_class = Table(title="Per class (all-activity vote)", title_justify="left")
    for column in ("class", "images", "precision", "recall"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for item in result.per_class:
        per_class.add_row(item.name, str(item.support), f"{item.precision:.2%}", f"{item.recall:.2%}")
    out.print(per_class)
    out.print(_confusion_table(result.classes, result.confusion))


@app.command(epilog="Examples:\n\n  snnctl assign CKPT --reduction mean --out relabeled.safetensors\n\n"
             "  snnctl assign CKPT --in-place\n\n"
             "  snnctl assign mnist.safetensors --task MAMMO --data-dir data/mammo --out on-mammo.safetensors")
def assign(
    checkpoint: CheckpointArgument,
    reduction: ReductionOption = None,
    task: TaskOption = None,
    data_dir: DataDirOption = None,
    split: Annotated[Split, typer.Option(help="Labelled images to assign from.")] = Split.train,
    n: NOption = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="New checkpoint (default: CKPT.TASK-REDUCTION.safetensors).")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Replace the input checkpoint (atomically).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    device: DeviceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Relabel a trained layer: which class each excitatory neuron stands for."""
    with _reported():
        from snnctl import service

        if in_place and out_path is not None:
            raise service.ConfigError("assign: give --out or --in-place, not both")
        with _progress_bar(not as_json) as on_progress:
            result = service.assign(
                checkpoint, reduction=reduction.value if reduction else None, task=task.value if task else None,
                data_dir=str(data_dir) if data_dir else None, split=split.value, n=n, output=out_path,
                in_place=in_place, force=force, device=device.value if device else None, notice=_notice,
                on_progress=on_progress)
    if as_json:
        _print_json(result.to_dict())
        return
    rows: list[tuple[str, object]] = [
        ("labels from", f"{result.n_label_samples} {result.task} images ({result.label_split} split), readout {result.reduction}"),
        ("neurons per class", ", ".join(f"{c}: {k}" for c, k in zip(result.classes, result.neurons_per_class))),
        ("unassigned neurons", result.unassigned),
        ("neurons that changed class", "n/a (other classes)" if result.changed is None else result.changed),
    ]
    if result.old_accuracy is not None:
        rows += _accuracy_rows(f"old labels on {result.n_eval_samples} test images", result.old_accuracy)
    rows += _accuracy_rows(f"new labels on {result.n_eval_samples} test images", result.new_accuracy)
    rows.append(("checkpoint", result.output))
    out.print(_key_values("Assignment", rows))


@app.command(epilog="Examples:\n\n  snnctl inspect logs/MNIST/run1/checkpoint.safetensors\n\n  snnctl inspect CKPT --json | jq .parameters")
def inspect(checkpoint: CheckpointArgument, as_json: JsonOption = False) -> None:
    """What a checkpoint holds: format, model, parameters, classes, tensors, versions."""
    with _reported():
        from snnctl import service

        result = service.inspect(checkpoint)
    if as_json:
        _print_json(result.to_dict())
        return
    per_class = (", ".join(f"{c}: {k}" for c, k in result.neurons_per_class.items())
                 + f", unassigned: {result.unassigned}") if result.neurons_per_class else "no label state"
    out.print(_key_values(f"Checkpoint {result.checkpoint}", [
        ("format version", result.format_version),
        ("model", f"{result.model}, {result.parameters['n_neurons']} neurons, input {result.parameters['input_size']}x{result.parameters['input_size']}"),
        ("task", f"{result.parameters['task']} ({', '.join(result.classes)})"),
        ("trained", f"{result.samples_seen} samples, {result.epochs} epoch(s), {'finished' if result.finished else 'in progress'}"),
        ("neurons per class", per_class),
        ("written", f"{result.created} by " + ", ".join(f"{k} {v}" for k, v in result.versions.items())),
    ]))
    tensors = Table(title="Tensors", title_justify="left")
    for column in ("name", "shape", "dtype", "mean", "std", "min", "max"):
        tensors.add_column(column, justify="left" if column in ("name", "dtype") else "right")
    for t in result.tensors:
        tensors.add_row(t.name, "x".join(map(str, t.shape)), t.dtype, f"{t.mean:.4g}", f"{t.std:.4g}", f"{t.min:.4g}", f"{t.max:.4g}")
    out.print(tensors)
    parameters = Table(title="Parameters", title_justify="left", show_header=False)
    parameters.add_column(style="bold")
    parameters.add_column()
    for key, value in result.parameters.items():
        parameters.add_row(key, str(value))
    out.print(parameters)


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
