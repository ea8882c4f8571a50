"""Which loader a task's images come from: MNIST and FASHION (:mod:`snnctl.data.mnist`) or
the MAMMO image folders (:mod:`snnctl.data.folders`)."""

from __future__ import annotations

from snnctl.config import Config
from snnctl.data.dataset import Notice, Splits
from snnctl.data.folders import load_image_folders
from snnctl.data.mnist import IDX_TASKS, load_mnist
from snnctl.errors import ConfigError


def load_splits(config: Config, notice: Notice, check_classes: bool = True) -> Splits:
    """The training and held-out images of the configured task; with ``check_classes``,
    their number of classes must be ``n_classes``."""
    splits = load_mnist(config, notice) if config.task in IDX_TASKS else load_image_folders(config, notice)
    n_found = len(splits.train.class_names)
    if check_classes and n_found != config.n_classes:
        raise ConfigError(
            f"n_classes: {config.n_classes} does not match the {n_found} classes of the data "
            f"({', '.join(splits.train.class_names)}); set n_classes: {n_found} (--set n_classes={n_found})"
        )
    return splits
