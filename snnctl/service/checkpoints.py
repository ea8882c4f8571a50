"""Running a checkpoint on data: ``evaluate``, and what it shares with ``assign``
(:mod:`snnctl.service.relabel`) and the figures: the data config of a checkpoint
(:func:`data_config`), loading its split (:func:`load_split`), both at once with its engine
(:func:`on_data`), and its readouts on a split (:func:`classify`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from snnctl import checkpoint as ckpt
from snnctl.config import DEFAULTS, Config
from snnctl.errors import ConfigError, SnnctlError
from snnctl.files import write_atomic
from snnctl.readout.activity import LayerActivity
from snnctl.seeds import subset_seed
import snnctl.service.readouts as readouts
from snnctl.service.common import (Accuracy, Notice, OnProgress, Result, check_output, layer_activity_noticed,
                                   no_progress, quiet, seeded_as, spike_counts)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from snnctl import data
    from snnctl import engine as engines
    from snnctl.readout import LinearReadout, vote


def data_config(stored: Config, task: str | None, data_dir: str | None, reduction: str | None,
                 device: str | None, notice: Notice, readout: str | None = None, workers: str | None = None) -> Config:
    """The checkpoint's parameters, pointed at other data, another readout, another device or
    another number of workers if asked. A run trained on a GPU runs on ``auto`` where there is
    none, so it evaluates anywhere."""
    from snnctl import engine as engines

    here = engines.runnable_device(stored.device)
    if device is None and here != stored.device:
        notice(f"trained with device: {stored.device}, and there is no CUDA device here: running on device {here}")
    changes: dict = {"device": device or here}
    if task is not None:
        changes["task"] = task
    if data_dir is not None:
        # a folder asked for by name is used or refused, whatever the task: MNIST would
        # otherwise fall back to its bundled subset and answer for other images
        if not Path(data_dir).is_dir():
            raise ConfigError(f"--data-dir: {data_dir} is not an existing folder")
        changes["data_dir"] = str(Path(data_dir).resolve())  # as train records it: the run's folder is its split
    if reduction is not None:
        changes["reduction"] = reduction
    if readout is not None:
        changes["readout"] = readout
    if workers is not None:
        changes["workers"] = workers
    return stored.replace(**changes)


def load_split(config: Config, split: str, n: int | None, run_dir: Path, same_data: bool,
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
class OnData:
    """A checkpoint pointed at a split of images: where ``evaluate`` and ``assign`` start."""

    stored: ckpt.Checkpoint
    config: Config  # the checkpoint's, pointed at the data, readout, device and workers asked for
    dataset: "data.Dataset"  # the images of the split asked for
    splits: "data.Splits"

    def engine(self) -> "engines.Engine":
        """The engine that runs the checkpoint's network on these images (learning off)."""
        from snnctl import engine as engines

        return engines.make_engine(self.config, self.stored.tensors)


def on_data(checkpoint_path: Path, split: str, n: int | None, *, task: str | None, data_dir: str | None,
            reduction: str | None, readout: str | None, device: str | None, workers: str | None, notice: Notice,
            before_loading: Callable[[ckpt.Checkpoint, Config], None], features: str | None = None,
            shift: int | None = None, augment: int | None = None, pooling: str | None = None) -> OnData:
    """Load the checkpoint, point its parameters at the data asked for (:func:`data_config`)
    and at the ``readout_features``, ``readout_shift``, ``readout_augment`` and
    ``readout_pooling`` asked for (other features than the checkpoint's drop its shift,
    copies and pooling unless asked for),
    let ``before_loading`` refuse what it must before an image is read, then load the
    images of ``split`` (:func:`load_split`; the run's own split when the data is the
    run's)."""
    stored = ckpt.load(checkpoint_path)
    config = data_config(stored.config, task, data_dir, reduction, device, notice, readout, workers)
    if features is not None or shift is not None or augment is not None or pooling is not None:
        features = features or config.readout_features
        same = features == config.readout_features

        def asked_or_kept(key: str, asked: Any) -> Any:
            return asked if asked is not None else getattr(config, key) if same else DEFAULTS[key]

        config = config.replace(readout_features=features, readout_shift=asked_or_kept("readout_shift", shift),
                                readout_augment=asked_or_kept("readout_augment", augment),
                                readout_pooling=asked_or_kept("readout_pooling", pooling))
    before_loading(stored, config)
    same_data = (config.task, Path(config.data_dir).resolve()) == (stored.config.task,
                                                                   Path(stored.config.data_dir).resolve())
    dataset, splits = load_split(config, split, n, Path(checkpoint_path).parent, same_data, notice)
    return OnData(stored, config, dataset, splits)


