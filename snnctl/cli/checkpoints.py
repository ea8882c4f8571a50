"""``snnctl evaluate``, ``assign`` and ``inspect``: the commands that read a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

import snnctl.cli.render as render
from snnctl.cli.options import (AugmentOption, CheckpointArgument, DataDirOption, DebugOption, DeviceOption,
                                FeaturesOption, JsonOption, LogDirOption, NOption, PoolingOption, ReadoutOption,
                                ReductionOption, ShiftOption, Split, TaskOption, WorkersOption, value)
from snnctl.cli.scores import percent, scores_table
from snnctl.errors import ConfigError

EVALUATE_EPILOG = render.examples(
    "snnctl evaluate logs/MNIST/run1/checkpoint.safetensors",
    "snnctl evaluate CKPT --split train --n 1000 --reduction mean --json",
    "snnctl evaluate CKPT --readout linear",
    "snnctl evaluate CKPT --task MAMMO --data-dir data/mammo --predictions predictions.csv")


def evaluate(
    checkpoint: CheckpointArgument = None,
    task: TaskOption = None,
    data_dir: DataDirOption = None,
    split: Annotated[Split, typer.Option(help="Which images: the held-out test split, train, or all.")] = Split("test"),
    n: NOption = None,
    reduction: ReductionOption = None,
    readout: ReadoutOption = None,
    predictions: Annotated[Optional[Path], typer.Option(help="Write one CSV row per image here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing predictions file.")] = False,
    device: DeviceOption = None,
    workers: WorkersOption = None,
    log_dir: LogDirOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Classify images with a trained checkpoint (learning off) and report the metrics."""

    def call(on_progress):
        from snnctl import service

        return service.evaluate(
            service.checkpoint_or_latest(checkpoint, log_dir, render.notice), task=value(task), data_dir=str(data_dir) if data_dir else None, split=split.value, n=n,
            reduction=value(reduction), readout=value(readout), predictions=predictions, force=force, device=value(device),
            workers=workers, notice=render.notice, on_progress=on_progress)

    render.run(call, _evaluation_tables, as_json)


