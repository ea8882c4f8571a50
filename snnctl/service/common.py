"""What the service functions share: progress and notices, accuracy and spike counts,
stopping on signals, naming new run and sweep directories, status files, result types.

torch, BindsNET and the modules built on them are imported inside the functions that
run networks, so that `snnctl inspect` answers without loading them.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from snnctl import __version__
from snnctl import checkpoint as ckpt
from snnctl.config import Config
from snnctl.errors import ConfigError, SnnctlError
from snnctl.files import read_versioned_json, write_atomic
from snnctl.seeds import presentation_seeds

if TYPE_CHECKING:
    import numpy as np
    import torch

    from snnctl import engine as engines
    from snnctl.readout import vote
    from snnctl.readout.activity import LayerActivity

Notice = Callable[[str], None]
STATUS_NAME = "status.json"
# Images per engine call with learning off at batch_size 1 (a larger batch is one call):
# the unit handed to a worker, after which progress and a stop on a signal are seen.
INFERENCE_UNIT_IMAGES = 250


def quiet(message: str) -> None:
    """The default Notice: says nothing."""


@dataclass
class ProgressUpdate:
    phase: str  # "train", "label", "test", "validation", "evaluate"
    done: int
    total: int
    samples_per_second: float
    running_accuracy: float | None = None
    # True on the update whose batch completed an interval that running_accuracy measures
    # (a sweep reports each measurement once to its scheduler).
    measured: bool = False


OnProgress = Callable[[ProgressUpdate], None]


def no_progress(update: ProgressUpdate) -> None:
    """The default OnProgress: ignores every update."""


class Result:
    """Base of every result type (dataclasses): ``to_dict`` is what ``--json`` prints."""

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class Accuracy(Result):
    """Diehl & Cook (2015)'s two votes: all activity, and proportion weighting."""

    all_activity: float
    proportion_weighting: float


def score(counts: "torch.Tensor", targets: "torch.Tensor", state: "vote.LabelState", n_classes: int,
          reduction: str) -> "tuple[Accuracy, vote.Votes]":
    """Accuracy of both votes of the neurons labelled by ``state``, and the votes."""
    from snnctl.readout import vote

    votes = vote.vote(counts, state, n_classes, reduction)
    return Accuracy(vote.accuracy(votes.all_activity, targets),
                    vote.accuracy(votes.proportion_weighting, targets)), votes


def seeded_as(split: str) -> str:
    """The split whose presentation seeds a checkpoint command draws ``split``'s input with:
    the training images get the input spikes the run labelled them with (``label``), so that
    assign with the run's settings gives the run's labels and evaluate its train accuracy."""
    return "label" if split == "train" else split


def batch_seeds(config: Config, split: str, first: int, units: int) -> "np.ndarray":
    """The seeds of the batches of ``units`` images (or windows) from position ``first`` of
    ``split``, learning off: each batch of ``batch_size`` seeded by its first unit's position,
    as :func:`spike_counts` presents a split from position 0."""
    import numpy as np

    return presentation_seeds(config.seed, split, (), first + np.arange(0, units, config.batch_size))


def spike_counts(engine: "engines.Engine", config: Config, images: "torch.Tensor", split: str,
                 phase: str = "evaluate", on_progress: OnProgress = no_progress) -> "torch.Tensor":
    """Run ``images`` with learning off; spike counts [n_images, n_neurons].

    With ``patch_size`` the network runs on every window of each image at
    :func:`snnctl.data.windows.spiking_stride`, and an image's counts are the sum over its
    windows: the layer's activity over the whole image."""
    if not config.patch_size:
        return _counts(engine, config, images, split, phase, on_progress)
    from snnctl.data import windows

    per_image = windows.sliding_windows(images, config.input_size, config.patch_size,
                                        windows.spiking_stride(config.patch_size))
    n, count = per_image.shape[:2]

    def in_images(update: ProgressUpdate) -> None:
        on_progress(ProgressUpdate(update.phase, update.done // count, n, update.samples_per_second / count))

    return _counts(engine, config, per_image.flatten(0, 1), split, phase, in_images).reshape(n, count, -1).sum(1)


def _counts(engine: "engines.Engine", config: Config, images: "torch.Tensor", split: str, phase: str,
            on_progress: OnProgress) -> "torch.Tensor":
    """Spike counts of ``images`` as the network's input, learning off.

    Images are independent with learning off: units of them run on the engine's
    ``workers`` threads, each batch seeded by its position, so the counts are those of
    one thread. Progress is reported unit by unit, in order."""
    import torch

    counts = torch.zeros(len(images), config.n_neurons, dtype=torch.int32)
    size = config.batch_size
    seeds = batch_seeds(config, split, 0, len(images))
    per_unit = INFERENCE_UNIT_IMAGES if size == 1 else 1  # batches
    units = [(first, min(first + per_unit, len(seeds))) for first in range(0, len(seeds), per_unit)]

    def run(unit: tuple[int, int]) -> "torch.Tensor":
        return engine.present_sequence(images[unit[0] * size:unit[1] * size], False, seeds[unit[0]:unit[1]])

    started = time.perf_counter()
    pool = ThreadPoolExecutor(engine.workers) if engine.workers > 1 and len(units) > 1 else None
    try:
        for (first, last), unit_counts in zip(units, pool.map(run, units) if pool else map(run, units)):
            stop = min(last * size, len(images))
            counts[first * size:stop] = unit_counts
            on_progress(ProgressUpdate(phase, stop, len(images), stop / max(time.perf_counter() - started, 1e-9)))
    finally:
        if pool:  # a stop asked for in on_progress: the units not started are dropped
            pool.shutdown(cancel_futures=True)
    return counts


def layer_activity_noticed(counts: "torch.Tensor", images: str, notice: Notice) -> "LayerActivity":
    """How the layer spiked on ``images`` (their spike ``counts``), with one notice when it
    fired in lockstep (:func:`snnctl.readout.activity.describe`): every command that runs a
    trained layer over images says so, since no score shows it."""
    from snnctl.readout.activity import describe, layer_activity

    activity = layer_activity(counts.numpy())
    if (lockstep := describe(activity, images)) is not None:
        notice(lockstep)
    return activity


# ---------------------------------------------------------------- signals


class Interrupted(SnnctlError):
    """Training stopped by SIGINT/SIGTERM after saving a checkpoint: exit 128 + signal.
    ``resume``: what ``train --resume`` continues (the checkpoint, or the study it is a fold of)."""

    def __init__(self, signum: int, checkpoint: Path, resume: Path | None = None) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}: checkpoint saved to {checkpoint}; "
                         f"continue with: snnctl train --resume {resume or checkpoint}")
        self.exit_code = 128 + signum
        self.signum, self.checkpoint = signum, checkpoint