@dataclass
class EvaluationResult(Result):
    checkpoint: str
    task: str
    split: str
    reduction: str
    n_samples: int
    classes: list[str]
    accuracy: Accuracy
    balanced_accuracy: float
    per_class: "list[vote.ClassMetrics]"
    confusion: list[list[int]]  # [true][predicted], all-activity vote
    no_prediction: int  # images that made no assigned neuron fire
    samples_per_second: float
    # Two classes: the second class (in sorted folder order) is the positive one.
    sensitivity: float | None = None
    specificity: float | None = None
    positive_class: str | None = None
    predictions_file: str | None = None
    # The readout that balanced_accuracy, per_class, confusion and sensitivity come from.
    readout: str = "vote"
    # Both readouts and the pixel baseline, with AUC and bootstrap intervals.
    scores: readouts.Scores | None = None
    # How the layer spiked on these images (silent neurons, neurons in lockstep); None in a
    # training run's own evaluation, whose TrainResult.activity is on the training images.
    activity: LayerActivity | None = None


def _check_classes(found: list[str], expected: list[str], source: str) -> None:
    if found != expected:
        raise SnnctlError(
            f"{source}: the data's classes ({', '.join(found)}) are not the checkpoint's labels "
            f"({', '.join(expected)}); relabel the checkpoint on this data first: snnctl assign"
        )


def _write_predictions(path: Path, dataset: "data.Dataset", votes: "vote.Votes", linear: "np.ndarray | None",
                       class_names: list[str]) -> None:
    """One CSV row per image: source, true class, both votes' predictions, the linear
    readout's (when the checkpoint has one), all-activity class scores."""
    import csv
    import io

    name = lambda index: class_names[index] if index >= 0 else ""  # noqa: E731
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["source", "label", "all_activity", "proportion_weighting", *(["linear"] if linear is not None else []),
                     *[f"score_{c}" for c in class_names]])
    for i in range(len(dataset)):
        writer.writerow([dataset.source(i), name(int(dataset.labels[i])), name(int(votes.all_activity[i])),
                         name(int(votes.proportion_weighting[i])), *([name(int(linear[i]))] if linear is not None else []),
                         *[f"{s:.6g}" for s in votes.scores[i].tolist()]])
    write_atomic(path, text.getvalue().encode())


def require_labels(stored: ckpt.Checkpoint, source: Path, what: str = "") -> "vote.LabelState":
    """The checkpoint's label state; without one, an error naming ``what`` needs it and the
    remedy: a run stopped before its first labels is finished by ``train --resume``."""
    if stored.labels is not None:
        return stored.labels
    needs = f", which {what} needs" if what else ""
    if stored.progress.finished:
        remedy = f"label it with: snnctl assign {source}"
    else:
        remedy = (f"the run stopped before its first labels; finish it with: snnctl train --resume {source} "
                  f"(or label it as it is with: snnctl assign {source})")
    raise SnnctlError(f"{source}: checkpoint has no label state{needs}; {remedy}")


def check_readout(stored: ckpt.Checkpoint, readout: str, source: Path) -> None:
    """The checkpoint holds what ``readout`` needs: a label state, and for ``linear`` the
    linear readout (checkpoints before format version 2 have none)."""
    require_labels(stored, source)
    if readout == "linear" and stored.readout is None:
        raise SnnctlError(f"{source}: checkpoint has no linear readout; fit one with: "
                          f"snnctl assign {source} --readout linear")


@dataclass
class Classified(readouts.Tested):
    """A checkpoint's readouts run on a set of images, learning off: what ``evaluate``
    scores and ``visualize roc`` draws (``config``: the checkpoint's, pointed at the data,
    readout and device asked for)."""

    stored: ckpt.Checkpoint
    dataset: "data.Dataset"
    train: "data.Dataset"  # the same data's training split: the pixel baseline's
    counts: "torch.Tensor"  # [images, neurons]
    samples_per_second: float
    activity: LayerActivity  # how the layer spiked on these images

    def outputs(self, notice: Notice) -> "tuple[dict[str, readouts.Outputs | None], int]":
        """The outputs of the vote, the linear readout and the pixel baseline (fitted on
        ``train``) on these images, by ``readout.READOUT_NAMES`` key (None: not there),
        and how many training images the regressions are fitted on."""
        baseline, fit_images, _ = self._baseline(notice)
        return self.outputs_with(baseline), fit_images

    def scores(self, notice: Notice) -> readouts.Scores:
        """Both readouts and the pixel baseline on these images."""
        return self.scores_with(*self._baseline(notice))

    def _baseline(self, notice: Notice) -> "tuple[LinearReadout | None, int, list[str] | None]":
        """The pixel baseline fitted on ``train`` (None: not there), how many training
        images the regressions are fitted on, and their patient groups."""
        rows = readouts.fit_rows(self.train.labels, self.config)
        groups = readouts.fit_groups(self.train, rows)
        return readouts.fit_pixel_baseline(self.config, self.train.images[rows], self.train.labels[rows],
                                           len(self.train.class_names), notice, groups), len(rows), groups


