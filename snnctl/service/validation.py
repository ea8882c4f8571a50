"""A sweep's validation split: training images set aside to score a run in place of the
test images (:class:`Validation`), and the splits it makes (:func:`validation_splits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from snnctl.config import Config
from snnctl.errors import ConfigError
from snnctl.service.common import Notice, quiet

if TYPE_CHECKING:
    from snnctl import data


@dataclass(frozen=True)
class Validation:
    """Training images set aside to score a run in place of the test images: a sweep's
    validation split. Drawn (stratified, patient groups kept apart) from all the training
    images before ``n_train``, with its own seed, so it is the same for every trial
    whatever its seed and n_train. With ``folds``, fold ``fold`` of the training images
    (a sweep scored by cross-validation) instead of ``size`` images."""

    size: int
    seed: int
    folds: int | None = None
    fold: int | None = None


def validation_splits(config: Config, validation: Validation, notice: Notice = quiet) -> "data.Splits":
    """The training images less a validation part, and that part as the held-out split.
    The test images are dropped here, before any network exists, so they are never run."""
    from snnctl import data

    loaded = data.load_splits(config.replace(n_train=None), notice)
    images = loaded.train
    if not 0 < validation.size < len(images):
        raise ConfigError(f"validation: {validation.size} images is not between 0 and the {len(images)} "
                          f"training images of {loaded.origin}")
    rest, held = data.validation_split(images.labels, images.groups, validation.size, validation.seed,
                                       validation.folds, validation.fold)
    return data.Splits(data.limit(images.subset(rest), config.n_train, config.seed), images.subset(held),
                       f"{loaded.origin}; {len(held)} of its training images held out for validation",
                       loaded.manifest)
