"""Fitted regressions kept in the user cache (:mod:`snnctl.data.cache`), so that a fit on
the same rows with the same settings is made once.

The pixel baseline depends on the split's training pixels only, not on the network: every
run on one split, and every ``snnctl evaluate`` of its checkpoint, fits the
very same regression, and its cross-validation is most of their time: ``snnctl evaluate``
of ``make demo``'s checkpoint took 24.7 s fitting it and 12.4 s reading it back, where
the network's 1,000 test images take under a second.

A fit is named by a SHA-256 over its rows (features, labels, groups), its settings, the
fitting code's constants and its source (``snnctl/readout/linear.py``), so that a changed
fit is made again; scikit-learn's and numpy's versions are in its key as well. What is
read back is the fitted readout bit for bit, with its ``converged`` and ``grouped``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from snnctl.readout import linear
from snnctl.readout.linear import LinearReadout

# Raise when what a cached fit holds changes.
FORMAT = "1"
# What the fit's outcome holds beyond the readout's own tensors.
C_NAME, CONVERGED_NAME, GROUPED_NAME = "fit.C", "fit.converged", "fit.grouped"


def cached_fit(kind: str, features: np.ndarray, labels: np.ndarray, n_classes: int, *, balanced: bool, seed: int,
               transform: str, workers: int, groups: Sequence[str] | None) -> LinearReadout:
    """:meth:`LinearReadout.fit` of these rows with these settings (``workers`` changes
    nothing but its speed), or the readout such a fit made before, kept as ``kind``. A
    fit that raises is not kept."""
    import sklearn
    import torch

    from snnctl.data.cache import cached

    digest = _digest(kind, features, labels, n_classes, groups, transform, balanced, seed)
    key = {"format": FORMAT, "kind": kind, "digest": digest, "sklearn": sklearn.__version__, "numpy": np.__version__}

    def make() -> dict[str, torch.Tensor]:
        readout = LinearReadout.fit(features, labels, n_classes, balanced=balanced, seed=seed, transform=transform,
                                    workers=workers, groups=groups)
        tensors = {name: torch.from_numpy(array) for name, array in readout.to_tensors().items()}
        tensors[C_NAME] = torch.tensor(readout.C, dtype=torch.float64)
        tensors[CONVERGED_NAME] = torch.tensor(readout.converged)
        tensors[GROUPED_NAME] = torch.tensor(readout.grouped)
        return tensors

    tensors = {name: tensor.numpy() for name, tensor in cached(f"{kind}-{digest[:24]}", key, make).items()}
    metadata = linear.settings_metadata(transform, float(tensors[C_NAME]), balanced, sklearn.__version__)
    readout = LinearReadout.from_tensors(tensors, metadata, f"the cached {kind}")
    return dataclasses.replace(readout, converged=bool(tensors[CONVERGED_NAME]), grouped=bool(tensors[GROUPED_NAME]))


def _digest(kind: str, features: np.ndarray, labels: np.ndarray, n_classes: int, groups: Sequence[str] | None,
            transform: str, balanced: bool, seed: int) -> str:
    """SHA-256 over everything a fit's outcome depends on."""
    digest = hashlib.sha256()
    settings = (kind, n_classes, transform, balanced, seed, linear.C_GRID, linear.MAX_FOLDS, linear.CV_ROWS, linear.MAX_ITER,
                linear.SPARSE_SHARE)
    digest.update(repr(settings).encode())
    digest.update(Path(linear.__file__).read_bytes())
    for array in (np.ascontiguousarray(features), np.ascontiguousarray(labels)):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(repr(None if groups is None else list(groups)).encode())
    return digest.hexdigest()
