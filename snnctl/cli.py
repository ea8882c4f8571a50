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
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from snnctl import __version__
from snnctl import config as cfg
from snnctl.errors import SnnctlError

# Typer raises click's usage errors; newer Typer bundles its own click, so the classes are
# taken from typer.BadParameter's ancestry rather than imported from click.
_USAGE_ERRORS = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError, ClickException = _USAGE_ERRORS["UsageError"], _USAGE_ERRORS["ClickException"]


class _Commands(TyperGroup):
    """``snnctl``: a usage error (unknown option, bad value) is one ``error:`` line and exit 2,
    as every other snnctl error, instead of click's usage panel."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command: its help, already rendered
                sys.stdout.write(exc.format_message())
                sys.exit(exc.exit_code)
            command = exc.ctx.command_path if exc.ctx is not None else "snnctl"
            message = exc.format_message().replace("Value error, ", "").rstrip(".")
            err.print(f"[red]error:[/red] {escape(f'{command}: {message} (see {command} --help)')}", highlight=False,
                      soft_wrap=True)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            err.print(f"[red]error:[/red] {escape(exc.format_message())}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("[red]error:[/red] aborted", highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="snnctl",
    cls=_Commands,
    help="Train and study Diehl & Cook (2015) spiking networks that learn to classify images without labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _FigureGroup(TyperGroup):
    """``snnctl visualize``: an unknown figure is one error line (exit 2), not click's usage panel."""

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            err.print(f"[red]error:[/red] visualize: no figure {escape(repr(args[0]))}, choose one of "
                      f"{', '.join(self.commands)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        return super().resolve_command(ctx, args)


visualize_app = typer.Typer(cls=_FigureGroup, help="Draw what a network learned (weights, assignments, theta, ...).",
                            no_args_is_help=True)
app.add_typer(visualize_app, name="visualize")

# Off a terminal (`| tee run.log`, a CI log) Rich would assume 80 columns and fold long
# table cells; paths are copied from there, so tables take the width they need.
out = Console() if sys.stdout is not None and sys.stdout.isatty() else Console(width=10_000)
err = Console(stderr=True)
state = {"debug": False}


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A Typer choice type whose values are the config's allowed values (one source)."""
    return Enum(name, {value: value for value in values}, type=str)


Device = _choices("Device", cfg.DEVICES)
Reduction = _choices("Reduction", cfg.REDUCTIONS)
Task = _choices("Task", cfg.TASKS)
Split = _choices("Split", ("test", "train", "all"))


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
DeviceOption = Annotated[Optional[Device], typer.Option(
    help="auto: CUDA when present for the BindsNET engine; the fast engine runs on the CPU.")]


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
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _notice(message: str) -> None:
    err.print(f"[yellow]notice:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


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
    table.add_column(overflow="fold")  # paths are copied by users: never cut them short
    for key, value in rows:
        table.add_row(key, escape(str(value)))
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


def _as_yaml(value: object) -> str:
    """A parameter as a parameter file writes it (null, false), not as Python prints it."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=float("inf")).removesuffix(
        "...\n").strip()


def _accuracy_rows(prefix: str, accuracy) -> list[tuple[str, object]]:
    return [(f"{prefix} (all activity)", f"{accuracy.all_activity:.2%}"),
            (f"{prefix} (proportion weighting)", f"{accuracy.proportion_weighting:.2%}")]


def _confusion_table(classes: list[str], confusion: list[list[int]]) -> Table:
    table = Table(title="Confusion matrix (rows: true class, columns: predicted, all-activity vote)",
                  title_justify="left")
    table.add_column("true \\ predicted", style="bold")
    for name in classes:
        table.add_column(escape(name), justify="right")
    for name, row in zip(classes, confusion):
        table.add_row(escape(name), *[str(value) for value in row])
    return table


@app.command(epilog="Examples:\n\n  snnctl evaluate logs/MNIST/run1/checkpoint.safetensors\n\n"
             "  snnctl evaluate CKPT --split train --n 1000 --reduction mean --json\n\n"
             "  snnctl evaluate CKPT --task MAMMO --data-dir data/mammo --predictions predictions.csv")
def evaluate(
    checkpoint: CheckpointArgument,
    task: TaskOption = None,
    data_dir: DataDirOption = None,
    split: Annotated[Split, typer.Option(help="Which images: the held-out test split, train, or all.")] = Split("test"),
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
        per_class.add_row(escape(item.name), str(item.support), f"{item.precision:.2%}", f"{item.recall:.2%}")
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
    split: Annotated[Split, typer.Option(help="Labelled images to assign from.")] = Split("train"),
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
        parameters.add_row(key, escape(_as_yaml(value)))
    out.print(parameters)


ForceOption = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]


@app.command(epilog="Examples:\n\n  snnctl export CKPT --format npz -o network.npz\n\n"
             "  snnctl export CKPT --format torch -o state.pt\n\n"
             "  snnctl export logs/MNIST/run1/checkpoint.safetensors --format nir -o network.nir --force\n\n"
             "Formats: npz (every tensor + metadata JSON), torch (tensors-only state dict), bindsnet "
             "(a BindsNET Network for bindsnet.network.load), nir (Neuromorphic Intermediate Representation). "
             "See docs/export.md.")
def export(
    checkpoint: CheckpointArgument,
    fmt: Annotated[str, typer.Option("--format", "-f", help="npz, torch, bindsnet or nir.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Write a trained network to another format (npz, torch, bindsnet, nir)."""
    with _reported():
        from snnctl import service

        result = service.export(checkpoint, fmt, output, force)
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(_key_values(f"Exported {result.checkpoint}", [
        ("format", result.format),
        ("file", f"{result.output} ({result.bytes} bytes)"),
        ("tensors", ", ".join(result.tensors)),
        *[("not carried", note) for note in result.not_carried],
    ]))


SourceArgument = Annotated[Path, typer.Argument(
    help="A checkpoint (.safetensors), or a run directory holding checkpoint.safetensors.")]
FigureOutput = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Image file, .png, .svg or .pdf (default: CKPT-FIGURE.png next to the checkpoint).")]


def _draw(what: str, source: Path, output: Optional[Path], force: bool, as_json: bool, **options) -> None:
    """Draw one figure; print the file written (or the JSON result) on stdout."""
    with _reported():
        from snnctl import service

        with _progress_bar(not as_json) as on_progress:
            result = service.visualize(what, source, output, force, notice=_notice, on_progress=on_progress,
                                       **options)
    if as_json:
        _print_json(result.to_dict())
    else:
        sys.stdout.write(result.output + "\n")


@visualize_app.command("weights", epilog="Examples:\n\n  snnctl visualize weights logs/MNIST/run1\n\n"
                       "  snnctl visualize weights CKPT -o weights.svg --titles")
def visualize_weights(
    source: SourceArgument,
    output: FigureOutput = None,
    titles: Annotated[bool, typer.Option("--titles", help="Write each neuron's assigned class on its tile.")] = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Every excitatory neuron's input weights as a tile, in a square grid (colormap hot_r)."""
    _draw("weights", source, output, force, as_json, titles=titles)


@visualize_app.command("assignments", epilog="Examples:\n\n  snnctl visualize assignments logs/MNIST/run1\n\n"
                       "  snnctl visualize assignments CKPT -o classes.pdf")
def visualize_assignments(source: SourceArgument, output: FigureOutput = None, force: ForceOption = False,
                          as_json: JsonOption = False) -> None:
    """The neurons colored by the class each stands for, and how many neurons each class has."""
    _draw("assignments", source, output, force, as_json)


@visualize_app.command("theta", epilog="Examples:\n\n  snnctl visualize theta logs/MNIST/run1 -o theta.png")
def visualize_theta(source: SourceArgument, output: FigureOutput = None, force: ForceOption = False,
                    as_json: JsonOption = False) -> None:
    """The adaptive thresholds (theta) as a neuron grid and a histogram."""
    _draw("theta", source, output, force, as_json)


@visualize_app.command("confusion", epilog="Examples:\n\n  snnctl visualize confusion logs/MNIST/run1\n\n"
                       "  snnctl visualize confusion CKPT -o confusion.svg --device cpu")
def visualize_confusion(source: SourceArgument, output: FigureOutput = None, device: DeviceOption = None,
                        force: ForceOption = False, as_json: JsonOption = False) -> None:
    """The confusion matrix (counts and row-normalized) on the checkpoint's held-out test images."""
    _draw("confusion", source, output, force, as_json, device=device.value if device else None)


@visualize_app.command("spikes", epilog="Examples:\n\n  snnctl visualize spikes logs/MNIST/run1 --index 7\n\n"
                       "  snnctl visualize spikes CKPT --index 0 -o spikes.pdf")
def visualize_spikes(
    source: SourceArgument,
    index: Annotated[int, typer.Option("--index", help="Which held-out test image (0 = the first).")] = 0,
    output: FigureOutput = None,
    device: DeviceOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """One test image, its Poisson input raster and the excitatory raster, with predicted and true class."""
    _draw("spikes", source, output, force, as_json, index=index, device=device.value if device else None)


@visualize_app.command("curves", epilog="Examples:\n\n  snnctl visualize curves logs/MNIST/run1 -o curves.png")
def visualize_curves(source: SourceArgument, output: FigureOutput = None, force: ForceOption = False,
                     as_json: JsonOption = False) -> None:
    """A run's running-accuracy and throughput curves, from its TensorBoard event files."""
    _draw("curves", source, output, force, as_json)


def _sweep_table(result) -> Table:
    """The trials, best first: status, validation accuracy by the sweep's vote, searched values."""
    keys = list(result.best_parameters)
    vote = result.metric.replace("_", " ")
    table = Table(title=f"Sweep {result.sweep_dir}: {len(result.trials)} trials, best first. validation: accuracy "
                        f"({vote} vote) on {result.n_validation} held-out training images; running: the last "
                        f"running accuracy of training", title_justify="left")
    for column in ("#", "trial", "status", "validation", "running", *keys):
        # fold, never cut: trial ids name run directories, values are copied into files
        table.add_column(column, justify="left" if column in ("trial", "status") else "right", overflow="fold")
    for rank, trial in enumerate(result.trials, 1):
        validation = f"{getattr(trial.validation_accuracy, result.metric):.2%}" if trial.validation_accuracy else ""
        running = f"{trial.running_accuracy:.2%}" if trial.running_accuracy is not None else ""
        values = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in (trial.parameters[k] for k in keys)]
        table.add_row(str(rank), trial.trial, trial.status if trial.error is None else escape(f"error: {trial.error}"),
                      validation, running, *values)
    return table


@app.command(epilog="Examples:\n\n  snnctl sweep parameters/mnist.yaml parameters/space.yaml --trials 20\n\n"
             "  snnctl sweep PARAMS.yaml SPACE.yaml --address ray://head-node:10001 --out sweeps/s1 --json\n\n"
             "  snnctl sweep --resume sweeps/s1\n\n"
             "SPACE.yaml names parameters with a grid, a choice or a uniform / log-uniform range, the metric "
             "and the budget; see docs/sweep.md.")
def sweep(
    params: Annotated[Optional[Path], typer.Argument(help="Parameter file: the settings every trial starts from.")] = None,
    space: Annotated[Optional[Path], typer.Argument(help="Search space (YAML): parameters, metric, budget.")] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", min=1, help="Samples to draw (overrides SPACE's trials; each runs the whole grid).")] = None,
    address: Annotated[Optional[str], typer.Option(help="A Ray cluster: auto (the one running here) or ray://HOST:PORT. Default: start Ray on this machine's cores.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Sweep directory, new or empty (default: log_dir/TASK/sweep-<time>).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the interrupted sweep in this directory.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Search hyperparameters on Ray Tune; train the best configuration on all training images and test it."""
    with _reported():
        from snnctl import config as cfg
        from snnctl import service

        config = cfg.load(params) if params is not None else None
        with _progress_bar(not as_json) as on_progress:
            result = service.sweep(config, space, trials=trials, out=out_dir, resume=resume, address=address,
                                   notice=_notice, on_progress=on_progress)
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(_sweep_table(result))
    final = result.final
    out.print(_key_values(
        f"Best configuration: validation on {result.n_validation} held-out training images; test after retraining "
        f"on all {final.n_train} training images, on {final.n_test} test images", [
            ("trial", result.best_trial),
            *_accuracy_rows("validation accuracy", result.best_validation_accuracy),
            *_accuracy_rows("test accuracy", final.test_accuracy),
            ("parameters file", result.best_parameters_file),
            ("final run", final.run_dir),
            ("TensorBoard", f"tensorboard --logdir {result.tensorboard_logdir}"),
            ("Ray", result.ray),
        ]))


def main() -> None:
    app()
