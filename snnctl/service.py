"""The core service layer: every command of the CLI is one function here.

Each function takes a config or a checkpoint path and returns a plain result object
(a dataclass with ``to_dict()``) that the CLI renders and a script can reuse.
Progress and notices go through callbacks, never to stdout.
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl.config import Config
from snnctl.errors import ConfigError, SnnctlError
from snnctl.files import write_atomic
from snnctl.seeds import presentation_seed, subset_seed

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from snnctl import data, engine as engines, labels, sweep as sweeps

# torch, BindsNET and the modules built on them are imported inside the functions that
# run networks, so that `snnctl inspect` answers without loading them.

Notice = Callable[[str], None]
STATUS_NAME = "status.json"


def _quiet(message: str) -> None:
    pass


@dataclass
class ProgressUpdate:
    phase: str  # "train", "label", "test", "evaluate"
    done: int
    total: int
    samples_per_second: float
    running_accuracy: float | None = None
    # True on the update whose batch completed an interval that running_accuracy measures
    # (a sweep reports each measurement once to its scheduler).
    measured: bool = False


OnProgress = Callable[[ProgressUpdate], None]


def _no_progress(update: ProgressUpdate) -> None:
    pass


class Interrupted(SnnctlError):
    """Training stopped by SIGINT/SIGTERM after saving a checkpoint: exit 128 + signal."""

    def __init__(self, signum: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}: checkpoint saved to {checkpoint}; "
                         f"continue with: snnctl train --resume {checkpoint}")
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint


# ---------------------------------------------------------------- running images


def spike_counts(engine: "engines.Engine", config: Config, images: "torch.Tensor", split: str,
                 phase: str = "evaluate", on_progress: OnProgress = _no_progress) -> "torch.Tensor":
    """Run ``images`` with learning off; spike counts [n_images, n_neurons]."""
    import torch

    from snnctl import engine as engines

    counts = torch.zeros(len(images), config.n_neurons, dtype=torch.int32)
    started = time.perf_counter()
    for start in range(0, len(images), config.batch_size):
        stop = min(start + config.batch_size, len(images))
        seed = presentation_seed(config.seed, split, start)
        counts[start:stop] = engines.present_with_retries(engine, config, images[start:stop], False, seed)
        elapsed = time.perf_counter() - started
        on_progress(ProgressUpdate(phase, stop, len(images), stop / max(elapsed, 1e-9)))
    return counts


@dataclass
class Accuracy:
    all_activity: float
    proportion_weighting: float


def _score(counts: "torch.Tensor", targets: "torch.Tensor", state: "labels.LabelState", n_classes: int,
           reduction: str) -> "tuple[Accuracy, labels.Votes]":
    from snnctl import labels

    votes = labels.vote(counts, state, n_classes, reduction)
    return Accuracy(labels.accuracy(votes.all_activity, targets),
                    labels.accuracy(votes.proportion_weighting, targets)), votes


# ---------------------------------------------------------------- train


@dataclass
class TrainResult:
    run_dir: str
    checkpoint: str
    test_accuracy: Accuracy
    train_accuracy: Accuracy
    samples_seen: int
    epochs: int
    samples_per_second: float
    train_seconds: float
    n_train: int
    n_test: int
    data: str
    engine: str
    device: str
    # What test_accuracy and n_test measure: the test images, or with a Holdout the
    # validation images set aside from the training images.
    held_out: str = "test"

    def to_dict(self) -> dict:
        return asdict(self)


def _run_dir(config: Config, out: Path | None, force: bool) -> Path:
    if out is None:
        name = config.name or f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        out = Path(config.log_dir) / config.task / name
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out}: run directory exists and is not empty (use --force, another name, or --resume)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_status(run_dir: Path, state: str, progress: ckpt.Progress, checkpoint_path: Path) -> None:
    status = {"state": state, "checkpoint": str(checkpoint_path), **asdict(progress)}
    write_atomic(run_dir / STATUS_NAME, (json.dumps(status, indent=2) + "\n").encode())


@contextmanager
def _stop_on_signals() -> Iterator[dict]:
    """SIGINT/SIGTERM set a flag so the current batch finishes and a checkpoint is written."""
    flag: dict = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def request_stop(signum, frame) -> None:
        flag["signal"] = signum

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _resume_config(checkpoint: ckpt.Checkpoint, config: Config | None, overrides: list[str]) -> Config:
    stored = cfg.apply_overrides(checkpoint.config, overrides)
    if config is not None:
        wanted = cfg.apply_overrides(config, overrides)
        differing = [k for k in cfg.KEYS if getattr(wanted, k) != getattr(stored, k)]
        if differing:
            key = differing[0]
            raise ConfigError(f"--resume: parameter {key!r} is {getattr(wanted, key)!r} in the file but "
                              f"{getattr(stored, key)!r} in the checkpoint (change it with --set {key}=...)")
    return stored


class _RunningAccuracy:
    """The original's training-time estimate: every update_interval samples, score them
    with the assignment made from the previous interval, then reassign from them."""

    def __init__(self, config: Config, window: "tuple[torch.Tensor, torch.Tensor] | None",
                 state: "labels.LabelState | None") -> None:
        self.config = config
        self.counts = [window[0]] if window is not None else []
        self.labels = [window[1]] if window is not None else []
        self.state = state
        self.latest: Accuracy | None = None

    def add(self, counts: "torch.Tensor", targets: "torch.Tensor") -> Accuracy | None:
        import torch

        from snnctl import labels

        self.counts.append(counts)
        self.labels.append(targets)
        if sum(len(t) for t in self.labels) < self.config.update_interval:
            return None
        window_counts, window_labels = torch.cat(self.counts), torch.cat(self.labels)
        self.counts, self.labels = [], []
        scored = None
        if self.state is not None:
            scored, _ = _score(window_counts, window_labels, self.state, self.config.n_classes, self.config.reduction)
            self.latest = scored
        self.state = labels.assign(window_counts, window_labels, self.config.n_classes, self.config.reduction)
        return scored

    def window(self) -> "tuple[torch.Tensor, torch.Tensor] | None":
        import torch

        if not self.counts:
            return None
        return torch.cat(self.counts), torch.cat(self.labels)


class _Training:
    """One training run's moving parts: the engine, where it stands, its log and its files."""

    def __init__(self, config: Config, run_dir: Path, engine: "engines.Engine", splits: "data.Splits",
                 progress: ckpt.Progress, running: _RunningAccuracy, run_log, stop: dict,
                 held_out: str = "test") -> None:
        self.config = config
        self.run_dir = run_dir
        self.checkpoint_path = run_dir / ckpt.CHECKPOINT_NAME
        self.engine = engine
        self.train_set, self.test_set = splits.train, splits.test
        self.info = {"data": splits.origin}
        self.progress = progress
        self.running = running
        self.log = run_log
        self.stop = stop
        self.held_out = held_out  # what the held-out images are: "test", or "validation" (see Holdout)

    def save(self, label_state: "labels.LabelState | None", extra: dict | None = None) -> None:
        finished = self.progress.finished
        ckpt.save(ckpt.Checkpoint(self.config, self.engine.sync(), self.train_set.class_names, label_state,
                                  self.progress, None if finished else self.running.window(),
                                  {**self.info, **(extra or {})}), self.checkpoint_path)
        _write_status(self.run_dir, "finished" if finished else "running", self.progress, self.checkpoint_path)

    def stop_if_asked(self) -> None:
        """After SIGINT/SIGTERM: save where training stands, say so in status.json, stop."""
        if self.stop["signal"] is not None:
            self.save(self.running.state)
            _write_status(self.run_dir, "interrupted", self.progress, self.checkpoint_path)
            raise Interrupted(self.stop["signal"], self.checkpoint_path)

    def learn(self, on_progress: OnProgress) -> tuple[int, float]:
        """The epochs of STDP from where the run stands; returns (images, seconds)."""
        from snnctl import data, engine as engines

        config, progress = self.config, self.progress
        epoch_length = len(data.training_order(self.train_set, config, 0))
        started, simulated, trained_now = time.perf_counter(), 0.0, 0
        next_checkpoint = _next_multiple(progress.samples_seen, config.checkpoint_every)
        while progress.epoch < config.epochs:
            order = data.training_order(self.train_set, config, progress.epoch)
            self.engine.set_learning_rates(*config.learning_rates(progress.epoch))
            while progress.position < len(order):
                batch = order[progress.position:progress.position + config.batch_size]
                seed = presentation_seed(config.seed, "train", progress.epoch, progress.position)
                tick = time.perf_counter()
                counts = engines.present_with_retries(self.engine, config, self.train_set.images[batch], True, seed)
                simulated += time.perf_counter() - tick
                progress.position += len(batch)
                progress.samples_seen += len(batch)
                trained_now += len(batch)
                rate = trained_now / max(time.perf_counter() - started, 1e-9)
                scored = self.running.add(counts, self.train_set.labels[batch])
                if scored is not None:
                    self.log.scalars(progress.samples_seen, {
                        "accuracy/all_activity": scored.all_activity,
                        "accuracy/proportion_weighting": scored.proportion_weighting,
                        "time/simulation": simulated,
                        "throughput/samples_per_second": rate,
                    })
                    simulated = 0.0
                latest = self.running.latest.all_activity if self.running.latest else None
                on_progress(ProgressUpdate("train", progress.epoch * epoch_length + progress.position,
                                           config.epochs * epoch_length, rate, latest, scored is not None))
                if config.checkpoint_every and progress.samples_seen >= next_checkpoint:
                    next_checkpoint = _next_multiple(progress.samples_seen, config.checkpoint_every)
                    self.save(self.running.state)
                    self.log.weights(progress.samples_seen, self.engine.sync().weights)
                self.stop_if_asked()
            progress.epoch += 1
            progress.position = 0
        return trained_now, time.perf_counter() - started

    def label_and_test(self, on_progress: OnProgress) -> "tuple[labels.LabelState, Accuracy, Accuracy]":
        """Labels from the training images only, learning off; then the held-out test.

        A stop here keeps the trained network: resuming labels and tests afresh."""
        from snnctl import labels

        def progress_or_stop(update: ProgressUpdate) -> None:
            on_progress(update)
            self.stop_if_asked()

        config, train_set, test_set = self.config, self.train_set, self.test_set
        train_counts = spike_counts(self.engine, config, train_set.images, "label", "label", progress_or_stop)
        state = labels.assign(train_counts, train_set.labels, config.n_classes, config.reduction)
        train_accuracy, _ = _score(train_counts, train_set.labels, state, config.n_classes, config.reduction)
        test_counts = spike_counts(self.engine, config, test_set.images, self.held_out, self.held_out,
                                   progress_or_stop)
        test_accuracy, _ = _score(test_counts, test_set.labels, state, config.n_classes, config.reduction)
        return state, train_accuracy, test_accuracy


