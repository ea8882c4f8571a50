"""``snnctl sweep``: a hyperparameter search on Ray Tune, its trials as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from snnctl import config as cfg
import snnctl.cli.render as render
from snnctl.cli.options import AddressOption, DebugOption, JsonOption, SetOption

EPILOG = render.examples(
    "snnctl sweep parameters/mnist.yaml parameters/space.yaml --trials 20",
    "snnctl sweep PARAMS.yaml SPACE.yaml --address ray://head-node:10001 --out sweeps/s1 --json",
    "snnctl sweep --resume sweeps/s1",
    "snnctl sweep parameters/mammo-study.yaml SPACE.yaml --folds 5 --set data_dir=data/mammo",
    note="SPACE.yaml names parameters with a grid, a choice or a uniform / log-uniform range, the metric "
         "and the budget; see docs/sweep.md.")


def sweep(
    params: Annotated[Optional[Path], typer.Argument(help="Parameter file: the settings every trial starts from.")] = None,
    space: Annotated[Optional[Path], typer.Argument(help="Search space (YAML): parameters, metric, budget.")] = None,
    set_: SetOption = None,
    trials: Annotated[Optional[int], typer.Option("--trials", min=1, help="Samples to draw (overrides SPACE's trials; each runs the whole grid).")] = None,
    folds: Annotated[Optional[int], typer.Option("--folds", min=2, help="Score each trial by K-fold cross-validation on the training images (grouped, stratified) instead of one validation split.")] = None,
    address: AddressOption = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Sweep directory, new or empty (default: log_dir/TASK/sweep-<time>-<id>).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the interrupted sweep in this directory.")] = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Search hyperparameters on Ray Tune; train the best configuration on all training images and test it."""

    def call(on_progress):
        from snnctl import service

        if set_ and params is None:
            raise cfg.ConfigError("sweep: --set changes the parameter file; --resume continues a sweep with the "
                                  "parameters it was set up with")
        config = cfg.load(params, list(set_ or [])) if params is not None else None
        return service.sweep(config, space, trials=trials, folds=folds, out=out_dir, resume=resume, address=address,
                             notice=render.notice, on_progress=on_progress)

    render.run(call, tables, as_json)


def tables(result) -> render.Rendering:
    """The trials, best first, then the best configuration and its final run."""
    final = result.final
    best = render.key_values(
        f"Best configuration: validation on {_held_out(result)}; test after retraining "
        f"on all {final.n_train} training images, on {final.n_test} test images", [
            ("trial", result.best_trial),
            *render.accuracy_rows("validation accuracy", result.best_validation_accuracy),
            *_balanced_row("validation", result.readout, result.best_validation_balanced_accuracy),
            *render.accuracy_rows("test accuracy", final.test_accuracy),
            *_balanced_row("test", result.readout, final.scores.headline.balanced_accuracy
                           if final.scores is not None and final.scores.headline is not None else None),
            ("parameters file", result.best_parameters_file),
            ("final run", final.run_dir),
            ("TensorBoard", f"tensorboard --logdir {result.tensorboard_logdir}"),
            ("Ray", result.ray),
        ])
    return [trials_table(result), best]


def _balanced_row(images: str, readout: str, value: float | None) -> list[tuple[str, str]]:
    """The balanced accuracy of the run's readout, as a row (none without one)."""
    return [(f"{images} balanced accuracy ({readout} readout)", f"{value:.2%}")] if value is not None else []


def _held_out(result) -> str:
    """What scored the trials: one validation split, or cross-validation."""
    if result.validation_folds:
        return f"{result.validation_folds} folds of the training images (mean)"
    return f"{result.n_validation} held-out training images"


def trials_table(result) -> Table:
    """The trials, best first: status, the validation figure that ranks them, searched values."""
    from snnctl.service.sweep import metric_name

    keys = list(result.best_parameters)
    table = Table(title=f"Sweep {result.sweep_dir}: {len(result.trials)} trials, best first. validation: "
                        f"{metric_name(result.metric, result.readout)} on {_held_out(result)}; running: the last "
                        f"running accuracy of training", title_justify="left")
    for column in ("#", "trial", "status", "validation", "running", *keys):
        # fold, never cut: trial ids name run directories, values are copied into files
        table.add_column(column, justify="left" if column in ("trial", "status") else "right", overflow="fold")
    for rank, trial in enumerate(result.trials, 1):
        score = trial.score(result.metric)
        validation = f"{score:.2%}" if score is not None else ""
        running = f"{trial.running_accuracy:.2%}" if trial.running_accuracy is not None else ""
        values = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in (trial.parameters[k] for k in keys)]
        table.add_row(str(rank), trial.trial, trial.status if trial.error is None else escape(f"error: {trial.error}"),
                      validation, running, *values)
    return table
