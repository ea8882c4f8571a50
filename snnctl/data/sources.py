"""Which loader a task's images come from: MNIST and FASHION (:mod:`snnctl.data.mnist`) or
the MAMMO image folders (:mod:`snnctl.data.folders`)."""

from __future__ import annotations

from snnctl.config import Config
from snnctl.data.dataset import Notice, Splits, check_class_count
from snnctl.data.folders import load_image_folders
from snnctl.data.mnist import IDX_TASKS, load_mnist


def load_splits(config: Config, notice: Notice, check_classes: bool = True) -> Splits:
    """The training and held-out images of the configured task; with ``check_classes``,
    their number of classes must be ``n_classes`` (for image folders, checked before any
    image is decoded)."""
    if config.task not in IDX_TASKS:
        return load_image_folders(config, notice, check_classes)
    splits = load_mnist(config, notice)
    if check_classes:
        check_class_count(config, splits.train.class_names)
    return splits
