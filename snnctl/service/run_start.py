"""Where a run starts: its parameters (a parameter file and ``--set``, or a checkpoint to
resume with the keys that may change), its directory and checkpoint file, its tensors and
progress, and its images. Nothing here writes: :func:`snnctl.service.train.train` claims
the directory and runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl.config import Config
from snnctl.errors import ConfigError
from snnctl.service.common import Notice, new_directory, with_absolute_data_paths
from snnctl.service.intervals import RunningAccuracy
from snnctl.service.validation import Validation, validation_splits

if TYPE_CHECKING:
    import torch

    from snnctl import data


def with_parameters(config: Config, overrides: list[str], device: str | None) -> Config:
    """``config`` with the ``--set`` overrides, then the device asked for: the one place
    both are applied, to a new run's parameters and to a resumed checkpoint's alike."""
    config = cfg.apply_overrides(config, overrides)
    return config if device is None else config.replace(device=device)


def resume_config(checkpoint: ckpt.Checkpoint, config: Config | None, overrides: list[str],
                  device: str | None) -> Config:
    """The checkpoint's parameters with ``overrides`` and ``device``; a parameter file given
    too must agree with them. Only the keys of :data:`snnctl.choices.RESUMABLE_KEYS` may
    differ from the checkpoint's."""
    # a relative data_dir (or group_file) names the folder the run's own one does when both
    # resolve alike: compared, and kept, as absolute paths
    recorded = with_absolute_data_paths(checkpoint.config)
    stored = with_absolute_data_paths(with_parameters(checkpoint.config, overrides, device))
    cfg.check_resume_changes(recorded, stored, "--resume")
    if config is not None:
        wanted = with_absolute_data_paths(with_parameters(config, overrides, device))
        cfg.check_resume_changes(recorded, wanted, "--resume with a parameter file")
        differing = [k for k in cfg.KEYS if getattr(wanted, k) != getattr(stored, k)]
        if differing:
            key = differing[0]
            raise ConfigError(f"--resume: parameter {key!r} is {getattr(wanted, key)!r} in the file but "
                              f"{getattr(stored, key)!r} in the checkpoint (change it with --set {key}=...)")
    return stored


@dataclass
class RunStart:
    """Where a run starts: its parameters, directory, checkpoint file, tensors and progress."""

    config: Config
    run_dir: Path
    checkpoint: Path  # the file it saves to: a resumed run continues the file it was given
    empty: bool  # the run directory must hold nothing else when claimed
    tensors: object
    progress: ckpt.Progress
    running: RunningAccuracy
    resumed_at: int | None
    weights_sum: "torch.Tensor | None" = None  # average_weights' running sum, inside its stretch
    # a resumed run writing into its checkpoint's own directory (not a new or --force'd --out):
    # the files there are its own, never a replaced run's
    own_directory: bool = False


def start_run(config: Config | None, out: Path | None, resume: Path | None, overrides: list[str], device: str | None,
           force: bool, notice: Notice) -> RunStart:
    """A new run, or the checkpoint's run continued; ``device`` may differ from the
    checkpoint's, as may the ``overrides`` of resumable keys. Nothing is written yet."""
    from snnctl import memory
    from snnctl import network as net
    from snnctl.engine import choose_engine, resolve_device

    if resume is not None:
        previous = ckpt.load(resume)
        config = resume_config(previous, config, overrides, device)
    elif config is None:
        raise ConfigError("train: a parameter file or --resume is required")
    else:
        # the checkpoint records the folders it was trained on wherever it is later read: a
        # relative data_dir would name another folder from another directory (MNIST would
        # then fall back to its bundled subset without a word)
        config = with_absolute_data_paths(with_parameters(config, overrides, device))
    memory.check_fits(config)
    # a device this machine lacks is a config error: refused before the run directory is
    # made or a resumed run's status.json is marked failed
    resolve_device(config, choose_engine(config))
    own_directory = resume is not None and out is None
    if own_directory:
        run_dir, checkpoint, empty = Path(resume).parent, Path(resume), False
    else:
        run_dir = new_directory(config, out, force=force)
        checkpoint, empty = run_dir / ckpt.CHECKPOINT_NAME, not force
    if resume is None:
        return RunStart(config, run_dir, checkpoint, empty, net.initial_tensors(config), ckpt.Progress(),
                      RunningAccuracy(config, None, None), None)
    if previous.progress.finished and config.epochs <= previous.progress.epoch:
        notice(f"{resume}: the run had finished its {previous.progress.epoch} epochs: labelling and testing "
               f"again (to train more: --set epochs={previous.progress.epoch + 1})")
    return RunStart(config, run_dir, checkpoint, empty, previous.tensors, previous.progress,
                  RunningAccuracy(config, previous.window, previous.labels), previous.progress.samples_seen,
                  previous.weights_sum, own_directory)


def run_images(config: Config, resume: Path | None, validation: Validation | None, notice: Notice) -> "data.Splits":
    """The run's images: a resumed MAMMO run keeps the split recorded beside its checkpoint
    (a sweep's trial its training and validation images)."""
    from snnctl import data

    if resume is not None and config.task == "MAMMO":
        recorded = data.load_recorded_split(Path(resume).parent, config, notice)
        if recorded is not None:
            return recorded
    if validation is not None:
        return validation_splits(config, validation, notice)
    return data.load_splits(config, notice)
