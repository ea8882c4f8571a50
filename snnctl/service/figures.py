"""``visualize``: the figures of a checkpoint or run directory (:mod:`snnctl.plots`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from snnctl import checkpoint as ckpt
from snnctl.errors import ConfigError, SnnctlError
from snnctl.files import write_atomic
from snnctl.readout import READOUT_NAMES
from snnctl.service.checkpoints import check_readout, classify, data_config, load_split, require_labels
from snnctl.service.common import Notice, OnProgress, Result, batch_seeds, check_output, no_progress, quiet
from snnctl.service.run_figures import confusion_title

if TYPE_CHECKING:
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    from snnctl import engine as engines
    from snnctl.config import Config
    from snnctl.readout import vote


FIGURES = ("weights", "assignments", "theta", "confusion", "spikes", "curves", "readout", "roc")


@dataclass
class FigureResult(Result):
    figure: str
    source: str
    output: str
    format: str  # png, svg or pdf
    width: int  # pixels (a png's size; svg and pdf at 100 dpi)
    height: int
    title: str


def _checkpoint_and_run_dir(source: Path) -> tuple[Path, Path]:
    """A checkpoint file, or a run directory holding one (``ckpt.CHECKPOINT_NAME``)."""
    source = Path(source)
    if source.is_dir():
        return source / ckpt.CHECKPOINT_NAME, source
    if not source.exists():
        raise SnnctlError(f"{source}: no such checkpoint or run directory")
    return source, source.parent


def _spikes_figure(stored: ckpt.Checkpoint, run_dir: Path, index: int, device: str | None,
                   notice: Notice) -> "Figure":
    """One held-out image, its Poisson input and the excitatory raster, learning off."""
    from snnctl import engine as engines
    from snnctl import plots
    from snnctl.readout import vote

    config = data_config(stored.config, None, None, None, device, notice)
    dataset, _ = load_split(config, "test", None, run_dir, True, notice)
    if not 0 <= index < len(dataset):
        raise ConfigError(f"--index: {index} is out of range: the test split has {len(dataset)} images (0..{len(dataset) - 1})")
    engine = engines.make_engine(config, stored.tensors)
    units = _Presented(config, dataset.images)
    shown_at, what = index * units.per_image, "test image"
    if config.patch_size:  # the raster of the window nearest the centre; the vote reads every window
        side = units.per_side
        shown_at += (side // 2) * side + side // 2
        what = f"the centre {config.patch_size}x{config.patch_size} window of test image"
    # the input evaluate draws for that image or window in its batch, and the spikes it makes there (the first
    # presentation; Diehl & Cook's retry, where one follows, shows in the vote only)
    batch_start, size = shown_at - shown_at % config.batch_size, config.batch_size
    batch = units.between(batch_start, batch_start + size)
    seed = int(batch_seeds(config, "test", batch_start, 1)[0])
    element = shown_at - batch_start
    input_spikes = engine.input_spikes(batch, seed).cpu()[:, element]
    shown = engine.present(batch, False, seed, record=True)
    shown_input = batch[element]
    predicted = "no label state"
    if stored.labels is not None:
        counts = units.counts_of(engine, index)  # the counts evaluate votes on
        winner = int(vote.vote(counts, stored.labels, len(stored.class_names), config.reduction).all_activity[0])
        predicted = stored.class_names[winner] if winner >= 0 else "none (no assigned neuron fired)"
    true = dataset.class_names[int(dataset.labels[index])]
    title = f"{what} {dataset.source(index)}: true class {true}, predicted {predicted} (all-activity vote)"
    return plots.spikes_figure(shown_input, input_spikes, shown.spikes[:, element], config.field_size, config.dt,
                               title)


class _Presented:
    """The test images as evaluate presents them (``spike_counts``): one unit per image, or
    with ``patch_size`` one per window, in order, ``batch_size`` units to a batch seeded by
    the position of its first unit."""

    def __init__(self, config: "Config", images: "torch.Tensor") -> None:
        from snnctl.data import windows

        self.config, self.images = config, images
        self.stride = windows.spiking_stride(config.patch_size) if config.patch_size else 1
        self.per_side = (config.input_size - config.patch_size) // self.stride + 1 if config.patch_size else 1
        self.per_image = self.per_side * self.per_side
        self.total = len(images) * self.per_image

    def between(self, first: int, last: int) -> "torch.Tensor":
        """The units at positions ``first`` to ``last`` (clipped to the split)."""
        from snnctl.data import windows

        last = min(last, self.total)
        if not self.config.patch_size:
            return self.images[first:last]
        image_first, image_last = first // self.per_image, -(-last // self.per_image)
        flat = windows.sliding_windows(self.images[image_first:image_last], self.config.input_size,
                                       self.config.patch_size, self.stride).flatten(0, 1)
        offset = image_first * self.per_image
        return flat[first - offset:last - offset]

    def counts_of(self, engine: "engines.Engine", index: int) -> "torch.Tensor":
        """Image ``index``'s spike counts [1, n] (summed over its windows), each of its units
        presented in the batch evaluate presents it in."""
        size = self.config.batch_size
        first_unit, last_unit = index * self.per_image, (index + 1) * self.per_image
        start, stop = first_unit - first_unit % size, min(-(-last_unit // size) * size, self.total)
        seeds = batch_seeds(self.config, "test", start, stop - start)
        counts = engine.present_sequence(self.between(start, stop), False, seeds)
        return counts[first_unit - start:last_unit - start].sum(0, keepdim=True)


def visualize(what: str, source: Path, output: Path | None = None, force: bool = False, *, titles: bool = False,
              index: int = 0, device: str | None = None, notice: Notice = quiet,
              on_progress: OnProgress = no_progress) -> FigureResult:
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
    output = Path(output)
    image_format = plots.check_suffix(output)
    check_output(output, force)
    figure = _figure(what, checkpoint_path, run_dir, titles=titles, index=index, device=device, notice=notice,
                     on_progress=on_progress)
    write_atomic(output, plots.render(figure, image_format))
    width, height = (round(side * plots.DPI) for side in figure.get_size_inches())
    return FigureResult(what, str(source), str(output), image_format, width, height, figure.get_suptitle())


def _figure(what: str, checkpoint_path: Path, run_dir: Path, *, titles: bool, index: int, device: str | None,
            notice: Notice, on_progress: OnProgress) -> "Figure":
    """Figure ``what`` of the checkpoint (or, for the curves, of its run directory)."""
    from snnctl import plots

    if what == "curves":
        scalars = plots.read_scalars(run_dir)
        if not scalars:
            raise SnnctlError(f"{run_dir}: no TensorBoard accuracy or throughput scalars found (snnctl train logs "
                              f"them from its second update_interval of training images on; a shorter run has none)")
        return plots.curves_figure(scalars, f"training curves of {run_dir}")
    if what == "roc":
        return _roc_figure(checkpoint_path, device, notice, on_progress)
    if what == "confusion":
        return _confusion_figure(checkpoint_path, device, notice, on_progress)
    stored = ckpt.load(checkpoint_path)
    if what == "weights":
        assignments = require_labels(stored, checkpoint_path, "--titles").assignments if titles else None
        return plots.weights_figure(stored.tensors.weights, stored.config.field_size, assignments, stored.class_names)
    if what == "assignments":
        return plots.assignments_figure(require_labels(stored, checkpoint_path, "the assignments figure")
                                        .assignments, stored.class_names)
    if what == "theta":
        return plots.theta_figure(stored.tensors.theta, stored.config.exc_thresh)
    if what == "readout":
        from snnctl.data.encodings import channel_caption

        check_readout(stored, "linear", checkpoint_path)
        caption = channel_caption(stored.config.input_channels).strip()
        each = f" ({caption})" if caption else ""
        return plots.readout_figure(readout_maps(stored), stored.class_names,
                                    f"linear readout: each class's weights over the neurons' receptive fields{each}")
    return _spikes_figure(stored, run_dir, index, device, notice)


def readout_maps(stored: ckpt.Checkpoint) -> "np.ndarray":
    """Each class's linear-readout weights carried back onto the input [classes, size,
    channels * size] (ON/OFF input: the ON and OFF maps side by side, as the weights
    figure draws them): ``sum_j coef[c, j] / scale[j] * W[:, j]``, neuron j's receptive
    field weighted by how much one more unit of its feature (log1p count, or drive) moves
    the class's logit. The drive is measured against the layer's mean drive, so for it
    each field is taken less the layer's mean field: a pattern common to every field
    moves no feature, and would otherwise swamp the maps. With ``readout_pooling:
    centre`` a neuron has two features (``centre-mean``: four), all read through its field:
    their weights add."""
    import torch

    from snnctl.data.encodings import input_planes

    linear = stored.readout
    fields = stored.tensors.weights.double().numpy()  # [inputs, neurons]
    per_feature = linear.coef / linear.scale  # [classes, features]: one or two per neuron
    per_neuron = per_feature.reshape(len(per_feature), -1, fields.shape[1]).sum(axis=1)
    if stored.config.readout_features == "drive":
        fields = fields - fields.mean(axis=1, keepdims=True)
    maps = per_neuron.astype("float64") @ fields.T
    return input_planes(torch.from_numpy(maps), stored.config.field_size).numpy()


def _confusion_figure(checkpoint_path: Path, device: str | None, notice: Notice, on_progress: OnProgress) -> "Figure":
    """The confusion matrix of the checkpoint's readout on its held-out test images."""
    from snnctl import plots
    from snnctl.readout import vote

    run = classify(checkpoint_path, device=device, notice=notice, on_progress=on_progress)
    predicted, labels = run.predictions(), run.dataset.labels
    return plots.confusion_figure(
        vote.confusion_matrix(predicted, labels, len(run.stored.class_names)), run.stored.class_names,
        confusion_title(len(labels), "test", vote.accuracy(predicted, labels), run.config.readout))


def _roc_figure(checkpoint_path: Path, device: str | None, notice: Notice, on_progress: OnProgress) -> "Figure":
    """ROC curves of the vote, the linear readout and the pixel baseline on the held-out images."""
    from sklearn.metrics import auc, roc_curve

    from snnctl import plots
    from snnctl.readout.metrics import auc_classes

    run = classify(checkpoint_path, device=device, notice=notice, on_progress=on_progress)
    names, labels = run.stored.class_names, run.dataset.labels.numpy()
    outputs, _ = run.outputs(notice)
    curves = {}
    for readout, found in outputs.items():
        if found is not None:
            shown = curves[READOUT_NAMES[readout]] = {}
            for c in auc_classes(labels, len(names)):  # the curves whose areas the reported AUC averages
                fpr, tpr, _ = roc_curve(labels == c, found[1][:, c])
                shown[names[c]] = (fpr, tpr, float(auc(fpr, tpr)))
    return plots.roc_figure(curves, f"ROC, one vs rest, on {len(labels)} test images")