@dataclass(frozen=True)
class Holdout:
    """Training images set aside to score a run in place of the test images: a sweep's
    validation split. Drawn (stratified) from all the training images before ``n_train``,
    with its own seed, so it is the same for every trial whatever its seed and n_train."""

    size: int
    seed: int


def holdout_splits(config: Config, holdout: Holdout, notice: Notice = _quiet) -> "data.Splits":
    """The training images less a validation part, and that part as the held-out split.
    The test images are dropped here, before any network exists, so they are never run."""
    from snnctl import data

    loaded = data.load_splits(config.replace(n_train=None), notice)
    images = loaded.train
    if not 0 < holdout.size < len(images):
        raise ConfigError(f"validation: {holdout.size} images is not between 0 and the {len(images)} "
                          f"training images of {loaded.origin}")
    rest, held = data.stratified_split(images.labels, holdout.size, holdout.seed)
    return data.Splits(data.limit(images.subset(rest), config.n_train, config.seed), images.subset(held),
                       f"{loaded.origin}; {len(held)} of its training images held out for validation",
                       loaded.manifest)


def train(config: Config | None = None, *, out: Path | None = None, resume: Path | None = None,
          overrides: list[str] | None = None, force: bool = False, holdout: Holdout | None = None,
          notice: Notice = _quiet, on_progress: OnProgress = _no_progress) -> TrainResult:
    """Train on the task's training images with STDP, then label and test (learning off).

    With ``resume``, continue the checkpoint's run from the epoch and position it stopped
    at; the result equals that of a run never interrupted. With ``holdout``, train on the
    training images less a validation part and score on that part instead of the test
    images (``TrainResult.held_out`` says "validation").
    """
    from snnctl import data, engine as engines
    from snnctl import network as net
    from snnctl.logs import RunLog

    overrides = overrides or []
    if resume is not None:
        previous = ckpt.load(resume)
        config = _resume_config(previous, config, overrides)
        run_dir = Path(resume).parent if out is None else _run_dir(config, out, force)
        if previous.progress.finished and config.epochs <= previous.progress.epoch:
            notice(f"{resume}: the run had finished its {previous.progress.epoch} epochs: labelling and testing "
                   f"again (to train more: --set epochs={previous.progress.epoch + 1})")
        tensors, progress = previous.tensors, previous.progress
        running = _RunningAccuracy(config, previous.window, previous.labels)
    else:
        if config is None:
            raise ConfigError("train: a parameter file or --resume is required")
        config = cfg.apply_overrides(config, overrides)
        run_dir = _run_dir(config, out, force)
        tensors, progress = net.initial_tensors(config), ckpt.Progress()
        running = _RunningAccuracy(config, None, None)

    engine = engines.make_engine(config, tensors)
    splits = data.load_splits(config, notice) if holdout is None else holdout_splits(config, holdout, notice)
    held_out = "test" if holdout is None else "validation"
    if config.task == "MAMMO":
        data.write_manifest(run_dir, splits)
    resumed_at = progress.samples_seen if resume is not None else None
    with RunLog(run_dir, config, resumed_at) as run_log, _stop_on_signals() as stop:
        run = _Training(config, run_dir, engine, splits, progress, running, run_log, stop, held_out)
        trained_now, train_seconds = run.learn(on_progress)
        label_state, train_accuracy, test_accuracy = run.label_and_test(on_progress)
        progress.finished = True
        run.save(label_state, {f"{held_out}_accuracy": asdict(test_accuracy), "train_accuracy": asdict(train_accuracy)})
        run_log.weights(progress.samples_seen, engine.sync().weights)
        run_log.hparams({f"hparam/{held_out}_accuracy_all_activity": test_accuracy.all_activity,
                         f"hparam/{held_out}_accuracy_proportion_weighting": test_accuracy.proportion_weighting})
    return TrainResult(
        run_dir=str(run_dir), checkpoint=str(run.checkpoint_path), test_accuracy=test_accuracy,
        train_accuracy=train_accuracy, samples_seen=progress.samples_seen, epochs=config.epochs,
        samples_per_second=trained_now / max(train_seconds, 1e-9), train_seconds=train_seconds, n_train=len(splits.train),
        n_test=len(splits.test), data=splits.origin, engine=type(engine).__name__, device=str(engine.device),
        held_out=held_out,
    )


