"""``train``: STDP on the training images, then labels and a test, learning off; resume.

The loop (:class:`_Training`) hands each batch's spike counts to small collaborators,
each with one job: :class:`~snnctl.service.intervals.RunningAccuracy` (the original's
training-time estimate), :class:`~snnctl.service.checkpointer.Checkpointer` (checkpoint,
status.json, stopping on a signal) and :class:`~snnctl.service.intervals.IntervalLog`
(TensorBoard scalars per measured interval).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from snnctl import checkpoint as ckpt
from snnctl.config import Config
from snnctl.readout.activity import LayerActivity
from snnctl.seeds import presentation_seeds
import snnctl.service.readouts as readouts
from snnctl.service.averaging import WeightAverage
from snnctl.service.checkpointer import Checkpointer
from snnctl.service.checkpoints import EvaluationResult, evaluation_result
from snnctl.service.common import (STATUS_NAME, Accuracy, Interrupted, Notice, OnProgress, ProgressUpdate, Result,
                                   layer_activity_noticed, mark_failed, no_progress, quiet, score,
                                   spike_counts, stop_on_signals)
from snnctl.service.intervals import IntervalLog, RunningAccuracy
from snnctl.service.lock import claim_directory, holds_nothing
from snnctl.service.run_figures import FIGURES_DIR, confusion_title, write_run_figures
from snnctl.service.run_start import RunStart, run_images, start_run
from snnctl.service.validation import Validation

if TYPE_CHECKING:
    import torch

    from snnctl import data
    from snnctl import engine as engines
    from snnctl.logs import RunLog
    from snnctl.readout import LinearReadout, vote


@dataclass
class TrainResult(Result):
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
    # Which images test_accuracy and n_test measure: "test", or with a Validation the
    # "validation" images set aside from the training images.
    held_out: str = "test"
    # The training images this call presented (a resumed run: those after the checkpoint),
    # in train_seconds: what samples_per_second counts.
    images_trained: int = 0
    # The vote, the linear readout and the pixel baseline on the held-out images.
    scores: readouts.Scores | None = None
    # How the trained layer spiked on the training images (silent neurons, neurons in lockstep).
    activity: LayerActivity | None = None
    # What `evaluate` of the checkpoint reports on the held-out images, from this run's own
    # test (a study's fold uses it); left out of to_dict, whose test_accuracy and scores say it.
    evaluation: "EvaluationResult | None" = None

    def to_dict(self) -> dict:
        document = super().to_dict()
        del document["evaluation"]
        return document


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` (None: unchanged) while in force."""
    import torch

    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _Training:
    """One training run's loop over the engine; its collaborators keep the files."""

    def __init__(self, config: Config, engine: "engines.Engine", splits: "data.Splits", progress: ckpt.Progress,
                 running: RunningAccuracy, saver: Checkpointer, run_log: "RunLog", held_out: str) -> None:
        self.config, self.engine, self.progress, self.running = config, engine, progress, running
        self.train_set, self.test_set = splits.train, splits.test
        self.saver, self.run_log, self.log = saver, run_log, IntervalLog(run_log)
        self.held_out = held_out
        self.average = saver.average  # the one the saves keep the sum of

    def learn(self, on_progress: OnProgress) -> tuple[int, float]:
        """The epochs of STDP from where the run stands; returns (images, seconds). With
        ``average_weights``, the network keeps the averaged weights once the last epoch is done."""
        from snnctl import data

        with torch_threads(None if self.engine.runs_on_torch else 1):
            learned = self._learn_epochs(data.images_per_epoch(self.train_set, self.config), on_progress)
        if self.average is not None and self.average.total is not None and self.progress.epoch == self.config.epochs:
            self.engine.set_weights(self.average.mean())
            self.average.total = None
        return learned

    def _learn_epochs(self, epoch_length: int, on_progress: OnProgress) -> tuple[int, float]:
        from snnctl import data

        config, progress = self.config, self.progress
        started, trained_now = time.perf_counter(), 0
        while progress.epoch < config.epochs:
            order = data.training_order(self.train_set, config, progress.epoch)
            self.engine.set_learning_rates(*config.learning_rates(progress.epoch))
            while progress.position < len(order):
                chunk = order[progress.position:progress.position + self._chunk_length(len(order))]
                scored = self._present(chunk)
                trained_now += len(chunk)
                rate = trained_now / max(time.perf_counter() - started, 1e-9)
                if scored is not None:
                    self.log.measured(progress.samples_seen, scored, rate)
                latest = self.running.latest.all_activity if self.running.latest else None
                on_progress(ProgressUpdate("train", progress.epoch * epoch_length + progress.position,
                                           config.epochs * epoch_length, rate, latest, scored is not None))
                if self.saver.save_if_due():
                    self.run_log.weights(progress.samples_seen, self.engine.sync().weights)
                self.saver.stop_if_asked()
            progress.epoch += 1
            progress.position = 0
        return trained_now, time.perf_counter() - started

    def _chunk_length(self, epoch_length: int) -> int:
        """Images of the next engine call. At batch_size 1, a chunk of them: up to the first
        image that ends the epoch, completes an update_interval or makes a checkpoint due,
        and at most the engine's ``images_per_call``, so that each measurement, checkpoint and stop on a signal
        falls where it would image by image. A larger batch is one call by itself."""
        config, progress = self.config, self.progress
        limits = [config.batch_size, epoch_length - progress.position]
        if config.batch_size == 1:
            limits = [self.engine.images_per_call, config.update_interval - self.running.size, epoch_length - progress.position]
            if config.checkpoint_every:
                limits.append(self.saver.next_save - progress.samples_seen)
            if self._averaging():
                limits.append(self.average.next_place(progress.position) - progress.position)
        return max(1, min(limits))

    def _present(self, chunk: "torch.Tensor") -> Accuracy | None:
        """Consecutive batches with learning on; the running accuracy if they completed an interval."""
        import numpy as np

        config, progress = self.config, self.progress
        starts = progress.position + np.arange(0, len(chunk), config.batch_size)
        seeds = presentation_seeds(config.seed, "train", (progress.epoch,), starts)
        images = self._training_input(chunk)
        tick = time.perf_counter()
        counts = self.engine.present_sequence(images, True, seeds)
        self.log.simulated += time.perf_counter() - tick
        progress.position += len(chunk)
        progress.samples_seen += len(chunk)
        if self._averaging():
            self.average.add(lambda: self.engine.sync().weights, progress.position - len(chunk), progress.position)
        return self.running.add(counts, self.train_set.labels[chunk])

    def _averaging(self) -> bool:
        """Whether the weights are being averaged: ``average_weights``, in the final epoch."""
        return self.average is not None and self.progress.epoch == self.config.epochs - 1

    def _training_input(self, chunk: "torch.Tensor") -> "torch.Tensor":
        """The images of ``chunk``; with ``patch_size`` a random window of each, drawn by
        its place in the epoch."""
        import numpy as np

        from snnctl.data import windows

        config, progress = self.config, self.progress
        images = self.train_set.images[chunk]
        if not config.patch_size:
            return images
        seeds = presentation_seeds(config.seed, "window", (progress.epoch,), progress.position + np.arange(len(chunk)))
        return windows.random_windows(images, config.input_size, config.patch_size, seeds)

    def label_and_test(self, on_progress: OnProgress, notice: Notice) -> "_Labelled":
        """Labels and the linear readout from the training images only, learning off; then
        the held-out images, scored by both readouts and the pixel baseline.

        A stop here keeps the trained network: resuming labels and tests afresh."""
        from snnctl.readout import vote

        def progress_or_stop(update: ProgressUpdate) -> None:
            on_progress(update)
            self.saver.stop_if_asked()

        config, train_set, test_set = self.config, self.train_set, self.test_set
        train_counts = spike_counts(self.engine, config, train_set.images, "label", "label", progress_or_stop)
        activity = layer_activity_noticed(train_counts, "the training images", notice)
        state = vote.assign(train_counts, train_set.labels, config.n_classes, config.reduction)
        train_accuracy, _ = score(train_counts, train_set.labels, state, config.n_classes, config.reduction)
        rows = readouts.fit_rows(train_set.labels, config)
        weights = self.engine.sync().weights  # the BindsNET engine keeps its own on the device
        groups = readouts.fit_groups(train_set, rows)
        linear = readouts.fit_network_readout(config, weights, train_set.images[rows], train_counts[rows],
                                              train_set.labels[rows], config.n_classes, notice, groups)
        baseline = readouts.fit_pixel_baseline(config, train_set.images[rows], train_set.labels[rows],
                                               config.n_classes, notice, groups)
        tested = time.perf_counter()
        test_counts = spike_counts(self.engine, config, test_set.images, self.held_out, self.held_out,
                                   progress_or_stop)
        test_rate = len(test_set) / max(time.perf_counter() - tested, 1e-9)
        tested = readouts.tested_on(config, train_set.class_names, state, linear, weights, test_set.images,
                                    test_counts, test_set.labels)
        predicted = tested.predictions()
        return _Labelled(state, linear, train_accuracy, tested.accuracy, tested.scores_with(baseline, len(rows), groups),
                         vote.confusion_matrix(predicted, test_set.labels, config.n_classes),
                         vote.accuracy(predicted, test_set.labels), predicted, test_rate, activity)


