"""The service layer: every command of the CLI is one function here, usable from Python.

    from snnctl import config, service
    result = service.train(config.load("parameters/mnist.yaml"))
    report = service.evaluate(result.checkpoint)

Each function takes a config or a checkpoint path and returns a result (a dataclass
whose ``to_dict()`` is what ``--json`` prints). Progress and notices go through
callbacks, never to stdout. One module per command or phase: :mod:`.train`,
:mod:`.run_start` (where a run starts), :mod:`.checkpoints` (evaluate), :mod:`.relabel`
(assign), :mod:`.inspection` (inspect), :mod:`.figures`, :mod:`.export`,
:mod:`.sweep`, :mod:`.studies` (k-fold cross-validation), :mod:`.runs` (the newest finished
run); :mod:`.common` holds what they share, :mod:`.cluster` the one path to Ray (sweeps and
studies), :mod:`.readouts` the readouts' fitting and scoring (``Scores``).
"""

from snnctl.service.checkpoints import EvaluationResult, evaluate
from snnctl.service.cluster import RayInterrupted
from snnctl.service.common import (STATUS_NAME, Accuracy, Interrupted, Notice, OnProgress, ProgressUpdate, Result,
                                   no_progress, quiet, spike_counts)
from snnctl.service.export import ExportResult, export
from snnctl.service.readouts import Scores
from snnctl.service.relabel import AssignResult, assign
from snnctl.service.figures import FIGURES, FigureResult, visualize
from snnctl.service.inspection import InspectResult, TensorSummary, inspect
from snnctl.service.runs import checkpoint_or_latest, finished_checkpoints
from snnctl.service.studies import Fold, StudyResult, Summary, is_study, study
from snnctl.service.sweep import SweepResult, Trial, sweep
from snnctl.service.run_start import with_parameters
from snnctl.service.train import TrainResult, train
from snnctl.service.validation import Validation, validation_splits

__all__ = [
    "STATUS_NAME", "FIGURES", "Accuracy", "AssignResult", "EvaluationResult", "ExportResult", "FigureResult",
    "Fold", "InspectResult", "Interrupted", "Notice", "OnProgress", "ProgressUpdate", "Result", "RayInterrupted",
    "Scores", "StudyResult", "Summary", "SweepResult", "TensorSummary", "TrainResult", "Trial", "Validation", "assign",
    "checkpoint_or_latest", "evaluate", "export", "finished_checkpoints", "inspect", "is_study", "no_progress",
    "quiet", "spike_counts", "study", "sweep", "train", "validation_splits", "visualize", "with_parameters",
]