def _next_multiple(value: int, step: int) -> int:
    return (value // step + 1) * step if step else 0


# ---------------------------------------------------------------- checkpoint commands


def _data_config(stored: Config, task: str | None, data_dir: str | None, reduction: str | None,
                 device: str | None, notice: Notice) -> Config:
    """The checkpoint's parameters, pointed at other data, another readout or another device if
    asked. A run trained on a GPU runs on ``auto`` where there is none, so it evaluates anywhere."""
    from snnctl import engine as engines

    here = engines.runnable_device(stored.device)
    if device is None and here != stored.device:
        notice(f"trained with device: {stored.device}, and there is no CUDA device here: running on device {here}")
    changes: dict = {"device": device or here}
    if task is not None:
        changes["task"] = task
    if data_dir is not None:
        changes["data_dir"] = str(data_dir)
    if reduction is not None:
        changes["reduction"] = reduction
    return stored.replace(**changes)


def _load_split(config: Config, split: str, n: int | None, run_dir: Path, same_data: bool,
                notice: Notice) -> "tuple[data.Dataset, data.Splits]":
    """Images of ``split`` ("train", "test" or "all"); for the checkpoint's own image
    folders, exactly the held-out images of its run (the manifest in its run directory)."""
    from snnctl import data

    splits = None
    if config.task == "MAMMO" and same_data:
        splits = data.load_manifest(run_dir, config, notice)
    if splits is None:
        splits = data.load_splits(config, notice, check_classes=False)
    if split == "train":
        dataset = splits.train
    elif split == "test":
        dataset = splits.test
    else:
        dataset = data.concatenate(splits.train, splits.test)
    if n is not None and n > len(dataset):
        notice(f"--n {n}: the {split} images number {len(dataset)} (with the checkpoint's n_train and n_test); "
               f"using all of them")
    return data.limit(dataset, n, subset_seed(config.seed, split)), splits


@dataclass
class EvaluationResult:
    checkpoint: str
    task: str
    split: str
    reduction: str
    n_samples: int
    classes: list[str]
    accuracy: Accuracy
    balanced_accuracy: float
    per_class: "list[labels.ClassMetrics]"
    confusion: list[list[int]]  # [true][predicted], all-activity vote
    no_prediction: int  # images that made no assigned neuron fire
    samples_per_second: float
    # Two classes: the second class (in sorted folder order) is the positive one.
    sensitivity: float | None = None
    specificity: float | None = None
    positive_class: str | None = None
    predictions_file: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _check_classes(found: list[str], expected: list[str], source: str) -> None:
    if found != expected:
        raise SnnctlError(
            f"{source}: the data's classes ({', '.join(found)}) are not the checkpoint's labels "
            f"({', '.join(expected)}); relabel the checkpoint on this data first: snnctl assign"
        )


def _write_predictions(path: Path, dataset: "data.Dataset", votes: "labels.Votes", class_names: list[str]) -> None:
    """One CSV row per image: source, true class, both predictions, all-activity class scores."""
    import csv
    import io

    name = lambda index: class_names[index] if index >= 0 else ""  # noqa: E731
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["source", "label", "all_activity", "proportion_weighting", *[f"score_{c}" for c in class_names]])
    for i in range(len(dataset)):
        writer.writerow([dataset.source(i), name(int(dataset.labels[i])), name(int(votes.all_activity[i])),
                         name(int(votes.proportion_weighting[i])), *[f"{s:.6g}" for s in votes.scores[i].tolist()]])
    write_atomic(path, text.getvalue().encode())


