"""``snnctl inspect``: what a checkpoint holds, read without torch so that it answers at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from snnctl import checkpoint as ckpt
from snnctl.service.common import Result

if TYPE_CHECKING:
    from snnctl.readout import LinearReadout


@dataclass
class TensorSummary:
    name: str
    shape: list[int]
    dtype: str
    mean: float
    std: float
    min: float
    max: float


@dataclass
class InspectResult(Result):
    checkpoint: str
    format_version: int
    model: str
    parameters: dict
    classes: list[str]
    samples_seen: int
    epochs: int
    finished: bool
    has_labels: bool
    neurons_per_class: dict[str, int] | None
    unassigned: int | None
    tensors: list[TensorSummary]
    info: dict
    versions: dict
    created: str
    # What a resume or an evaluation would not expect (weights outside [wmin, wmax]).
    warnings: list[str]
    # The linear readout: classes, features, transform, C, balanced (None: the checkpoint has none).
    readout: dict | None = None


def inspect(checkpoint_path: Path) -> InspectResult:
    """What a checkpoint (a file, or a run directory's) holds, summarized from the arrays as
    stored (``checkpoint.read``: NumPy, no copy into torch)."""
    checkpoint_path = ckpt.locate(checkpoint_path)
    stored = ckpt.read(checkpoint_path)
    summaries = []
    for name in sorted(stored.arrays):
        array = stored.arrays[name].astype(np.float64)
        summaries.append(TensorSummary(name, list(array.shape), str(stored.arrays[name].dtype),
                                       float(array.mean()) if array.size else 0.0,
                                       float(array.std()) if array.size else 0.0,
                                       float(array.min()) if array.size else 0.0,
                                       float(array.max()) if array.size else 0.0))
    assignments = stored.arrays.get("labels.assignments")
    per_class = unassigned = None
    if assignments is not None:
        counts = np.bincount(assignments[assignments >= 0], minlength=len(stored.class_names))
        per_class = dict(zip(stored.class_names, counts.tolist()))
        unassigned = int((assignments < 0).sum())
    return InspectResult(
        checkpoint=str(checkpoint_path), format_version=stored.format_version, model=stored.config.model,
        parameters=stored.config.to_dict(), classes=stored.class_names,
        samples_seen=stored.progress.samples_seen, epochs=stored.progress.epoch, finished=stored.progress.finished,
        has_labels=assignments is not None, neurons_per_class=per_class, unassigned=unassigned,
        tensors=summaries, info=stored.info, versions=stored.versions, created=stored.created,
        warnings=ckpt.weights_outside_range(stored.arrays, stored.config),
        readout=_readout_summary(stored.readout),
    )


def _readout_summary(linear: "LinearReadout | None") -> dict | None:
    if linear is None:
        return None
    return {"classes": linear.n_classes, "features": linear.n_features, "transform": linear.transform,
            "C": linear.C, "balanced": linear.balanced, "sklearn_version": linear.sklearn_version}