def classify(checkpoint_path: Path, *, task: str | None = None, data_dir: str | None = None, split: str = "test",
             n: int | None = None, reduction: str | None = None, readout: str | None = None,
             device: str | None = None, workers: str | None = None, notice: Notice = quiet,
             on_progress: OnProgress = no_progress) -> Classified:
    """Run the images of ``split`` through the checkpoint's network (a file, or a run
    directory's), learning off, and vote."""
    checkpoint_path = ckpt.locate(checkpoint_path)

    def check(stored: ckpt.Checkpoint, config: Config) -> None:
        check_readout(stored, config.readout, checkpoint_path)
        if not stored.progress.finished and "labels" not in stored.info:  # info["labels"]: made by assign
            notice(f"{checkpoint_path}: a run in progress ({stored.progress.samples_seen} training images seen), "
                   f"labelled from its last {stored.config.update_interval} of them; finish it with "
                   f"snnctl train --resume {checkpoint_path}")

    opened = on_data(checkpoint_path, split, n, task=task, data_dir=data_dir, reduction=reduction, readout=readout,
                     device=device, workers=workers, notice=notice, before_loading=check)
    stored, config, dataset = opened.stored, opened.config, opened.dataset
    _check_classes(dataset.class_names, stored.class_names, config.data_dir)
    engine = opened.engine()
    started = time.perf_counter()
    counts = spike_counts(engine, config, dataset.images, seeded_as(split), "evaluate", on_progress)
    rate = len(dataset) / max(time.perf_counter() - started, 1e-9)
    activity = layer_activity_noticed(counts, f"the {len(dataset)} {split} images", notice)
    tested = readouts.tested_on(config, stored.class_names, stored.labels, stored.readout, stored.tensors.weights,
                                dataset.images, counts, dataset.labels)
    return Classified(**vars(tested), stored=stored, dataset=dataset, train=opened.splits.train, counts=counts,
                      samples_per_second=rate, activity=activity)


def evaluate(checkpoint_path: Path, *, task: str | None = None, data_dir: str | None = None, split: str = "test",
             n: int | None = None, reduction: str | None = None, readout: str | None = None,
             predictions: Path | None = None, force: bool = False, device: str | None = None,
             workers: str | None = None, notice: Notice = quiet, on_progress: OnProgress = no_progress) -> EvaluationResult:
    """Classify images with a trained checkpoint, learning off: both readouts, the pixel
    baseline fitted on the same data's training split, and the metrics.

    Defaults come from the checkpoint: its task, data, readout and held-out split, so right
    after training this reproduces the test scores that ``train`` reported.
    """
    checkpoint_path = ckpt.locate(checkpoint_path)
    check_output(predictions, force, reads=checkpoint_path)
    run = classify(checkpoint_path, task=task, data_dir=data_dir, split=split, n=n, reduction=reduction,
                   readout=readout, device=device, workers=workers, notice=notice, on_progress=on_progress)
    dataset = run.dataset
    result = evaluation_result(str(checkpoint_path), run.config, split, run.stored.class_names, dataset.labels,
                               run.predictions(), run.accuracy, run.scores(notice), run.samples_per_second)
    result.activity = run.activity
    if predictions is not None:
        _write_predictions(predictions, dataset, run.votes, None if run.linear is None else run.linear[0],
                           run.stored.class_names)
        result.predictions_file = str(predictions)
    return result


def evaluation_result(checkpoint: str, config: Config, split: str, class_names: list[str], labels: "torch.Tensor",
                      predicted: "torch.Tensor", accuracy: Accuracy, scores: readouts.Scores,
                      samples_per_second: float) -> EvaluationResult:
    """What ``evaluate`` reports of images whose classes are ``labels``: ``predicted`` by
    the readout ``config.readout`` (-1: no vote), both votes' ``accuracy`` and every
    readout's ``scores``. ``train`` builds the same from its own test, so a study's fold
    need not run its images again."""
    from snnctl.readout import vote

    result = EvaluationResult(
        checkpoint=checkpoint, task=config.task, split=split, reduction=config.reduction, n_samples=len(labels),
        classes=class_names, accuracy=accuracy, balanced_accuracy=scores.headline.balanced_accuracy,
        per_class=vote.per_class(predicted, labels, class_names),
        confusion=vote.confusion_matrix(predicted, labels, len(class_names)).tolist(),
        no_prediction=int((predicted < 0).sum()), samples_per_second=samples_per_second,
        readout=config.readout, scores=scores,
    )
    if scores.headline.sensitivity is not None:
        result.positive_class = class_names[1]
        result.sensitivity, result.specificity = scores.headline.sensitivity, scores.headline.specificity
    return result