def _refuse_existing(path: Path | None, force: bool) -> None:
    if path is None:
        return
    if path.exists() and not force:
        raise ConfigError(f"{path}: exists (use --force to replace it)")
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent}: no such directory")


def evaluate(checkpoint_path: Path, *, task: str | None = None, data_dir: str | None = None, split: str = "test",
             n: int | None = None, reduction: str | None = None, predictions: Path | None = None,
             force: bool = False, device: str | None = None, notice: Notice = _quiet,
             on_progress: OnProgress = _no_progress) -> EvaluationResult:
    """Classify images with a trained checkpoint, learning off: both votes and the metrics.

    Defaults come from the checkpoint: its task, data and held-out split, so right after
    training this reproduces the test accuracy that ``train`` reported.
    """
    from snnctl import engine as engines, labels

    _refuse_existing(predictions, force)
    stored = ckpt.load(checkpoint_path)
    if stored.labels is None:
        raise SnnctlError(f"{checkpoint_path}: checkpoint has no label state; run snnctl assign first")
    if not stored.progress.finished and "labels" not in stored.info:  # info["labels"]: made by assign
        notice(f"{checkpoint_path}: a run in progress ({stored.progress.samples_seen} training images seen), "
               f"labelled from its last {stored.config.update_interval} of them; finish it with "
               f"snnctl train --resume {checkpoint_path}")
    config = _data_config(stored.config, task, data_dir, reduction, device, notice)
    same_data = (config.task, config.data_dir) == (stored.config.task, stored.config.data_dir)
    dataset, _ = _load_split(config, split, n, Path(checkpoint_path).parent, same_data, notice)
    _check_classes(dataset.class_names, stored.class_names, config.data_dir)
    engine = engines.make_engine(config, stored.tensors)
    started = time.perf_counter()
    counts = spike_counts(engine, config, dataset.images, split, "evaluate", on_progress)
    rate = len(dataset) / max(time.perf_counter() - started, 1e-9)
    n_classes = len(stored.class_names)
    accuracy, votes = _score(counts, dataset.labels, stored.labels, n_classes, config.reduction)
    per_class = labels.per_class(votes.all_activity, dataset.labels, stored.class_names)
    result = EvaluationResult(
        checkpoint=str(checkpoint_path), task=config.task, split=split, reduction=config.reduction,
        n_samples=len(dataset), classes=stored.class_names, accuracy=accuracy,
        balanced_accuracy=labels.balanced_accuracy(votes.all_activity, dataset.labels, n_classes),
        per_class=per_class,
        confusion=labels.confusion_matrix(votes.all_activity, dataset.labels, n_classes).tolist(),
        no_prediction=int((votes.all_activity < 0).sum()), samples_per_second=rate,
    )
    if n_classes == 2:
        result.positive_class = stored.class_names[1]
        result.sensitivity, result.specificity = per_class[1].recall, per_class[0].recall
    if predictions is not None:
        _write_predictions(predictions, dataset, votes, stored.class_names)
        result.predictions_file = str(predictions)
    return result


