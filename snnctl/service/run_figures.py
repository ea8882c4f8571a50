"""The figures a training run leaves behind: what its network learned, drawn once at the end
into the run directory and its TensorBoard log (``tensorboard --logdir logs``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from snnctl.files import write_atomic

if TYPE_CHECKING:
    import torch

    from snnctl.logs import RunLog

FIGURES_DIR = "figures"  # in the run directory, beside the checkpoint


def confusion_title(n_images: int, split: str, accuracy: float, readout: str = "vote") -> str:
    """The title of a confusion figure (``snnctl visualize confusion`` draws the same)."""
    name = "linear readout" if readout == "linear" else "all-activity vote"
    return f"{n_images} {split} images, {name}: accuracy {accuracy:.1%}"


def write_run_figures(run_log: "RunLog", step: int, weights: "torch.Tensor", assignments: "torch.Tensor",
                      class_names: list[str], confusion: "torch.Tensor", confusion_caption: str) -> list[Path]:
    """The input weights (Diehl & Cook 2015's receptive fields), each neuron's class and the
    confusion matrix [true, predicted] of the held-out images, as PNG files in RUN/figures/,
    and the last two as TensorBoard images tagged figures/NAME at ``step`` (the run log
    already holds the weights, tag "weights"; a 6,400-neuron grid costs half a second to encode).
    The confusion comes from the counts that labelling and testing already made: no image
    is run again."""
    from snnctl import plots

    figures = {
        "weights": plots.weights_figure(weights, run_log.config.field_size),
        "assignments": plots.assignments_figure(assignments, class_names),
        "confusion": plots.confusion_figure(confusion.numpy(), class_names, confusion_caption),
    }
    folder = run_log.run_dir / FIGURES_DIR
    folder.mkdir(exist_ok=True)
    written = []
    for name, figure in figures.items():
        png = plots.render(figure, "png")
        write_atomic(folder / f"{name}.png", png)
        if name != "weights":
            run_log.image(f"{FIGURES_DIR}/{name}", png, step)
        written.append(folder / f"{name}.png")
    return written
