"""A sweep's search space: which parameters to search and how, the metric and the budget.

A search-space file (docs/sweep.md) is read like a parameter file (:func:`yaml_reader.read_yaml_file`)
and checked with the same validators (:mod:`snnctl.validators`): every searched value must be
a valid value of its parameter. Ray is not needed here; :mod:`snnctl.service.sweep` runs it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnctl import config as cfg
from snnctl.config import Config
from snnctl.errors import ConfigError
from snnctl.validators import integer, one_of, positive, show
from snnctl.yaml_reader import read_yaml_file, yaml_number

KINDS = ("grid", "choice", "uniform", "loguniform")
# What ranks the trials: the validation accuracy by one of the two votes, or the balanced
# accuracy of the run's own readout (`readout`: vote or linear), for unbalanced classes.
VOTE_METRICS = ("all_activity", "proportion_weighting")
BALANCED = "balanced_accuracy"
METRICS = (*VOTE_METRICS, BALANCED)
SEARCHES = ("random", "optuna")
EARLY_STOPPING = ("asha", "none")
# A sweep keeps the data, where runs go and the device of its parameter file. seed and
# test_fraction draw the held-out test images of image folders and of the bundled MNIST
# subset: searched, trials would train on the final run's test images.
SPLIT_KEYS = ("seed", "test_fraction")
FIXED_KEYS = ("task", "data_dir", "log_dir", "name", "n_classes", "n_test", "download", "device") + SPLIT_KEYS
SETTINGS = ("parameters", "metric", "trials", "validation", "search", "early_stopping", "seed", "cpus_per_trial",
            "max_concurrent", "time_budget")
DEFAULT_TRIALS = 10
DEFAULT_VALIDATION = 1000


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: ``values`` are a grid's or a choice's values, or a range's (low, high)."""

    key: str
    kind: str
    values: tuple


@dataclass(frozen=True)
class Space:
    """A search-space file: what to search, how to score trials, and the budget."""

    dimensions: tuple[Dimension, ...]
    metric: str = "all_activity"
    trials: int | None = None  # samples to draw (None: 1 for a pure grid, else DEFAULT_TRIALS)
    validation: int = DEFAULT_VALIDATION  # training images held out to score the trials
    search: str = "random"
    early_stopping: str = "asha"
    seed: int | None = None  # of the validation split and the search (None: the parameters' seed)
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None  # None: as many trials at once as the CPUs allow
    time_budget: float | None = None  # seconds; trials still running then are stopped
    source: str = field(default="space", compare=False)

    @property
    def samples(self) -> int:
        """Ray Tune's num_samples: each sample runs every point of the grid."""
        if self.trials is not None:
            return self.trials
        return 1 if all(d.kind == "grid" for d in self.dimensions) else DEFAULT_TRIALS

    @property
    def n_trials(self) -> int:
        return self.samples * math.prod(len(d.values) for d in self.dimensions if d.kind == "grid")

    def to_dict(self) -> dict[str, Any]:
        settings = {key: getattr(self, key) for key in SETTINGS[1:]}
        return {"parameters": {d.key: {d.kind: list(d.values)} for d in self.dimensions}, **settings}


def _dimension(key: Any, spec: Any, source: str) -> Dimension:
    if not isinstance(key, str) or key not in cfg.FIELD_TYPES:
        raise cfg.unknown_key(str(key), f"{source}: parameters")
    where = f"{source}: parameters.{key}"
    if key in SPLIT_KEYS:
        raise ConfigError(f"{where}: cannot be searched: {key} draws the held-out test images of image folders "
                          f"and of the bundled MNIST subset, so trials would train on the final run's test images")
    if key in FIXED_KEYS:
        raise ConfigError(f"{where}: cannot be searched: a sweep keeps the data and its test split, the run "
                          f"directories and the device of its parameter file")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: expected one of {{grid: [...]}}, {{choice: [...]}}, {{uniform: [low, high]}}, "
                          f"{{loguniform: [low, high]}}, got {show(spec)}")
    (kind, values), = spec.items()
    one_of(kind, where, KINDS)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: {kind}: {show(values)} is empty, expected a list of values")
    if cfg.FIELD_TYPES[key] is float:
        values = [yaml_number(v) for v in values]
    if kind in ("grid", "choice"):
        return Dimension(key, kind, tuple(values))
    wanted = cfg.FIELD_TYPES[key]
    if wanted not in (int, float):
        raise ConfigError(f"{where}: {kind} needs a numeric parameter, {key} is not one; use choice or grid")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    if len(values) != 2 or not numbers:
        raise ConfigError(f"{where}: {kind}: {show(values)} is not [low, high] (two finite numbers)")
    low, high = values
    if not low < high:
        raise ConfigError(f"{where}: {kind}: the range [{low}, {high}] is empty, low must be below high")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform: low must be > 0, got {low}")
    if wanted is int and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{where}: {kind}: {key} is an integer, the bounds [{low}, {high}] must be too")
    return Dimension(key, kind, (low, high))


def space_from_mapping(document: Any, source: str) -> Space:
    """A validated Space from a parsed search-space document."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with parameters, metric and the budget, "
                          f"got {type(document).__name__}")
    for key in document:
        if key not in SETTINGS:
            raise cfg.unknown_key(str(key), source, SETTINGS)
    parameters = document.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise ConfigError(f"{source}: parameters: expected a mapping of parameters to search, got {show(parameters)}")
    dimensions = tuple(_dimension(key, spec, source) for key, spec in parameters.items())
    settings: dict[str, Any] = {}
    for key, value in document.items():
        where = f"{source}: {key}"
        if key == "parameters" or value is None:
            continue
        if key == "metric":
            settings[key] = one_of(value, where, METRICS)
        elif key == "search":
            settings[key] = one_of(value, where, SEARCHES)
        elif key == "early_stopping":
            # `none` is a string in YAML 1.1, `off` and `false` are booleans: all three mean none
            settings[key] = one_of("none" if value is False else value, where, EARLY_STOPPING)
        elif key in ("trials", "validation", "max_concurrent"):
            settings[key] = integer(value, where, 1)
        elif key == "seed":
            settings[key] = integer(value, where, 0)
        else:  # cpus_per_trial, time_budget
            settings[key] = positive(value, where)
    space = Space(dimensions, source=source, **settings)
    grids = [d.key for d in dimensions if d.kind == "grid"]
    if space.search == "optuna" and grids:
        raise ConfigError(f"{source}: parameters.{grids[0]}: search optuna does not take a grid, use choice")
    return space


def load_space(path: str | Path) -> Space:
    """Read and validate a search-space file (YAML, read by :func:`yaml_reader.parse_yaml`)."""
    return space_from_mapping(read_yaml_file(path, "search-space file"), str(path))


def check_space(space: Space, config: Config) -> None:
    """Every grid and choice value, and both ends of every range, must be valid in ``config``."""
    for dimension in space.dimensions:
        for value in dimension.values:
            cfg.validate(dataclasses.replace(config, **{dimension.key: value}), f"{space.source}: parameters")


def native(value: Any) -> Any:
    """A Python scalar for a numpy one (what Tune samples), as Config and YAML want."""
    return value.item() if hasattr(value, "item") else value


def trial_config(base: Config, sampled: dict[str, Any]) -> Config:
    """``base`` with a trial's values, validated together (wmin below wmax, ...)."""
    changes = {key: native(value) for key, value in sampled.items()}
    return cfg.validate(dataclasses.replace(base, **changes), "trial")