def _evaluation_tables(result) -> render.Rendering:
    rows = render.accuracy_rows("accuracy", result.accuracy) + [
        (f"balanced accuracy ({result.readout} readout)", f"{result.balanced_accuracy:.2%}")]
    if result.positive_class is not None:
        rows += [(f"sensitivity (recall of {result.positive_class})", f"{result.sensitivity:.2%}"),
                 (f"specificity (recall of {result.classes[0]})", f"{result.specificity:.2%}")]
    rows += [("images", f"{result.n_samples} ({result.task}, {result.split} split), {result.no_prediction} without a vote"),
             ("readout", f"{result.readout}, reduction {result.reduction}"), ("speed", f"{result.samples_per_second:.0f} images/s")]
    if result.predictions_file:
        rows.append(("predictions", result.predictions_file))
    per_class = Table(title=f"Per class ({_readout_name(result.readout)})", title_justify="left")
    for column in ("class", "images", "precision", "recall"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for item in result.per_class:
        per_class.add_row(escape(item.name), str(item.support), percent(item.precision),
                          percent(item.recall))
    return [render.key_values(f"Evaluation of {result.checkpoint}", rows),
            scores_table(result.scores, f"{result.n_samples} {result.split} images"), per_class,
            _confusion_table(result.classes, result.confusion, result.readout)]


def _readout_name(readout: str) -> str:
    return "linear readout" if readout == "linear" else "all-activity vote"


def _confusion_table(classes: list[str], confusion: list[list[int]], readout: str) -> Table:
    table = Table(title=f"Confusion matrix (rows: true class, columns: predicted, {_readout_name(readout)})",
                  title_justify="left")
    table.add_column("true \\ predicted", style="bold")
    for name in classes:
        table.add_column(escape(name), justify="right")
    for name, row in zip(classes, confusion):
        table.add_row(escape(name), *[str(count) for count in row])
    return table


ASSIGN_EPILOG = render.examples(
    "snnctl assign CKPT --reduction mean --out relabeled.safetensors",
    "snnctl assign CKPT --readout linear",
    "snnctl assign CKPT --readout linear --untrained",
    "snnctl assign CKPT --in-place",
    "snnctl assign mnist.safetensors --task MAMMO --data-dir data/mammo --out on-mammo.safetensors")


def assign(
    checkpoint: CheckpointArgument = None,
    reduction: ReductionOption = None,
    readout: ReadoutOption = None,
    features: FeaturesOption = None,
    shift: ShiftOption = None,
    augment: AugmentOption = None,
    pooling: PoolingOption = None,
    task: TaskOption = None,
    data_dir: DataDirOption = None,
    split: Annotated[Split, typer.Option(help="Labelled images to assign from.")] = Split("train"),
    n: NOption = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", "-o", help="New checkpoint (default: CKPT.TASK-REDUCTION.safetensors; with --readout linear CKPT.TASK-linear.safetensors, the features and their options added, e.g. CKPT.mnist-linear-drive.safetensors).")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Replace the input checkpoint (atomically).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    untrained: Annotated[bool, typer.Option("--untrained", help="Relabel the layer training started from (the weights its seed draws), not the trained one: the control that shows what STDP added.")] = False,
    device: DeviceOption = None,
    workers: WorkersOption = None,
    log_dir: LogDirOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Relabel a trained layer: which class each excitatory neuron stands for, and the linear readout."""

    def call(on_progress):
        from snnctl import service

        if in_place and out_path is not None:
            raise ConfigError("assign: give --out or --in-place, not both")
        return service.assign(
            service.checkpoint_or_latest(checkpoint, log_dir, render.notice), reduction=value(reduction),
            readout=value(readout), features=value(features), shift=shift, augment=augment, pooling=value(pooling),
            task=value(task), data_dir=str(data_dir) if data_dir else None,
            split=split.value, n=n, output=out_path, in_place=in_place, force=force, device=value(device),
            workers=workers, untrained=untrained, notice=render.notice, on_progress=on_progress)

    render.run(call, _assignment_table, as_json)


def _assignment_table(result) -> render.Rendering:
    rows: list[tuple[str, object]] = [
        ("layer", "untrained: the weights training started from (--untrained)" if result.untrained else "trained"),
        ("labels from", f"{result.n_label_samples} {result.task} images ({result.label_split} split), "
                        f"readout {result.readout}, reduction {result.reduction}"),
        ("neurons per class", ", ".join(f"{c}: {k}" for c, k in zip(result.classes, result.neurons_per_class))),
        ("unassigned neurons", result.unassigned),
        ("neurons that changed class", result.changed if result.changed is not None
         else "n/a (untrained layer)" if result.untrained else "n/a (other classes)"),
    ]
    if result.old_accuracy is not None:
        rows += render.accuracy_rows(f"old labels on {result.n_eval_samples} test images", result.old_accuracy)
    rows += render.accuracy_rows(f"new labels on {result.n_eval_samples} test images", result.new_accuracy)
    rows.append(("checkpoint", result.output))
    return [render.key_values("Assignment", rows), scores_table(result.scores, f"{result.n_eval_samples} test images")]


INSPECT_EPILOG = render.examples("snnctl inspect logs/MNIST/run1/checkpoint.safetensors",
                                 "snnctl inspect CKPT --json | jq .parameters")


def inspect(checkpoint: CheckpointArgument = None, log_dir: LogDirOption = None, as_json: JsonOption = False,
            debug: DebugOption = False) -> None:
    """What a checkpoint holds: format, model, parameters, classes, tensors, versions."""

    def call(on_progress):
        from snnctl import service
        from snnctl.errors import WarningText

        result = service.inspect(service.checkpoint_or_latest(checkpoint, log_dir, render.notice))
        for warning in result.warnings:
            render.notice(WarningText(f"{result.checkpoint}: {warning}"))
        return result

    render.run(call, _inspection_tables, as_json)


def _input(parameters: dict) -> str:
    """The input a checkpoint's neurons see: the image (deskewed first, with ``deskew``; its
    grey levels to a power, with ``gamma``), or windows of it (``patch_size``)."""
    size, patch, gamma = parameters["input_size"], parameters.get("patch_size"), parameters.get("gamma", 1.0)
    text = f"input {size}x{size}" + (" deskewed" if parameters.get("deskew") else "")
    text += f", grey levels to the power {gamma}" if gamma != 1.0 else ""
    text += f", receptive fields {patch}x{patch} windows" if patch else ""
    channels = {"on-off": " ON and OFF", "rate+on-off": " grey, ON and OFF"}
    return text + channels.get(parameters.get("encoding", "rate"), "")


def _inspection_tables(result) -> render.Rendering:
    per_class = (", ".join(f"{c}: {k}" for c, k in result.neurons_per_class.items())
                 + f", unassigned: {result.unassigned}") if result.neurons_per_class else "no label state"
    summary = render.key_values(f"Checkpoint {result.checkpoint}", [
        ("format version", result.format_version),
        ("model", f"{result.model}, {result.parameters['n_neurons']} neurons, {_input(result.parameters)}"),
        ("task", f"{result.parameters['task']} ({', '.join(result.classes)})"),
        ("trained", f"{result.samples_seen} samples, {result.epochs} epoch(s), {'finished' if result.finished else 'in progress'}"),
        ("neurons per class", per_class),
        ("linear readout", _linear_readout(result.readout)),
        ("readout used", result.parameters["readout"]),
        *_split_rows(result.info),
        ("written", f"{result.created} by " + ", ".join(f"{k} {v}" for k, v in result.versions.items())),
    ])
    tensors = Table(title="Tensors", title_justify="left")
    for column in ("name", "shape", "dtype", "mean", "std", "min", "max"):
        tensors.add_column(column, justify="left" if column in ("name", "dtype") else "right")
    for t in result.tensors:
        tensors.add_row(t.name, "x".join(map(str, t.shape)), t.dtype, f"{t.mean:.4g}", f"{t.std:.4g}", f"{t.min:.4g}", f"{t.max:.4g}")
    parameters = Table(title="Parameters", title_justify="left", show_header=False)
    parameters.add_column(style="bold")
    parameters.add_column()
    for key, parameter in result.parameters.items():
        parameters.add_row(key, escape(_as_yaml(parameter)))
    return [summary, tensors, parameters]


def _linear_readout(summary: dict | None) -> str:
    if summary is None:
        return "none (snnctl assign CKPT --readout linear fits one)"
    return (f"{summary['classes']} classes x {summary['features']} features, transform {summary['transform']}, "
            f"C = {summary['C']:g}, {'class-weighted' if summary['balanced'] else 'unweighted'}")


def _split_rows(info: dict) -> list[tuple[str, object]]:
    """How a run's images were split, where its checkpoint says: groups per side, fold."""
    rows: list[tuple[str, object]] = []
    groups = info.get("groups")
    if isinstance(groups, dict):
        source = f"group: {groups['regex']}" if "regex" in groups else f"group_file: {groups.get('file')}"
        rows.append(("patient groups", f"{groups.get('train')} train / {groups.get('test')} test ({source})"))
    if "fold" in info:
        rows.append(("fold", f"{info['fold'] + 1} of {info.get('folds')} held out"))
    return rows


def _as_yaml(parameter: object) -> str:
    """A parameter as a parameter file writes it (null, false), not as Python prints it."""
    import yaml

    return yaml.safe_dump(parameter, default_flow_style=True, allow_unicode=True, width=float("inf")).removesuffix(
        "...\n").strip()
