"""The service layer: every command of the CLI is one function here, usable from Python.

    from snnctl import config, service
    result = service.train(config.load("parameters/mnist.yaml"))
    report = service.evaluate(result.checkpoint)

Each function takes a config or a checkpoint path and returns a result (a dataclass
whose ``to_dict()`` is what ``--json`` prints). Progress and notices go through
callbacks, never to stdout. One module per command or phase: :mod:`.train`,
:mod:`.checkpoints` (evaluate, assign, inspect), :mod:`.figures`, :mod:`.export`,
:mod:`.sweep`, :mod:`.runs` (the newest finished run); :mod:`.common` holds what they share.
"""

from snnctl.service.checkpoints import (AssignResult, EvaluationResult, InspectResult, TensorSummary, assign,
                                        evaluate, inspect)
from snnctl.service.common import (STATUS_NAME, Accuracy, Interrupted, Notice, OnProgress, ProgressUpdate, Result,
                                   no_progress, quiet, spike_counts)
from snnctl.service.export import ExportResult, export
from snnctl.service.figures import FIGURES, FigureResult, visualize
from snnctl.service.runs import checkpoint_or_latest, finished_checkpoints
from snnctl.service.sweep import SweepInterrupted, SweepResult, Trial, sweep
from snnctl.service.train import TrainResult, Validation, train, validation_splits

__all__ = [
    "STATUS_NAME", "FIGURES", "Accuracy", "AssignResult", "EvaluationResult", "ExportResult", "FigureResult",
    "InspectResult", "Interrupted", "Notice", "OnProgress", "ProgressUpdate", "Result", "SweepInterrupted",
    "SweepResult", "TensorSummary", "TrainResult", "Trial", "Validation", "assign", "checkpoint_or_latest", "evaluate",
    "export", "finished_checkpoints", "inspect",
    "no_progress", "quiet", "spike_counts", "sweep", "train", "validation_splits", "visualize",
]
