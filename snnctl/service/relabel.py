"""``assign``: relabel a checkpoint's neurons and refit its linear readout from labelled
images (learning off), into a new checkpoint; on another task, or on the layer before
learning (``untrained``, the control that shows what STDP added)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from snnctl import checkpoint as ckpt
from snnctl.config import Config
from snnctl.errors import ConfigError
from snnctl.readout.activity import LayerActivity
import snnctl.service.readouts as readouts
from snnctl.service.checkpoints import on_data
from snnctl.service.common import (Accuracy, Notice, OnProgress, Result, check_output, layer_activity_noticed,
                                   no_progress, quiet, score, seeded_as, spike_counts)

if TYPE_CHECKING:
    import torch

    from snnctl.readout import vote


@dataclass
class AssignResult(Result):
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
    readout: str = "vote"  # the readout the new checkpoint uses
    # The new labels' vote and the new linear readout on the evaluation split.
    scores: readouts.Scores | None = None
    # How the layer spiked on the labelled images (silent neurons, neurons in lockstep).
    activity: LayerActivity | None = None
    untrained: bool = False  # the layer training started from, not the trained one


def as_untrained(stored: ckpt.Checkpoint) -> ckpt.Checkpoint:
    """``stored`` as it was before learning: the initial weights its parameters' seed
    draws (:func:`snnctl.network.initial_tensors`, where training starts), each neuron's
    scaled to sum to ``norm`` as the first presentation leaves them with or without STDP
    (BindsNET's ``Connection.normalize``), thresholds at zero; no labels, no readout, no
    progress."""
    from snnctl import network as net

    initial = net.initial_tensors(stored.config)
    weights = initial.weights * (stored.config.norm / initial.weights.sum(0))  # initial weights are positive
    return replace(stored, tensors=replace(initial, weights=weights), labels=None, readout=None,
                   progress=ckpt.Progress(), window=None)


def _relabeled_output(checkpoint_path: Path, config: Config, output: Path | None, force: bool,
                      untrained: bool = False) -> Path:
    """Where assign writes, checked: ``output``, by default CKPT.TASK-REDUCTION.safetensors
    (CKPT.TASK-linear.safetensors for the linear readout, CKPT.TASK-linear-drive.safetensors
    for one on the input drive, -drive-shiftS with a shift, -augN with N distorted copies,
    -centre with ``readout_pooling: centre``, ending -untrained for the untrained layer);
    never the input checkpoint (that takes --in-place)."""
    if output is None:
        way = "linear" if config.readout == "linear" else config.reduction
        if config.readout == "linear":
            if config.readout_features != "counts":
                way += f"-{config.readout_features}"
            if config.readout_shift:
                way += f"-shift{config.readout_shift}"
            if config.readout_augment:
                way += f"-aug{config.readout_augment}"
            if config.readout_pooling != "global":
                way += f"-{config.readout_pooling}"
        if untrained:
            way += "-untrained"
        output = checkpoint_path.with_name(f"{checkpoint_path.stem}.{config.task.lower()}-{way}.safetensors")
    output = Path(output)
    if output.resolve() == checkpoint_path.resolve():
        raise ConfigError(f"{output}: is the input checkpoint; use --in-place to replace it")
    check_output(output, force)
    return output


def _old_labels_against(stored: ckpt.Checkpoint, new_state: vote.LabelState, class_names: list[str],
                        eval_counts: torch.Tensor, eval_labels: torch.Tensor) -> tuple[float | None, int | None]:
    """The stored labels' vote accuracy on the evaluation images, with the reduction they
    were made for (as ``evaluate`` scored them), and how many neurons the new labels
    moved; (None, None) where there are no stored labels or the classes differ."""
    if stored.labels is None or class_names != stored.class_names:
        return None, None
    old_accuracy, _ = score(eval_counts, eval_labels, stored.labels, len(class_names), stored.config.reduction)
    return old_accuracy, int((stored.labels.assignments != new_state.assignments).sum())


def assign(checkpoint_path: Path, *, reduction: str | None = None, readout: str | None = None,
           features: str | None = None, shift: int | None = None, augment: int | None = None,
           pooling: str | None = None, task: str | None = None, data_dir: str | None = None, split: str = "train",
           n: int | None = None, output: Path | None = None, in_place: bool = False, force: bool = False,
           device: str | None = None, workers: str | None = None, untrained: bool = False, notice: Notice = quiet,
           on_progress: OnProgress = no_progress) -> AssignResult:
    """Recompute which class each excitatory neuron stands for and refit the linear
    readout, from labelled images (learning off), and store both in a new checkpoint
    whose ``readout`` parameter is ``readout`` (default: the checkpoint's), and whose
    ``readout_features`` is ``features``, ``readout_shift`` is ``shift``,
    ``readout_augment`` is ``augment`` and ``readout_pooling`` is ``pooling`` (default:
    the checkpoint's).

    With ``untrained`` the layer is the one training started from (:func:`as_untrained`),
    labelled and read out the same way: the control that shows what STDP added.

    On another task (a layer trained on MNIST, assigned on a MAMMO folder) the new
    checkpoint takes that task's class names, data and readout, ready to evaluate there.
    The input file is only replaced (atomically) with ``in_place``.
    """
    from snnctl.readout import vote

    if untrained and in_place:
        raise ConfigError("assign: --untrained writes a new file; with --in-place it would replace the trained layer")
    checkpoint_path = ckpt.locate(checkpoint_path)

    def choose_output(stored: ckpt.Checkpoint, config: Config) -> None:
        nonlocal output  # refused (an existing file without --force) before any image is read
        output = checkpoint_path if in_place else _relabeled_output(checkpoint_path, config, output, force, untrained)

    opened = on_data(checkpoint_path, split, n, task=task, data_dir=data_dir, reduction=reduction, readout=readout,
                     device=device, workers=workers, notice=notice, before_loading=choose_output, features=features,
                     shift=shift, augment=augment, pooling=pooling)
    if untrained:
        opened = replace(opened, stored=as_untrained(opened.stored))
    stored, label_set, eval_set = opened.stored, opened.dataset, opened.splits.test
    class_names = label_set.class_names
    config = opened.config.replace(n_classes=len(class_names))
    engine = opened.engine()
    label_counts = spike_counts(engine, config, label_set.images, seeded_as(split), "label", on_progress)
    activity = layer_activity_noticed(label_counts, f"the {len(label_set)} {split} images", notice)
    new_state = vote.assign(label_counts, label_set.labels, len(class_names), config.reduction)
    rows = readouts.fit_rows(label_set.labels, config)
    weights = stored.tensors.weights
    groups = readouts.fit_groups(label_set, rows)
    linear = readouts.fit_network_readout(config, weights, label_set.images[rows], label_counts[rows],
                                          label_set.labels[rows], len(class_names), notice, groups)
    eval_counts = spike_counts(engine, config, eval_set.images, "test", "evaluate", on_progress)
    tested = readouts.tested_on(config, class_names, new_state, linear, weights, eval_set.images, eval_counts,
                                eval_set.labels)
    old_accuracy, changed = _old_labels_against(stored, new_state, class_names, eval_counts, eval_set.labels)
    info = {**stored.info, "labels": {"from": str(checkpoint_path), "split": split, "task": config.task,
                                      "data_dir": config.data_dir, "reduction": config.reduction,
                                      "readout": config.readout, "n_samples": len(label_set),
                                      "untrained": untrained}}
    # the device it ran on now is not the training's
    relabelled = config.replace(device=stored.config.device, workers=stored.config.workers)
    ckpt.save(ckpt.Checkpoint(relabelled, stored.tensors, class_names, new_state, stored.progress, None, info,
                              readout=linear), output)
    return AssignResult(
        checkpoint=str(checkpoint_path), output=str(output), task=config.task, reduction=config.reduction,
        label_split=split, n_label_samples=len(label_set), classes=class_names,
        neurons_per_class=new_state.neurons_per_class(len(class_names)),
        unassigned=int((new_state.assignments < 0).sum()), changed=changed, old_accuracy=old_accuracy,
        new_accuracy=tested.accuracy, eval_split="test", n_eval_samples=len(eval_set), readout=config.readout,
        scores=tested.scores_with(None, len(rows), groups), activity=activity, untrained=untrained,
    )
