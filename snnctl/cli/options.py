"""Arguments and options that several commands share, with their choices taken from config."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from snnctl import config as cfg


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A Typer choice type whose values are the config's allowed values (one source)."""
    return Enum(name, {value: value for value in values}, type=str)


Device = _choices("Device", cfg.DEVICES)
Reduction = _choices("Reduction", cfg.REDUCTIONS)
Task = _choices("Task", cfg.TASKS)
Split = _choices("Split", ("test", "train", "all"))


def value(choice: Optional[Enum]) -> Optional[str]:
    """The string of a chosen option, None when it was not given."""
    return choice.value if choice is not None else None


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
DeviceOption = Annotated[Optional[Device], typer.Option(
    help="auto: CUDA when present for the BindsNET engine; the fast engine runs on the CPU.")]
WorkersOption = Annotated[Optional[str], typer.Option(
    help="Threads for the images (learning off): auto (every core) or a number; same results for any.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
CheckpointArgument = Annotated[Path, typer.Argument(help="A checkpoint (.safetensors) written by snnctl train.")]
TaskOption = Annotated[Optional[Task], typer.Option(help="Data of another task (default: the checkpoint's).")]
DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (default: the checkpoint's).")]
NOption = Annotated[Optional[int], typer.Option("--n", min=1, help="Use at most N images of the split.")]
ReductionOption = Annotated[Optional[Reduction], typer.Option(
    help="Readout: sum, mean or max over neurons (default: the checkpoint's).")]