@dataclass
class AssignResult:
    checkpoint: str
    output: str
    task: str
    reduction: str
    label_split: str
    n_label_samples: int
    classes: list[str]
    neurons_per_class: list[int]
    unassigned: int
    changed: int | None  # neurons whose class changed (None when the classes differ)
    old_accuracy: Accuracy | None  # on the evaluation split, with the previous labels and readout
    new_accuracy: Accuracy  # on the evaluation split, with the new labels
    eval_split: str
    n_eval_samples: int

    def to_dict(self) -> dict:
        return asdict(self)


def _relabeled_path(checkpoint_path: Path, config: Config) -> Path:
    return checkpoint_path.with_name(f"{checkpoint_path.stem}.{config.task.lower()}-{config.reduction}.safetensors")


def assign(checkpoint_path: Path, *, reduction: str | None = None, task: str | None = None,
           data_dir: str | None = None, split: str = "train", n: int | None = None, output: Path | None = None,
           in_place: bool = False, force: bool = False, device: str | None = None, notice: Notice = _quiet,
           on_progress: OnProgress = _no_progress) -> AssignResult:
    """Recompute which class each excitatory neuron stands for, from labelled images
    (learning off), and store the new label state in a new checkpoint.

    On another task (a layer trained on MNIST, assigned on a MAMMO folder) the new
    checkpoint takes that task's class names, data and readout, ready to evaluate there.
    The input file is only replaced (atomically) with ``in_place``.
    """
    from snnctl import engine as engines, labels

    checkpoint_path = Path(checkpoint_path)
    stored = ckpt.load(checkpoint_path)
    config = _data_config(stored.config, task, data_dir, reduction, device, notice)
    if in_place:
        output = checkpoint_path
    else:
        output = Path(output) if output is not None else _relabeled_path(checkpoint_path, config)
        if output.resolve() == checkpoint_path.resolve():
            raise ConfigError(f"{output}: is the input checkpoint; use --in-place to replace it")
        _refuse_existing(output, force)
    same_data = (config.task, config.data_dir) == (stored.config.task, stored.config.data_dir)
    label_set, splits = _load_split(config, split, n, checkpoint_path.parent, same_data, notice)
    eval_set = splits.test
    class_names = label_set.class_names
    config = config.replace(n_classes=len(class_names))
    engine = engines.make_engine(config, stored.tensors)
    label_counts = spike_counts(engine, config, label_set.images, split, "label", on_progress)
    new_state = labels.assign(label_counts, label_set.labels, len(class_names), config.reduction)
    eval_counts = spike_counts(engine, config, eval_set.images, "test", "evaluate", on_progress)
    new_accuracy, _ = _score(eval_counts, eval_set.labels, new_state, len(class_names), config.reduction)
    old_accuracy = changed = None
    if stored.labels is not None and class_names == stored.class_names:
        # the old labels vote with the readout they were made for, as evaluate scored them
        old_accuracy, _ = _score(eval_counts, eval_set.labels, stored.labels, len(class_names),
                                 stored.config.reduction)
        changed = int((stored.labels.assignments != new_state.assignments).sum())
    info = {**stored.info, "labels": {"from": str(checkpoint_path), "split": split, "task": config.task,
                                      "data_dir": config.data_dir, "reduction": config.reduction,
                                      "n_samples": len(label_set)}}
    # the device it ran on now is not the training's
    relabelled = config.replace(device=stored.config.device)
    ckpt.save(ckpt.Checkpoint(relabelled, stored.tensors, class_names, new_state, stored.progress, None, info), output)
    return AssignResult(
        checkpoint=str(checkpoint_path), output=str(output), task=config.task, reduction=config.reduction,
        label_split=split, n_label_samples=len(label_set), classes=class_names,
        neurons_per_class=new_state.neurons_per_class(len(class_names)),
        unassigned=int((new_state.assignments < 0).sum()), changed=changed, old_accuracy=old_accuracy,
        new_accuracy=new_accuracy, eval_split="test", n_eval_samples=len(eval_set),
    )