@dataclass
class _Labelled:
    """What labelling and testing a trained layer gives."""

    state: "vote.LabelState"
    linear: "LinearReadout | None"
    train_accuracy: Accuracy
    test_accuracy: Accuracy
    scores: readouts.Scores
    # [true, predicted] of the held-out images and the accuracy, by the run's readout
    confusion: "torch.Tensor"
    accuracy: float
    predicted: "torch.Tensor"  # each held-out image's class by the run's readout (-1: no vote)
    test_rate: float  # held-out images per second, learning off
    activity: LayerActivity  # how the layer spiked on the training images


def _label_keeping_the_network(run: _Training, saver: Checkpointer, on_progress: OnProgress,
                               notice: Notice) -> _Labelled:
    """``run.label_and_test``; when an error ends it, the trained network is saved first (a
    run with ``checkpoint_every: 0`` had saved nothing yet), so that ``--resume`` labels and
    tests again instead of training again. The error stays the run's."""
    try:
        return run.label_and_test(on_progress, notice)
    except Interrupted:
        raise  # saved where it stopped
    except BaseException:
        try:
            saver.save(run.running.state)
        except Exception:  # a full disk, say: the error that ended the run is the one to report
            pass
        else:
            notice(f"the trained network is saved in {saver.path}: snnctl train --resume {saver.path} labels and "
                   f"tests it again")
        raise


