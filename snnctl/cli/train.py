"""``snnctl train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from snnctl import config as cfg
import snnctl.cli.completion as completion
import snnctl.cli.render as render
from snnctl.cli.options import DebugOption, DeviceOption, JsonOption, value

EPILOG = render.examples("snnctl train parameters/mnist.yaml",
                         "snnctl train parameters/mnist.yaml --set n_neurons=400 --set epochs=3 --out runs/n400",
                         "snnctl train --resume logs/MNIST/run1/checkpoint.safetensors")


def train(
    params: Annotated[Optional[Path], typer.Argument(help="Parameter file (YAML, ours or the original nested layout).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a parameter: KEY=VALUE (repeatable).", autocompletion=completion.set_keys)] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run directory (default: log_dir/TASK/NAME).")] = None,
    resume: Annotated[Optional[Path], typer.Option(
        help="Continue the run of this checkpoint.", autocompletion=completion.checkpoints)] = None,
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option("--force", help="Write into an existing, non-empty run directory.")] = False,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Train the network on a task with unsupervised STDP, then label and test it."""

    def call(on_progress):
        from snnctl import service

        if params is None and resume is None:
            raise cfg.ConfigError("train: give a parameter file, or --resume CHECKPOINT")
        config = cfg.load(params) if params is not None else None
        return service.train(config, out=out_dir, resume=resume, overrides=list(set_ or []), device=value(device),
                             force=force, notice=render.notice, on_progress=on_progress)

    render.run(call, _table, as_json)


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
    ])]