@dataclass
class TensorSummary:
    name: str
    shape: list[int]
    dtype: str
    mean: float
    std: float
    min: float
    max: float


@dataclass
class InspectResult:
    checkpoint: str
    format_version: int
    model: str
    parameters: dict
    classes: list[str]
    samples_seen: int
    epochs: int
    finished: bool
    has_labels: bool
    neurons_per_class: dict[str, int] | None
    unassigned: int | None
    tensors: list[TensorSummary]
    info: dict
    versions: dict
    created: str

    def to_dict(self) -> dict:
        return asdict(self)


def inspect(checkpoint_path: Path) -> InspectResult:
    """What a checkpoint holds, read without torch so that it answers at once."""
    stored = ckpt.read(checkpoint_path)
    summaries = []
    for name in sorted(stored.arrays):
        array = stored.arrays[name].astype(np.float64)
        summaries.append(TensorSummary(name, list(array.shape), str(stored.arrays[name].dtype),
                                       float(array.mean()) if array.size else 0.0,
                                       float(array.std()) if array.size else 0.0,
                                       float(array.min()) if array.size else 0.0,
                                       float(array.max()) if array.size else 0.0))
    assignments = stored.arrays.get("labels.assignments")
    per_class = unassigned = None
    if assignments is not None:
        counts = np.bincount(assignments[assignments >= 0], minlength=len(stored.class_names))
        per_class = dict(zip(stored.class_names, counts.tolist()))
        unassigned = int((assignments < 0).sum())
    return InspectResult(
        checkpoint=str(checkpoint_path), format_version=stored.format_version, model=stored.config.model,
        parameters=stored.config.to_dict(), classes=stored.class_names,
        samples_seen=stored.progress.samples_seen, epochs=stored.progress.epoch, finished=stored.progress.finished,
        has_labels=assignments is not None, neurons_per_class=per_class, unassigned=unassigned,
        tensors=summaries, info=stored.info, versions=stored.versions, created=stored.created,
    )