def _hparams(scores: readouts.Scores, accuracy: Accuracy, held_out: str) -> dict[str, float]:
    """TensorBoard's hparams of a finished run: both votes, and each readout's and the
    baseline's balanced accuracy and AUC on the held-out images."""
    metrics = {f"hparam/{held_out}_accuracy_all_activity": accuracy.all_activity,
               f"hparam/{held_out}_accuracy_proportion_weighting": accuracy.proportion_weighting}
    for name in ("vote", "linear", "baseline"):
        report = getattr(scores, name)
        if report is not None:
            metrics[f"hparam/{held_out}_{name}_accuracy"] = report.accuracy
            metrics[f"hparam/{held_out}_{name}_balanced_accuracy"] = report.balanced_accuracy
            if report.auc is not None:
                metrics[f"hparam/{held_out}_{name}_auc"] = report.auc
    return metrics


def train_in(run_dir: Path, config: Config, **options: Any) -> TrainResult:
    """Train ``config`` in ``run_dir``, a directory that a sweep or study owns, or continue
    the run whose checkpoint is already there (an interrupted trial, fold or final run);
    ``options`` as for :func:`train`."""
    checkpoint = Path(run_dir) / ckpt.CHECKPOINT_NAME
    if checkpoint.exists():
        return train(config, resume=checkpoint, **options)
    return train(config, out=run_dir, force=True, **options)


def _split_facts(splits: "data.Splits") -> dict:
    """What the checkpoint keeps of how the images were split: the patient groups on each
    side and the fold of a study (``inspect`` shows them)."""
    manifest = splits.manifest or {}
    return {key: manifest[key] for key in ("groups", "folds", "fold") if key in manifest}


