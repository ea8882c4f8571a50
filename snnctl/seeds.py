"""Every seed a run derives from its one ``seed`` parameter, in one place.

A run is reproducible and resumable at any image because each random draw (a
presentation's Poisson input, an epoch's shuffle, which images a limit keeps) has its
own seed computed from the run's ``seed`` and where the draw stands. The formulas are
fixed: changing one changes every result trained since.
"""

from __future__ import annotations

import numpy as np

# Which images a presentation belongs to: part of its seed, so that labelling,
# testing and validating never draw the training images' input again.
SPLIT_CODES = {"train": 1, "test": 2, "all": 3, "label": 4, "validation": 5, "readout": 6}


def presentation_seed(seed: int, split: str, *position: int) -> int:
    """Independent, reproducible seed of one presentation: the images of ``split`` at
    ``position`` (epoch and index in training; the first image's index elsewhere)."""
    entropy = [seed, SPLIT_CODES[split], *position]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of one training epoch's shuffle."""
    return seed * 1_000_003 + epoch


def limit_seed(seed: int, split: str) -> int:
    """Seed of the images that ``n_train`` (``split`` "train") or ``n_test`` ("test") keeps."""
    return seed + {"train": 0, "test": 1}[split]


def subset_seed(seed: int, split: str) -> int:
    """Seed of ``--n`` images of ``split`` taken by a checkpoint command."""
    return seed + SPLIT_CODES[split]


def readout_seed(seed: int) -> int:
    """Seed of the training images the linear readout and the pixel baseline are fitted on
    (``readout_max_train``), of their cross-validation folds and of the bootstrap."""
    return seed + SPLIT_CODES["readout"]