# ---------------------------------------------------------------- visualize and export

FIGURES = ("weights", "assignments", "theta", "confusion", "spikes", "curves")


@dataclass
class FigureResult:
    figure: str
    source: str
    output: str
    format: str  # png, svg or pdf
    width: int  # pixels (a png's size; svg and pdf at 100 dpi)
    height: int
    title: str

    def to_dict(self) -> dict:
        return asdict(self)


def _checkpoint_and_run_dir(source: Path) -> tuple[Path, Path]:
    """A checkpoint file, or a run directory holding one (``ckpt.CHECKPOINT_NAME``)."""
    source = Path(source)
    if source.is_dir():
        return source / ckpt.CHECKPOINT_NAME, source
    if not source.exists():
        raise SnnctlError(f"{source}: no such checkpoint or run directory")
    return source, source.parent


def _output_file(path: Path, force: bool) -> Path:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, give a file name")
    _refuse_existing(path, force)
    return path


def _require_labels(stored: ckpt.Checkpoint, path: Path, what: str) -> "labels.LabelState":
    if stored.labels is None:
        raise SnnctlError(f"{path}: checkpoint has no label state, which {what} needs; run snnctl assign first")
    return stored.labels


def _spikes_figure(stored: ckpt.Checkpoint, run_dir: Path, index: int, device: str | None,
                   notice: Notice) -> "Figure":
    """One held-out image, its Poisson input and the excitatory raster, learning off."""
    from snnctl import engine as engines, labels, plots

    config = _data_config(stored.config, None, None, None, device, notice)
    dataset, _ = _load_split(config, "test", None, run_dir, True, notice)
    if not 0 <= index < len(dataset):
        raise ConfigError(f"--index: {index} is out of range: the test split has {len(dataset)} images (0..{len(dataset) - 1})")
    image = dataset.images[index:index + 1]
    seed = presentation_seed(config.seed, "test", index)
    engine = engines.make_engine(config, stored.tensors)
    input_spikes = engines.encode(config, image.float() * engines.rate_per_unit(config, image), seed, engine.device)
    shown = engine.present_spikes(input_spikes, learn=False, seed=seed, record=True)
    input_spikes = input_spikes.cpu()
    predicted = "no label state"
    if stored.labels is not None:
        vote = int(labels.vote(shown.counts, stored.labels, len(stored.class_names), config.reduction).all_activity[0])
        predicted = stored.class_names[vote] if vote >= 0 else "none (no assigned neuron fired)"
    true = dataset.class_names[int(dataset.labels[index])]
    title = f"test image {dataset.source(index)}: true class {true}, predicted {predicted} (all-activity vote)"
    return plots.spikes_figure(image[0], input_spikes[:, 0], shown.spikes[:, 0], config.input_size, config.dt, title)