def train(config: Config | None = None, *, out: Path | None = None, resume: Path | None = None,
          overrides: list[str] | None = None, device: str | None = None, force: bool = False,
          validation: Validation | None = None, notice: Notice = quiet,
          on_progress: OnProgress = no_progress) -> TrainResult:
    """Train on the task's training images with STDP (Diehl & Cook 2015), then label and
    test (learning off).

    With ``resume`` (a checkpoint, or its run directory), continue the checkpoint's run from
    the epoch and position it stopped at; the result equals that of a run never interrupted. ``device`` overrides the
    parameters' (also on resume). With ``validation``, train on the training images less
    a validation part and score on that part instead of the test images
    (``TrainResult.held_out`` says "validation").

    The run directory is held (:func:`snnctl.service.lock.claim_directory`) from before
    the data is loaded until the run ends; an error that ends the run (loading the data
    included) leaves status.json "failed", with the error, unless nothing was written yet.
    """
    from snnctl import engine as engines

    resume = ckpt.locate(resume) if resume is not None else None
    start = start_run(config, out, resume, overrides or [], device, force, notice)
    with claim_directory(start.run_dir, notice, empty=start.empty):
        try:
            engine = engines.make_engine(start.config, start.tensors)
            splits = run_images(start.config, resume, validation, notice)
        except BaseException as exc:
            # a run refused for its data has written nothing: no new directory is left behind, and
            # the run that --force would have replaced stays as it was, its status included
            if start.own_directory:
                mark_failed(start.run_dir, start.checkpoint, str(exc) or type(exc).__name__)
            raise
        try:
            return _run(start, engine, splits, "test" if validation is None else "validation", on_progress, notice)
        except Interrupted:
            raise
        except BaseException as exc:
            if not holds_nothing(start.run_dir):
                mark_failed(start.run_dir, start.checkpoint, str(exc) or type(exc).__name__)
            raise


def _remove_replaced_run(run_dir: Path) -> None:
    """The files a run writes, left in ``run_dir`` by the run that ``train --force`` replaces:
    removed once the new run's parameters and data are accepted (a refused run leaves them),
    so that TensorBoard, status.json, the figures and a recorded split are the new run's
    alone. Other files stay."""
    from snnctl import data

    written = [ckpt.CHECKPOINT_NAME, STATUS_NAME, data.MANIFEST_NAME, data.SPLIT_IMAGES_NAME]
    replaced = [run_dir / name for name in written] + [*run_dir.glob("events.out.tfevents.*"),
                                                        *(run_dir / FIGURES_DIR).glob("*")]
    for path in replaced:
        if path.is_file():
            path.unlink()


def _run(start: RunStart, engine: "engines.Engine", splits: "data.Splits", held_out: str,
         on_progress: OnProgress, notice: Notice) -> TrainResult:
    """Train, label and test in the claimed run directory, saving as it goes."""
    from snnctl import data
    from snnctl.logs import RunLog

    config, progress = start.config, start.progress
    if not start.own_directory:
        _remove_replaced_run(start.run_dir)
    if config.task == "MAMMO":
        data.write_manifest(start.run_dir, splits)
    average = WeightAverage.of(config, splits.train, start.weights_sum, progress.epoch)
    # signals are noted until the log is closed: a second Ctrl-C cannot cut its last write short
    with stop_on_signals() as stop, RunLog(start.run_dir, config, start.resumed_at) as run_log, \
            Checkpointer(config, start.checkpoint, engine, splits.train.class_names, progress, start.running,
                         {"data": splits.origin, **_split_facts(splits)}, stop, average) as saver:
        run = _Training(config, engine, splits, progress, start.running, saver, run_log, held_out)
        trained_now, train_seconds = run.learn(on_progress)
        labelled = _label_keeping_the_network(run, saver, on_progress, notice)
        test_accuracy = labelled.test_accuracy
        progress.finished = True
        saver.save(labelled.state, {f"{held_out}_accuracy": asdict(test_accuracy),
                                    "train_accuracy": asdict(labelled.train_accuracy),
                                    f"{held_out}_scores": labelled.scores.to_dict()}, labelled.linear)
        weights = engine.sync().weights
        run_log.weights(progress.samples_seen, weights)
        write_run_figures(run_log, progress.samples_seen, weights, labelled.state.assignments, splits.train.class_names,
                          labelled.confusion, confusion_title(len(splits.test), held_out, labelled.accuracy,
                                                              config.readout))
        run_log.hparams(_hparams(labelled.scores, test_accuracy, held_out))
    return TrainResult(
        run_dir=str(start.run_dir), checkpoint=str(saver.path), test_accuracy=test_accuracy,
        train_accuracy=labelled.train_accuracy, samples_seen=progress.samples_seen, epochs=config.epochs,
        samples_per_second=trained_now / max(train_seconds, 1e-9), train_seconds=train_seconds,
        n_train=len(splits.train), n_test=len(splits.test), data=splits.origin, engine=type(engine).__name__,
        device=str(engine.device), held_out=held_out, images_trained=trained_now, scores=labelled.scores,
        activity=labelled.activity,
        evaluation=evaluation_result(str(saver.path), config, held_out, splits.train.class_names, splits.test.labels,
                                     labelled.predicted, test_accuracy, labelled.scores, labelled.test_rate),
    )
