"""matplotlib figures of a trained network: one function per figure, each returning a Figure.

Figures are built on matplotlib's object API with the non-interactive Agg canvas
attached (never ``pyplot``), so they render on a machine without a screen and leave no
global state behind. Sizes are chosen from the layer: a grid of ``side x side`` tiles,
``side = ceil(sqrt(n_neurons))``, drawn as one image (not one axes per neuron), so
1,600 or 6,400 neurons draw in seconds; each weight is at least one pixel up to about
4,000 pixels across, and small layers are enlarged to about 1,000 pixels.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from snnctl.data.encodings import channel_caption, input_planes
from snnctl.errors import ConfigError
from snnctl.logs import receptive_field_grid

SUFFIXES = (".png", ".svg", ".pdf")
DPI = 100
# Grid images: enlarge small ones to about MIN_PIXELS, shrink huge ones to MAX_PIXELS.
MIN_PIXELS, MAX_PIXELS, MAX_UPSCALE = 1000, 4000, 8
UNASSIGNED_COLOR = (0.8, 0.8, 0.8)
# The scalars that service.train logs (snnctl.service.train), and how they are drawn.
ACCURACY_TAGS = {"accuracy/all_activity": "all activity", "accuracy/proportion_weighting": "proportion weighting"}
THROUGHPUT_TAG = "throughput/samples_per_second"


def new_figure(width: float, height: float) -> Figure:
    """A Figure of ``width x height`` inches on the Agg (raster, screenless) canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def check_suffix(path: Path) -> str:
    """The image format a file name asks for (png, svg, pdf)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"{path}: extension {suffix or '(none)'!r} is not one of {', '.join(SUFFIXES)}")
    return suffix[1:]


def render(figure: Figure, image_format: str) -> bytes:
    """The figure encoded as png, svg or pdf (written by the caller, atomically)."""
    buffer = io.BytesIO()
    # zlib level 1: a 6,400-neuron weight grid encodes several times faster than at the
    # default level 6, for a file a few percent larger.
    options = {"pil_kwargs": {"compress_level": 1}} if image_format == "png" else {}
    figure.savefig(buffer, format=image_format, dpi=DPI, **options)
    return buffer.getvalue()


def gray_images(rows: list[list[tuple[str, np.ndarray]]], title: str, cell: tuple[float, float]) -> Figure:
    """Rows of (caption, image in [0, 1]) drawn in gray, white at 1, each in a ``cell`` of
    (width, height) inches, under ``title``: what an encoding makes of input images (the
    figures of bench/encodings_figure.py and bench/deskew_figure.py)."""
    columns = max(len(row) for row in rows)
    figure = new_figure(cell[0] * columns, cell[1] * len(rows))
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for row, shown in zip(axes, rows):
        for ax, (caption, values) in zip(row, shown):
            ax.imshow(values, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            if caption:
                ax.set_title(caption, fontsize=9)
            ax.set_axis_off()
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def grid_side(n_neurons: int) -> int:
    """Tiles per row of the square grid (as :func:`snnctl.logs.receptive_field_grid`)."""
    return math.ceil(math.sqrt(n_neurons))


def _as_grid(values: np.ndarray, side: int) -> np.ma.MaskedArray:
    """Per-neuron values [n] as a ``side x side`` image; cells past the last neuron masked."""
    padded = np.full(side * side, np.nan)
    padded[: len(values)] = values
    return np.ma.masked_invalid(padded.reshape(side, side))


def _scale(pixels: int) -> float:
    """Screen pixels per image pixel for a grid ``pixels`` wide."""
    if pixels < MIN_PIXELS:
        return float(min(MAX_UPSCALE, math.ceil(MIN_PIXELS / pixels)))
    return min(1.0, MAX_PIXELS / pixels)


def _tile_lines(ax: Axes, side: int, tile: int | tuple[int, int], color: str, width: float) -> None:
    """Thin separators between the tiles of a grid image (tile = image pixels per tile,
    or its (height, width))."""
    height, wide = (tile, tile) if isinstance(tile, int) else tile
    rows, columns = np.arange(1, side) * height - 0.5, np.arange(1, side) * wide - 0.5
    ax.hlines(rows, -0.5, side * wide - 0.5, colors=color, linewidths=width)
    ax.vlines(columns, -0.5, side * height - 0.5, colors=color, linewidths=width)


def class_colors(n_classes: int) -> list[tuple[float, float, float]]:
    """Distinct colors for the classes: tab10 / tab20, or an even walk around the hue circle."""
    from matplotlib import colormaps

    if n_classes <= 10:
        return [to_rgb(c) for c in colormaps["tab10"].colors[:n_classes]]
    if n_classes <= 20:
        return [to_rgb(c) for c in colormaps["tab20"].colors[:n_classes]]
    return [tuple(colormaps["hsv"](k / n_classes)[:3]) for k in range(n_classes)]


def weights_figure(weights: torch.Tensor, input_size: int, assignments: torch.Tensor | None = None,
                   class_names: list[str] | None = None) -> Figure:
    """Every excitatory neuron's input weights as an ``input_size x input_size`` tile; with
    ON/OFF input (twice as many weights) its ON and OFF weights side by side.

    The tiles form the square grid of the original project's TensorBoard image
    (:func:`snnctl.logs.receptive_field_grid`, colormap hot_r). With ``assignments``,
    each tile carries its neuron's class name in its top-left corner ("-": unassigned).
    """
    n_neurons = weights.shape[1]
    side = grid_side(n_neurons)
    grid = receptive_field_grid(weights.detach().cpu().float(), input_size).numpy()
    tile_height, tile_width = grid.shape[0] // side, grid.shape[1] // side
    channels = tile_width // tile_height
    mask = np.zeros((side, side), bool)
    mask.flat[n_neurons:] = True
    image = np.ma.masked_array(grid, np.kron(mask, np.ones((tile_height, tile_width), bool)))
    scale = _scale(side * tile_width)
    inches_wide, inches_high = side * tile_width * scale / DPI, side * tile_height * scale / DPI
    left, right, bottom, top = 0.2, 1.3, 0.2, 0.6
    figure = new_figure(inches_wide + left + right, inches_high + bottom + top)
    width, height = figure.get_size_inches()
    ax = figure.add_axes((left / width, bottom / height, inches_wide / width, inches_high / height))
    shown = ax.imshow(image, cmap=_colormap("hot_r"), interpolation="nearest" if scale >= 1 else "antialiased",
                      vmin=float(weights.min()), vmax=float(weights.max()))
    if channels > 1:  # fainter lines between a tile's channels (ON | OFF, or grey | ON | OFF)
        ax.vlines(np.arange(1, side * channels) * input_size - 0.5, -0.5, side * tile_height - 0.5, colors="0.9",
                  linewidths=0.3)
    _tile_lines(ax, side, (tile_height, tile_width), "0.75", 0.5)
    ax.set_axis_off()
    each = f"{input_size}x{input_size}" + channel_caption(channels)
    figure.suptitle(f"input weights of {n_neurons} excitatory neurons ({each} each)", y=1 - 0.2 / height)
    bar = figure.add_axes(((left + inches_wide + 0.15) / width, bottom / height, 0.2 / width, inches_high / height))
    figure.colorbar(shown, cax=bar, label="weight")
    if assignments is not None and class_names is not None:
        # a label about a third of the tile high (points = pixels * 72 / dpi)
        size = max(4.0, min(12.0, 0.3 * input_size * scale * 72 / DPI))
        for neuron, label in enumerate(assignments.tolist()):
            row, column = divmod(neuron, side)
            ax.text(column * tile_width + 0.5, row * tile_height + 0.5, class_names[label] if label >= 0 else "-",
                    fontsize=size, color="tab:blue", fontweight="bold", ha="left", va="top")
    return figure


def _colormap(name: str) -> Colormap:
    """A copy of a named colormap that draws masked cells white."""
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="white")


def _grid_axes_size(side: int) -> float:
    """Inches for a neuron grid: about 0.25 in per cell for small layers, at most 7 in."""
    return min(7.0, max(3.0, 0.25 * side))


def assignments_figure(assignments: torch.Tensor, class_names: list[str]) -> Figure:
    """The neurons' grid colored by the class each stands for, with a legend of class
    names, and a bar chart of how many neurons each class has (Diehl & Cook, sec. 2.5)."""
    n_neurons, n_classes = len(assignments), len(class_names)
    side = grid_side(n_neurons)
    colors = np.array(class_colors(n_classes) + [UNASSIGNED_COLOR])
    labels = assignments.numpy()
    rgb = np.ones((side * side, 3))
    rgb[:n_neurons] = colors[np.where(labels >= 0, labels, n_classes)]
    grid_inches = _grid_axes_size(side)
    figure = new_figure(grid_inches + 2.0 + max(4.0, 0.4 * n_classes), grid_inches + 1.2)
    grid_ax, bar_ax = figure.subplots(1, 2, width_ratios=[grid_inches + 2.0, max(4.0, 0.4 * n_classes)])
    grid_ax.imshow(rgb.reshape(side, side, 3), interpolation="nearest")
    if side <= 40:
        _tile_lines(grid_ax, side, 1, "white", 0.5)
    if side <= 16:
        for neuron, label in enumerate(labels.tolist()):
            row, column = divmod(neuron, side)
            grid_ax.text(column, row, class_names[label] if label >= 0 else "-", ha="center", va="center",
                         fontsize=7, color="white" if label >= 0 else "0.3")
    grid_ax.set_axis_off()
    unassigned = int((labels < 0).sum())
    figure.suptitle(f"classes of {n_neurons} excitatory neurons")
    grid_ax.set_title(f"grid of neurons ({unassigned} unassigned)")
    legend = [Patch(color=colors[k], label=name) for k, name in enumerate(class_names)]
    if unassigned:
        legend.append(Patch(color=UNASSIGNED_COLOR, label="unassigned"))
    grid_ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                   title="class")
    counts = np.bincount(labels[labels >= 0], minlength=n_classes)
    bars = bar_ax.bar(range(n_classes), counts, color=colors[:n_classes])
    bar_ax.bar_label(bars, fontsize=8)
    bar_ax.set_xticks(range(n_classes), class_names, rotation=45 if n_classes > 10 else 0, ha="right"
                      if n_classes > 10 else "center")
    bar_ax.set_ylabel("neurons")
    bar_ax.set_title("neurons per class")
    figure.tight_layout()
    return figure


def theta_figure(theta: torch.Tensor, exc_thresh: float) -> Figure:
    """The adaptive threshold increments theta (Diehl & Cook, sec. 2.3) as a neuron grid and
    a histogram; a neuron fires at ``exc_thresh + theta`` mV."""
    values = theta.detach().cpu().double().numpy()
    side = grid_side(len(values))
    grid_inches = _grid_axes_size(side)
    figure = new_figure(grid_inches + 6.0, grid_inches + 1.2)
    grid_ax, hist_ax = figure.subplots(1, 2, width_ratios=[grid_inches + 1.0, 5.0])
    shown = grid_ax.imshow(_as_grid(values, side), cmap=_colormap("viridis"), interpolation="nearest")
    figure.colorbar(shown, ax=grid_ax, label="theta (mV)", fraction=0.046, pad=0.04)
    grid_ax.set_axis_off()
    figure.suptitle(f"adaptive thresholds of {len(values)} excitatory neurons")
    grid_ax.set_title("theta per neuron")
    hist_ax.hist(values, bins=max(10, min(50, len(values) // 10)), color="tab:green")
    hist_ax.set_xlabel("theta (mV)")
    hist_ax.set_ylabel("neurons")
    hist_ax.set_title(f"threshold = {exc_thresh:g} mV + theta; mean theta {values.mean():.3g} mV, "
                      f"max {values.max():.3g} mV", fontsize=9)
    figure.tight_layout()
    return figure


def confusion_figure(matrix: list[list[int]] | np.ndarray, class_names: list[str], title: str = "") -> Figure:
    """A confusion matrix [true, predicted] as counts and row-normalized (each true class's
    share of predictions; rows of classes without images stay 0)."""
    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(1, keepdims=True)
    normalized = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n_classes = len(class_names)
    cell = max(0.35, min(0.6, 6.0 / n_classes))
    side = max(3.5, cell * n_classes + 1.5)
    figure = new_figure(2 * side + 1.0, side + 1.0)
    annotate = n_classes <= 20
    for ax, values, name, fmt in zip(figure.subplots(1, 2), (counts, normalized), ("counts", "row-normalized"),
                                      ("{:.0f}", "{:.2f}")):
        shown = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if name == "row-normalized" else None)
        figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(n_classes), class_names, rotation=45 if n_classes > 10 else 0)
        ax.set_yticks(range(n_classes), class_names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(name)
        if annotate:
            high = values.max() / 2 if values.max() > 0 else 1
            for (row, column), value in np.ndenumerate(values):
                ax.text(column, row, fmt.format(value), ha="center", va="center", fontsize=7,
                        color="white" if value > high else "black")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def spikes_figure(image: torch.Tensor, input_spikes: torch.Tensor, exc_spikes: torch.Tensor, input_size: int,
                  dt: float, title: str) -> Figure:
    """One presentation: the input image, its Poisson input raster [steps, n_inputs] and the
    excitatory raster [steps, n_neurons] over time (ms)."""
    figure = new_figure(15.0, 4.8)
    image_ax, input_ax, exc_ax = figure.subplots(1, 3, width_ratios=[1.0, 2.2, 2.2])
    image_ax.imshow(input_planes(image.detach().cpu(), input_size).numpy(), cmap="gray_r",
                    vmin=0.0, vmax=1.0, interpolation="nearest")
    image_ax.set_axis_off()
    image_ax.set_title("input image")
    for ax, spikes, name in ((input_ax, input_spikes, "input"), (exc_ax, exc_spikes, "excitatory neuron")):
        steps, neurons = torch.nonzero(spikes.detach().cpu(), as_tuple=True)
        # a tick one row high (about 250 pt of axes over the rows), between 2 and 12 pt
        tick = min(12.0, max(2.0, 250.0 / spikes.shape[1]))
        ax.scatter(steps.numpy() * dt, neurons.numpy(), s=tick ** 2, marker="|", color="black", linewidths=1.0)
        ax.set_xlim(-dt, spikes.shape[0] * dt)
        ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel(name)
        ax.set_title(f"{name} spikes: {len(steps)}")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def curves_figure(scalars: dict[str, tuple[list[int], list[float]]], title: str = "") -> Figure:
    """A run's training curves: running accuracy (each vote) and throughput against samples
    seen, as :func:`read_scalars` returns them."""
    figure = new_figure(12.0, 4.5)
    accuracy_ax, speed_ax = figure.subplots(1, 2)
    for tag, name in ACCURACY_TAGS.items():
        if tag in scalars:
            steps, values = scalars[tag]
            accuracy_ax.plot(steps, np.asarray(values) * 100, marker=".", label=name)
    accuracy_ax.set_xlabel("training samples seen")
    accuracy_ax.set_ylabel("running accuracy (%)")
    accuracy_ax.set_title("accuracy")
    if accuracy_ax.lines:
        accuracy_ax.legend()
    accuracy_ax.grid(alpha=0.3)
    if THROUGHPUT_TAG in scalars:
        steps, values = scalars[THROUGHPUT_TAG]
        speed_ax.plot(steps, values, marker=".", color="tab:red")
    speed_ax.set_xlabel("training samples seen")
    speed_ax.set_ylabel("samples per second")
    speed_ax.set_title("throughput")
    speed_ax.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def read_scalars(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """The accuracy and throughput scalars of a run's TensorBoard event files, by tag,
    sorted by step (a resumed run's files may repeat steps; the last value wins)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    scalars = {}
    for tag in set(accumulator.Tags()["scalars"]) & {*ACCURACY_TAGS, THROUGHPUT_TAG}:
        by_step = {event.step: event.value for event in accumulator.Scalars(tag)}
        steps = sorted(by_step)
        scalars[tag] = (steps, [by_step[step] for step in steps])
    return scalars


def readout_figure(maps: np.ndarray, class_names: list[str], title: str = "") -> Figure:
    """The linear readout's weights of each class carried back onto the input pixels:
    ``maps`` [classes, size, size], each class's weights over the neurons summed through
    the neurons' receptive fields (red: pixels that speak for the class, blue: against),
    on one symmetric color scale."""
    n_classes = len(class_names)
    columns = min(n_classes, 5)
    rows = math.ceil(n_classes / columns)
    figure = new_figure(2.2 * columns + 0.8, 2.2 * rows + 0.8)
    bound = float(np.abs(maps).max()) or 1.0
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    shown = None
    for ax, values, name in zip(axes, maps, class_names):
        shown = ax.imshow(values, cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n_classes:]:
        ax.set_visible(False)
    figure.colorbar(shown, ax=list(axes), fraction=0.03, pad=0.02)
    if title:
        figure.suptitle(title)
    return figure


def roc_figure(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray, float]]], title: str = "") -> Figure:
    """ROC curves: one panel per readout (``curves[readout][class] = (false positive rate,
    true positive rate, AUC)``), one-vs-rest per class, the diagonal as chance."""
    figure = new_figure(4.2 * len(curves) + 0.5, 4.6)
    axes = figure.subplots(1, len(curves), squeeze=False).ravel()
    for ax, (readout, per_class) in zip(axes, curves.items()):
        colors = class_colors(len(per_class))
        for color, (name, (fpr, tpr, area)) in zip(colors, per_class.items()):
            ax.plot(fpr, tpr, color=color, linewidth=1.2, label=f"{name}: AUC {area:.3f}")
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("false positive rate (1 - specificity)")
        ax.set_ylabel("true positive rate (sensitivity)")
        ax.set_title(readout, fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