@dataclass
class StopRequest:
    """The SIGINT or SIGTERM received while :func:`stop_on_signals` was in force, if any."""

    signal: int | None = None


@contextmanager
def stop_on_signals(interrupt: bool = False) -> Iterator[StopRequest]:
    """While in force, SIGINT and SIGTERM are noted in the yielded request, so that training
    finishes its batch and saves a checkpoint; with ``interrupt`` they also raise
    KeyboardInterrupt at once (what a sweep needs: the one exception Ray's waits let
    through). Off the main thread, where Python delivers no signal, nothing is installed."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def note(signum: int, frame: Any) -> None:
        request.signal = signum
        if interrupt:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ---------------------------------------------------------------- run directories and status


def with_absolute_data_paths(config: Config) -> Config:
    """``config`` with ``data_dir`` and ``group_file`` made absolute: a checkpoint is read
    from other directories than it was trained in, and a sweep's trials and a study's
    folds may run in Ray workers, each in a directory of its own."""
    return config.replace(data_dir=str(Path(config.data_dir).resolve()),
                          group_file=str(Path(config.group_file).resolve()) if config.group_file else None)


def new_directory(config: Config, out: Path | None, *, prefix: str = "", force: bool = False,
                  remedy: str = "use --force, another name, or --resume") -> Path:
    """Where a new run (or, with ``prefix`` "sweep-", a sweep) writes: ``out``, or
    log_dir/TASK/NAME, NAME being the config's ``name`` for a run, else PREFIX + the time
    and a random suffix. It must not exist, or be an empty directory (``force``: any
    directory). Not created here: the caller creates it once its input is checked."""
    if out is None:
        stamp = f"{prefix}{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        out = Path(config.log_dir) / config.task / ((config.name if not prefix else None) or stamp)
    out = Path(out)
    if out.exists() and not out.is_dir():  # --force writes into a directory, never over a file
        raise ConfigError(f"{out}: is a file, not a directory; give a directory name")
    if out.exists() and not (force or not any(out.iterdir())):
        raise ConfigError(f"{out}: exists and is not an empty directory ({remedy})")
    return out


def write_status(run_dir: Path, state: str, progress: ckpt.Progress, checkpoint_path: Path) -> None:
    """status.json of a run: running, finished or interrupted, and where it stands."""
    status = {"state": state, "checkpoint": str(checkpoint_path), **asdict(progress)}
    write_atomic(run_dir / STATUS_NAME, (json.dumps(status, indent=2) + "\n").encode())


def mark_failed(run_dir: Path, checkpoint_path: Path, error: str) -> None:
    """status.json says "failed", with the error, once an error ended the run (never
    "running" forever); where the run stands stays that of its last checkpoint.

    Best effort: the error that ended the run is the one reported. On a full disk, where no
    new file can be written, the old status is overwritten in place (it frees its own
    block first): a torn status file is better than one that says the run goes on."""
    path = run_dir / STATUS_NAME
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = None
    if not isinstance(status, dict):
        status = {"checkpoint": str(checkpoint_path)}
    text = (json.dumps({**status, "state": "failed", "error": error}, indent=2) + "\n").encode()
    try:
        write_atomic(path, text)
    except SnnctlError:
        with contextlib.suppress(OSError):
            path.write_bytes(text)


def check_output(path: Path | None, force: bool, reads: Path | None = None) -> None:
    """A file a command is about to write: refused if it exists (unless ``force``), if it
    is the checkpoint the command ``reads`` (even with ``force``), or if its folder does not
    exist, before any work is done."""
    if path is None:
        return
    if reads is not None and path.resolve() == Path(reads).resolve():
        raise ConfigError(f"{path}: is the checkpoint this command reads; give another file name")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, give a file name")
    if path.exists() and not force:
        raise ConfigError(f"{path}: exists (use --force to replace it)")
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent}: no such directory")


def write_state(path: Path, state_format: str, version: int, fields: dict[str, Any]) -> None:
    """The state file of a sweep or a study (what ``--resume`` reads): its format and
    version, the snnctl that wrote it and when, then ``fields``."""
    state = {"format": state_format, "version": version, "snnctl": __version__,
             "created": datetime.now().astimezone().isoformat(timespec="seconds"), **fields}
    write_atomic(path, (json.dumps(state, indent=2) + "\n").encode())


def read_state(path: Path, state_format: str, version: int, what: str) -> dict[str, Any]:
    """The state file ``path`` of a ``what`` ("sweep", "study"); one error line when the
    folder holds none or it is not readable."""
    try:
        return read_versioned_json(path, state_format, version, f"{what} state")
    except FileNotFoundError:
        raise SnnctlError(f"{path.parent}: not a {what} directory (no {path.name})") from None