def visualize(what: str, source: Path, output: Path | None = None, force: bool = False, *, titles: bool = False,
              index: int = 0, device: str | None = None, notice: Notice = _quiet,
              on_progress: OnProgress = _no_progress) -> FigureResult:
    """Draw figure ``what`` (one of :data:`FIGURES`) of a checkpoint or run directory.

    The format follows the output's extension (png, svg, pdf); without ``output`` the
    file is CKPT-WHAT.png next to the checkpoint. ``titles``: write each weight tile's
    class; ``index``: the test image of the spikes figure; ``device``: for the figures
    that run the network (confusion, spikes).
    """
    from snnctl import plots

    if what not in FIGURES:
        raise ConfigError(f"visualize: {what!r} is not one of {', '.join(FIGURES)}")
    checkpoint_path, run_dir = _checkpoint_and_run_dir(source)
    if output is None:
        suffix = f"-{index}" if what == "spikes" else ""
        output = checkpoint_path.with_name(f"{checkpoint_path.stem}-{what}{suffix}.png")
    image_format = plots.check_suffix(Path(output))
    output = _output_file(output, force)
    if what == "curves":
        scalars = plots.read_scalars(run_dir)
        if not scalars:
            raise SnnctlError(f"{run_dir}: no TensorBoard accuracy or throughput scalars found (snnctl train logs "
                              f"them from its second update_interval of training images on; a shorter run has none)")
        figure = plots.curves_figure(scalars, f"training curves of {run_dir}")
    elif what == "confusion":
        result = evaluate(checkpoint_path, device=device, notice=notice, on_progress=on_progress)
        figure = plots.confusion_figure(
            result.confusion, result.classes,
            f"{result.n_samples} {result.split} images, all-activity vote: accuracy {result.accuracy.all_activity:.1%}")
    else:
        stored = ckpt.load(checkpoint_path)
        if what == "weights":
            assignments = _require_labels(stored, checkpoint_path, "--titles").assignments if titles else None
            figure = plots.weights_figure(stored.tensors.weights, stored.config.input_size, assignments,
                                          stored.class_names)
        elif what == "assignments":
            figure = plots.assignments_figure(_require_labels(stored, checkpoint_path, "the assignments figure")
                                              .assignments, stored.class_names)
        elif what == "theta":
            figure = plots.theta_figure(stored.tensors.theta, stored.config.exc_thresh)
        else:
            figure = _spikes_figure(stored, run_dir, index, device, notice)
    write_atomic(output, plots.render(figure, image_format))
    width, height = (round(side * plots.DPI) for side in figure.get_size_inches())
    return FigureResult(what, str(source), str(output), image_format, width, height, figure.get_suptitle())


@dataclass
class ExportResult:
    checkpoint: str
    format: str
    output: str
    bytes: int
    tensors: list[str]  # the checkpoint tensors the file holds
    not_carried: list[str]  # what the format cannot hold (see docs/export.md)

    def to_dict(self) -> dict:
        return asdict(self)


def export(checkpoint_path: Path, fmt: str, output: Path, force: bool = False) -> ExportResult:
    """Write a checkpoint's network in another format: npz, torch, bindsnet or nir
    (:mod:`snnctl.export`, docs/export.md)."""
    from snnctl import export as formats

    formats.check_format(fmt)
    output = _output_file(output, force)
    exported = formats.export(ckpt.load(checkpoint_path), fmt)
    write_atomic(output, exported.data)
    return ExportResult(str(checkpoint_path), fmt, str(output), len(exported.data), exported.tensors, exported.notes)


# ---------------------------------------------------------------- sweep


def sweep(config: Config | None = None, space: "Path | str | sweeps.Space | None" = None, *,
          trials: int | None = None, out: Path | None = None, resume: Path | None = None, address: str | None = None,
          notice: Notice = _quiet, on_progress: OnProgress = _no_progress) -> "sweeps.SweepResult":
    """Search hyperparameters on Ray Tune (:mod:`snnctl.sweep`, docs/sweep.md): trials are
    training runs scored on a validation split of the training images; the best
    configuration is then trained on the full training split and tested. ``address``: a
    Ray cluster ("auto", "ray://HOST:PORT"); by default Ray starts on this machine.
    ``resume``: continue the interrupted sweep in that directory."""
    from snnctl import sweep as sweeps

    return sweeps.run(config, space, trials=trials, out=out, resume=resume, address=address, notice=notice,
                      on_progress=on_progress)
