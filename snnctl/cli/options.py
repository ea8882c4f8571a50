"""Arguments and options that several commands share, with their choices taken from config."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from snnctl import choices
from snnctl import nir_options as nir
from snnctl.validators import WORKERS_EXPECTED, is_worker_count
import snnctl.cli.completion as completion
import snnctl.cli.render as render


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A Typer choice type whose values are the config's allowed values (one source)."""
    return Enum(name, {value: value for value in values}, type=str)


Device = _choices("Device", choices.DEVICES)
Reduction = _choices("Reduction", choices.REDUCTIONS)
Readout = _choices("Readout", choices.READOUTS)
ReadoutFeatures = _choices("ReadoutFeatures", choices.READOUT_FEATURES)
ReadoutPooling = _choices("ReadoutPooling", choices.READOUT_POOLINGS)
Task = _choices("Task", choices.TASKS)
Split = _choices("Split", ("test", "train", "all"))
NirPreset = _choices("NirPreset", tuple(nir.NIR_PRESETS))
NirTimeUnit, NirDelays, NirVoltageZero, NirThreshold, NirR = (
    _choices(name, nir.NIR_CHOICES[key]) for name, key in (
        ("NirTimeUnit", "time_unit"), ("NirDelays", "delays"), ("NirVoltageZero", "voltage_zero"),
        ("NirThreshold", "threshold"), ("NirR", "r")))


def value(choice: Optional[Enum]) -> Optional[str]:
    """The string of a chosen option, None when it was not given."""
    return choice.value if choice is not None else None


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
DeviceOption = Annotated[Optional[Device], typer.Option(
    help="auto: CUDA when present for the BindsNET engine; the fast engine runs on the CPU.")]
def _worker_count(given: str | None) -> str | None:
    """--workers checked where it is typed, so that its error names the option."""
    if given is not None and not is_worker_count(given):
        raise typer.BadParameter(f"{given!r} is not {WORKERS_EXPECTED}")
    return given


WorkersOption = Annotated[Optional[str], typer.Option(
    callback=_worker_count,
    help="Threads for the images (learning off): auto (every core) or a number; same results for any.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
CheckpointArgument = Annotated[Optional[Path], typer.Argument(
    help="A checkpoint (.safetensors) written by snnctl train, or the run directory holding it (default: the "
    "newest finished run under --log-dir).",
    metavar="CKPT", autocompletion=completion.checkpoints)]
LogDirOption = Annotated[Optional[Path], typer.Option(
    "--log-dir", help="Where to look for the newest finished run when no checkpoint is given (default: ./logs).")]
TaskOption = Annotated[Optional[Task], typer.Option(help="Data of another task (default: the checkpoint's).")]
DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (default: the checkpoint's).")]
NOption = Annotated[Optional[int], typer.Option("--n", min=1, help="Use at most N images of the split.")]
ReductionOption = Annotated[Optional[Reduction], typer.Option(
    help="Readout: sum, mean or max over neurons (default: the checkpoint's).")]
SetOption = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="KEY=VALUE", help="Override a parameter: KEY=VALUE (repeatable).",
    autocompletion=completion.set_keys)]
AddressOption = Annotated[Optional[str], typer.Option(
    help="A Ray cluster: auto (the one running here), ray://HOST:PORT or HOST:PORT. Default: start Ray on this machine's cores.")]


def _debug(shown: bool) -> None:
    if shown:  # the same switch as `snnctl --debug COMMAND`; never turned off here
        render.state["debug"] = True


DebugOption = Annotated[bool, typer.Option("--debug", callback=_debug, expose_value=False,
                                           help="Show tracebacks of errors.")]
ReadoutOption = Annotated[Optional[Readout], typer.Option(
    help="vote (Diehl & Cook's neuron assignment) or linear (logistic regression on the spike counts or the "
         "drive, as the checkpoint's readout was fitted; assign --features refits it on others); "
         "default: the checkpoint's.")]
FeaturesOption = Annotated[Optional[ReadoutFeatures], typer.Option(
    "--features", help="What the linear readout reads: counts (spike counts) or drive (input drive above the "
                       "layer's mean, squared); default: the checkpoint's readout_features.")]
ShiftOption = Annotated[Optional[int], typer.Option(
    "--shift", min=0, help="With --features drive: each neuron's largest drive over the image shifted by up to "
                           "this many pixels each way; default: the checkpoint's readout_shift (0 for other features).")]
PoolingOption = Annotated[Optional[ReadoutPooling], typer.Option(
    "--pooling", help="With --features drive and windows (patch_size): each neuron's largest drive over the whole "
                      "image (global), or that and its largest over the windows at the image's centre (centre), or those "
                      "and the mean drive over each (centre-mean); "
                      "default: the checkpoint's readout_pooling (global for other features).")]
AugmentOption = Annotated[Optional[int], typer.Option(
    "--augment", min=0, help="With --features drive: also fit the linear readout on this many distorted copies of "
                             "each labelled image; default: the checkpoint's readout_augment (0 for other features).")]
