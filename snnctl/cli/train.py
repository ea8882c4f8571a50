"""``snnctl train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from snnctl import config as cfg
import snnctl.cli.completion as completion
import snnctl.cli.render as render
from snnctl.cli.options import AddressOption, DebugOption, DeviceOption, JsonOption, SetOption, value
from snnctl.cli.scores import scores_table

EPILOG = render.examples("snnctl train parameters/mnist.yaml",
                         "snnctl train parameters/mnist.yaml --set n_neurons=400 --set epochs=3 --out runs/n400",
                         "snnctl train --resume logs/MNIST/run1/checkpoint.safetensors",
                         "snnctl train parameters/mammo-study.yaml --folds 5 --out studies/s1",
                         "snnctl train --resume studies/s1",
                         note="With --folds K (or folds: K), a study: K runs, each holding out one grouped, stratified "
                              "fold, and a table of their figures with mean, sd and a 95% interval (docs/mammo.md).")


def train(
    params: Annotated[Optional[Path], typer.Argument(help="Parameter file (YAML, ours or the original nested layout).")] = None,
    set_: SetOption = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default: log_dir/TASK/NAME).")] = None,
    resume: Annotated[Optional[Path], typer.Option(
        help="Continue the run of this checkpoint (or its run directory), or the study in this directory.",
        autocompletion=completion.checkpoints)] = None,
    folds: Annotated[Optional[int], typer.Option("--folds", min=2, help="k-fold cross-validation of image folders (task MAMMO): a study of K runs.")] = None,
    concurrent_folds: Annotated[Optional[int], typer.Option("--concurrent-folds", min=1, help="Folds at once (1: one after another, without Ray). Default: as many as Ray has CPUs.")] = None,
    address: AddressOption = None,
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the run in an existing run directory: its checkpoint, status, TensorBoard log, figures and split go once the new run's parameters and data are accepted; other files stay.")] = False,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Train the network on a task with unsupervised STDP, then label and test it."""

    def call(on_progress):
        from snnctl import service

        if params is None and resume is None:
            raise cfg.ConfigError("train: give a parameter file, or --resume CHECKPOINT")
        config = cfg.load(params) if params is not None else None
        overrides = list(set_ or [])
        # whether this is a study depends on the parameters as --set leaves them (--set folds=5)
        wanted = service.with_parameters(config, overrides, value(device)) if config is not None else None
        if service.is_study(wanted, folds, resume):
            if resume is not None and (overrides or device is not None):
                raise cfg.ConfigError(f"train: --resume {resume} continues a study as it was set up; --set and "
                                      f"--device cannot change it (start a new study to change them)")
            return service.study(wanted, folds=folds, out=out_dir, resume=resume, address=address,
                                 concurrent_folds=concurrent_folds, notice=render.notice, on_progress=on_progress)
        study_only = [flag for flag, given in (("--folds", folds), ("--concurrent-folds", concurrent_folds),
                                               ("--address", address)) if given is not None]
        if study_only:
            raise cfg.ConfigError(f"train: {study_only[0]} is for a study (--folds K with PARAMS, or --resume "
                                  f"STUDY_DIR); {resume} is a run's checkpoint" if resume is not None else
                                  f"train: {study_only[0]} is for a study (--folds K or folds: K)")
        return service.train(config, out=out_dir, resume=resume, overrides=overrides, device=value(device),
                             force=force, notice=render.notice, on_progress=on_progress)

    render.run(call, _tables, as_json)


def _tables(result) -> render.Rendering:
    from snnctl.service import StudyResult

    return study_tables(result) if isinstance(result, StudyResult) else _table(result)


def _table(result) -> render.Rendering:
    return [render.key_values("Training finished", [
        *render.accuracy_rows("test accuracy", result.test_accuracy),
        ("train accuracy (all activity)", f"{result.train_accuracy.all_activity:.2%}"),
        ("images", f"{result.n_train} train / {result.n_test} test, {result.epochs} epoch(s)"),
        ("speed", f"{result.samples_per_second:.0f} images/s ({result.engine}, {result.device}): "
                  f"{result.images_trained} STDP presentations in "
                  f"{result.train_seconds:.1f} s, start-up, labelling and testing not counted"),
        ("data", result.data),
        ("checkpoint", result.checkpoint),
        ("TensorBoard run", result.run_dir),
    ]), scores_table(result.scores, f"{result.n_test} {result.held_out} images")]


def study_tables(result) -> render.Rendering:
    """The study table: one row per figure, one column per fold, then mean, sd and the
    95% interval of the mean; then where the files are."""
    table = Table(title=f"Study {result.study_dir}: {result.folds} folds ({result.ran_on})", title_justify="left")
    table.add_column("figure", overflow="fold")
    for fold in result.per_fold:
        table.add_column(f"fold {fold.fold}", justify="right")
    for column in ("mean", "sd", "95% interval"):
        table.add_column(column, justify="right")
    for name, summary in result.summary.items():
        values = [f"{fold.metrics[name]:.3f}" if name in fold.metrics else "" for fold in result.per_fold]
        table.add_row(name, *values, f"{summary.mean:.3f}", f"{summary.sd:.3f}",
                      f"{summary.low:.3f} to {summary.high:.3f}")
    if result.verdict is not None:
        table.caption, table.caption_justify = result.verdict, "left"
    files = render.key_values("Files", [("table", result.table_file),
                                        ("TensorBoard", f"tensorboard --logdir {result.tensorboard_logdir}")])
    return [table, files]
