"""Hyperparameter sweeps on Ray Tune: the search space, the trials, resume and results.

A sweep is many independent training runs, which is work that outgrows one machine, so
it runs on Ray Tune: on this machine's cores (Ray started locally) or on an existing Ray
cluster. Each trial is an ordinary :func:`snnctl.service.train` run with its own run
directory, trained on the training images less a validation part (the same for every
trial) and scored on that part; the test images are never run by a trial. The best
configuration is then trained once more on the full training split and tested on the
test images. docs/sweep.md describes the search-space file and the sweep directory.

Its unit of work is :func:`snnctl.service.train.train`; the search space is read and
checked by :mod:`snnctl.space`. Ray (and Optuna) are imported only inside the functions
that run a sweep, so ``snnctl --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnctl import config as cfg
from snnctl import space as spaces
from snnctl.config import Config
from snnctl.errors import ConfigError, SnnctlError
from snnctl.files import write_atomic
import snnctl.service.lockstep as lockstep
from snnctl.service.cluster import RayInterrupted, error_line, ray_session, run_on_tune
from snnctl.service.common import (Accuracy, Interrupted, Notice, OnProgress, ProgressUpdate, Result, new_directory,
                                   no_progress, quiet, read_state, with_absolute_data_paths, write_state)
from snnctl.service.train import TrainResult, train_in
from snnctl.service.validation import Validation, validation_splits
from snnctl.space import Dimension, Space
from snnctl.validators import integer

STATE_NAME = "sweep.json"  # what the sweep is: parameters, space, validation split (for --resume)
RESULT_NAME = "result.json"  # the finished sweep's result, as --json prints it
BEST_NAME = "best.yaml"  # the best configuration, a parameter file for snnctl train
RUNS_DIR = "runs"  # one run directory per trial, and the final run: TensorBoard's logdir
FINAL_RUN = "best"  # runs/best: the best configuration on the full training split
TUNE_DIR = "tune"  # Ray Tune's experiment state
RAY_LOG = "ray.log"  # what Ray and Tune print while the trials run
STATE_FORMAT = "snnctl-sweep"
STATE_VERSION = 1

# What a trial reports to Tune. SCORE is what the search maximizes: the running training
# accuracy while a trial trains (the scheduler's early stopping looks at it at fractions
# PROGRESS of the training), then the validation accuracy by the sweep's vote at the end.
# The final report carries no PROGRESS, so early stopping only ever compares running
# accuracies, and the best trial is chosen among the finished ones by validation accuracy.
SCORE = "score"
PROGRESS = "progress"
RUNNING = "running_accuracy"
VALIDATION = {metric: f"validation_{metric}" for metric in spaces.METRICS}
# ASHA looks at each trial after a quarter and after half of its training and stops
# those in the lower half of the trials that got there before it.
ASHA_GRACE = 0.25
ASHA_REDUCTION = 2


def _tune_domain(dimension: Dimension) -> Any:
    from ray import tune

    values = list(dimension.values)
    if dimension.kind == "grid":
        return tune.grid_search(values)
    if dimension.kind == "choice":
        return tune.choice(values)
    low, high = values
    if cfg.FIELD_TYPES[dimension.key] is int:  # both ends included
        sample = tune.randint if dimension.kind == "uniform" else tune.lograndint
        return sample(int(low), int(high) + 1)
    return (tune.uniform if dimension.kind == "uniform" else tune.loguniform)(low, high)


# ---------------------------------------------------------------- one trial


def _trial(sampled: dict, *, base: dict, validation: tuple[int, int, int | None], metric: str,
           runs_dir: str) -> None:
    """One trial, in a Ray worker: an ordinary training run in ``runs_dir/<trial id>``,
    scored on the validation images; with validation folds, one run per fold in
    ``runs_dir/<trial id>/fold-K``, scored by their mean. Reports each running accuracy
    as training measures it, then the validation accuracy. A trial restarted by --resume
    continues its own runs from their checkpoints."""
    from ray import tune

    # trials run side by side on the CPUs Ray reserves for each: one inference thread per
    # trial; the pixel baseline is the same for every trial, so none fits it
    config = spaces.trial_config(cfg.from_mapping(base, STATE_NAME), sampled).replace(workers="1", baseline=False)
    run_dir = Path(runs_dir) / tune.get_context().get_trial_id()
    size, seed, folds = validation
    splits = [Validation(size, seed)] if folds is None else [Validation(size, seed, folds, k) for k in range(folds)]
    last: dict[str, float] = {}

    def reporter(index: int) -> OnProgress:
        def report(update: ProgressUpdate) -> None:
            # The scheduler must not stop a trial on the measurement that ends training:
            # only its validation accuracy, reported next, decides.
            if update.measured and update.done < update.total:
                last[RUNNING] = update.running_accuracy
                tune.report({SCORE: update.running_accuracy, RUNNING: update.running_accuracy,
                             PROGRESS: (index + update.done / update.total) / len(splits)})

        return report

    directories = [run_dir if folds is None else run_dir / f"fold-{index}" for index in range(len(splits))]
    if lockstep.in_lockstep(config):
        # the trial's runs (one per fold) learn in lockstep; the scheduler hears their validation score only
        results = lockstep.run_in_lockstep(config, [functools.partial(train_in, directory, lockstep.run_config(config),
                                                                      validation=split)
                                                    for directory, split in zip(directories, splits)], "sweep")
    else:
        results = [train_in(directory, config, validation=split, on_progress=reporter(index))
                   for index, (directory, split) in enumerate(zip(directories, splits))]
    # on the validation images (held_out == "validation"); with folds, their mean
    mean = {vote: statistics.fmean(getattr(r.test_accuracy, vote) for r in results) for vote in spaces.VOTE_METRICS}
    mean[spaces.BALANCED] = statistics.fmean(r.evaluation.balanced_accuracy for r in results)
    tune.report({SCORE: mean[metric], **{VALIDATION[vote]: value for vote, value in mean.items()},
                 "n_validation": results[0].n_test, "samples_seen": sum(r.samples_seen for r in results), **last})


def _trial_dirname(trial: Any) -> str:
    """Tune's directory of a trial is named by its id, as its run directory is."""
    return trial.trial_id


# ---------------------------------------------------------------- results


@dataclass
class Trial(Result):
    trial: str  # Ray Tune's trial id, also the name of its run directory
    status: str  # "finished", "stopped early" (by ASHA or the time budget), "not run", "error"
    parameters: dict[str, Any]  # the searched values
    validation_accuracy: Accuracy | None  # on the validation images (finished trials)
    running_accuracy: float | None  # the last training-time estimate (all-activity vote)
    run_dir: str
    error: str | None = None
    # the balanced accuracy of the run's readout (vote or linear) on the validation images
    validation_balanced_accuracy: float | None = None

    def score(self, metric: str) -> float | None:
        """The validation figure ``metric`` (one of :data:`snnctl.space.METRICS`) ranks by."""
        if metric == spaces.BALANCED:
            return self.validation_balanced_accuracy
        return getattr(self.validation_accuracy, metric) if self.validation_accuracy else None


@dataclass
class SweepResult(Result):
    sweep_dir: str
    metric: str  # the validation accuracy by this vote ranks the trials
    search: str
    early_stopping: str
    ray: str  # where the trials ran
    n_validation: int  # training images held out to score the trials (with folds: in the first fold)
    validation_seed: int
    trials: list[Trial]  # best first: finished by the metric, then stopped, then failed
    best_trial: str
    best_parameters: dict[str, Any]
    best_validation_accuracy: Accuracy  # of the best trial, on the validation images
    best_parameters_file: str  # the whole best configuration, for snnctl train
    final: TrainResult  # the best configuration on the full training split, on the test images
    tensorboard_logdir: str
    # Trials scored by cross-validation on this many folds of the training images (sweep --folds).
    validation_folds: int | None = None
    # of the best trial's readout (the parameters' `readout`), on the validation images
    best_validation_balanced_accuracy: float | None = None
    readout: str = "vote"  # the readout whose balanced accuracy metric balanced_accuracy ranks by


def metric_name(metric: str, readout: str) -> str:
    """What ranks the trials, in words: "accuracy (all activity vote)", "balanced accuracy (linear readout)"."""
    if metric == spaces.BALANCED:
        return f"balanced accuracy ({readout} readout)"
    return f"accuracy ({metric.replace('_', ' ')} vote)"


def _trials(grid: Any, space: Space, runs_dir: Path) -> list[Trial]:
    rows = []
    for result in grid:
        trial_id = Path(result.path).name
        metrics = result.metrics or {}
        parameters = {d.key: spaces.native((result.config or {}).get(d.key)) for d in space.dimensions}
        validation = None
        if VALIDATION["all_activity"] in metrics:
            validation = Accuracy(metrics[VALIDATION["all_activity"]],
                                          metrics[VALIDATION["proportion_weighting"]])
        if result.error is not None:
            status = "error"
        elif validation is not None:
            status = "finished"
        else:  # stopped by ASHA or the time budget, or (time budget) never started
            status = "stopped early" if SCORE in metrics else "not run"
        rows.append(Trial(trial_id, status, parameters, validation, metrics.get(RUNNING), str(runs_dir / trial_id),
                          error_line(result.error) if result.error is not None else None,
                          metrics.get(VALIDATION[spaces.BALANCED])))
    order = {"finished": 0, "stopped early": 1, "not run": 2, "error": 3}

    def rank(row: Trial) -> tuple:
        value = row.score(space.metric) if row.validation_accuracy else row.running_accuracy
        return order[row.status], -(value if value is not None else -1.0), row.trial

    return sorted(rows, key=rank)


def _tuner(trainable: Any, storage: str, *, space: Space, validation: Validation) -> Any:
    """A new Tune experiment of the sweep in ``storage``: its search, early stopping and
    budget (the ``make_tuner`` of :func:`~snnctl.service.cluster.run_on_tune`)."""
    from ray import tune

    if space.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=validation.seed))
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        searcher = BasicVariantGenerator(max_concurrent=space.max_concurrent or 0, random_state=validation.seed)
    scheduler = None
    if space.early_stopping == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr=PROGRESS, max_t=1.0, grace_period=ASHA_GRACE,
                                  reduction_factor=ASHA_REDUCTION)
    return tune.Tuner(
        trainable,
        param_space={d.key: _tune_domain(d) for d in space.dimensions},
        tune_config=tune.TuneConfig(metric=SCORE, mode="max", search_alg=searcher, scheduler=scheduler,
                                    num_samples=space.samples,
                                    # Tune limits a Searcher (Optuna); the random search limits itself
                                    max_concurrent_trials=space.max_concurrent if space.search == "optuna" else None,
                                    time_budget_s=space.time_budget, trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name=TUNE_DIR, storage_path=storage),
    )


# ---------------------------------------------------------------- the sweep


def _write_state(sweep_dir: Path, config: Config, space: Space, validation: Validation) -> None:
    write_state(sweep_dir / STATE_NAME, STATE_FORMAT, STATE_VERSION, {
        "parameters": config.to_dict(), "space": space.to_dict(),
        "validation": {"size": validation.size, "seed": validation.seed, "folds": validation.folds}})


def _read_state(sweep_dir: Path) -> tuple[Config, Space, Validation]:
    path = sweep_dir / STATE_NAME
    state = read_state(path, STATE_FORMAT, STATE_VERSION, "sweep")
    try:
        config = cfg.from_mapping(state["parameters"], f"{path}: parameters")
        space = spaces.space_from_mapping(state["space"], f"{path}: space")
        validation = Validation(state["validation"]["size"], state["validation"]["seed"],
                                state["validation"].get("folds"))
    except (KeyError, TypeError, AttributeError, ConfigError) as exc:
        raise SnnctlError(f"{path}: not a readable sweep state ({exc})") from None
    return config, space, validation


def _final_run(config: Config, run_dir: Path, sweep_dir: Path, notice: Notice,
               on_progress: OnProgress) -> TrainResult:
    """The best configuration on the full training split, tested on the test images."""
    try:
        return train_in(run_dir, config, notice=notice, on_progress=on_progress)
    except Interrupted as exc:
        raise RayInterrupted(f"sweep interrupted while training the best configuration (checkpoint saved); "
                             f"continue with: snnctl sweep --resume {sweep_dir}", exc.exit_code) from None


def _set_up(config: Config | None, space: Space | str | Path | None, trials: int | None, folds: int | None,
            out: Path | None, resume: Path | None) -> tuple[Config, Space, Validation, Path]:
    """A new sweep's parameters, space, validation split and directory (not yet created),
    all checked; or those of the sweep in ``resume``, as it was set up."""
    if resume is not None:
        if config is not None or space is not None or trials is not None or folds is not None or out is not None:
            raise ConfigError("sweep: --resume SWEEP_DIR continues a sweep as it was set up, "
                              "without PARAMS, SPACE, --trials, --folds or --out")
        sweep_dir = Path(resume).resolve()
        return (*_read_state(sweep_dir), sweep_dir)
    if config is None or space is None:
        raise ConfigError("sweep: give a parameter file and a search space, or --resume SWEEP_DIR")
    if not isinstance(space, Space):
        space = spaces.load_space(space)
    if trials is not None:
        space = dataclasses.replace(space, trials=integer(trials, "--trials", 1))
    spaces.check_space(space, config)
    from snnctl import engine as engines

    if lockstep.in_lockstep(config):
        lockstep.check(config, "sweep")
    else:  # Ray hides the GPUs from a trial that reserved none
        engines.require_cpu(config, f"sweep trials run on the CPUs Ray reserves for them ({space.source}: cpus_per_trial)")
    config = with_absolute_data_paths(config)
    sweep_dir = new_directory(config, out, prefix="sweep-",
                              remedy=f"give another --out, or continue a sweep with --resume {out}").resolve()
    if folds is not None:
        folds = integer(folds, "--folds", 2)
    validation = Validation(space.validation, config.seed if space.seed is None else space.seed, folds,
                            None if folds is None else 0)
    return config, space, validation, sweep_dir


def sweep(config: Config | None = None, space: Space | str | Path | None = None, *, trials: int | None = None,
          folds: int | None = None, out: Path | None = None, resume: Path | None = None, address: str | None = None,
          notice: Notice = quiet, on_progress: OnProgress = no_progress) -> SweepResult:
    """Search ``space`` (a Space or a search-space file; ``trials`` overrides its budget)
    around ``config`` on Ray Tune: trials are training runs scored on a validation split
    of the training images; then train the best configuration on the full training split
    and test it. With ``folds``, each trial is scored by cross-validation: the mean over
    ``folds`` grouped folds of the training images. Or continue the sweep in ``resume``
    as it was set up. ``address``: a Ray
    cluster ("auto", "ray://HOST:PORT"); by default Ray starts on this machine.

    Everything is checked (space, parameters, data, validation size, Ray's address)
    before the sweep directory is created.
    """
    config, space, validation, sweep_dir = _set_up(config, space, trials, folds, out, resume)
    # the data is there and the validation split fits; n_validation: its stratified size
    n_validation = len(validation_splits(config, validation, notice).test)
    from ray import tune

    with ray_session(address) as where:
        if resume is None:
            (sweep_dir / RUNS_DIR).mkdir(parents=True)
            _write_state(sweep_dir, config, space, validation)
        notice(f"sweep: {space.n_trials} trials on Ray ({where}); Ray's log: {sweep_dir / RAY_LOG}; "
               f"compare the runs with: tensorboard --logdir {sweep_dir / RUNS_DIR}")
        trainable = tune.with_parameters(_trial, base=config.to_dict(),
                                         validation=(validation.size, validation.seed, validation.folds),
                                         metric=space.metric, runs_dir=str(sweep_dir / RUNS_DIR))
        grid = run_on_tune(trainable, make_tuner=functools.partial(_tuner, space=space, validation=validation),
                           cpus_per_trial=space.cpus_per_trial, gpus_per_trial=lockstep.gpus_per_run(config),
                           directory=sweep_dir, name=TUNE_DIR,
                           log=sweep_dir / RAY_LOG, what="sweep", resume_hint=f"snnctl sweep --resume {sweep_dir}")
    ranked = _trials(grid, space, sweep_dir / RUNS_DIR)
    best = ranked[0] if ranked else None
    if best is None or best.status != "finished":
        failed = next((t for t in ranked if t.error), None)
        reason = f"; first error: {failed.error}" if failed else ""
        raise SnnctlError(f"sweep: no trial finished ({len(ranked)} trials){reason}; see {sweep_dir / RAY_LOG}")

    best_config = spaces.trial_config(config, best.parameters)
    header = (f"# The best configuration of the sweep in {sweep_dir} (trial {best.trial}):\n"
              f"# validation {metric_name(space.metric, config.readout)} {best.score(space.metric):.2%} "
              f"({n_validation} training images held out).\n")
    best_file = sweep_dir / BEST_NAME
    write_atomic(best_file, (header + cfg.dump_yaml(best_config)).encode())
    notice(f"sweep: training the best configuration on the full training split ({best_file})")
    # one network: on the fast engine (a lockstep group of one would only be slower)
    final = _final_run(lockstep.run_config(best_config) if lockstep.in_lockstep(best_config) else best_config,
                       sweep_dir / RUNS_DIR / FINAL_RUN, sweep_dir, notice, on_progress)
    result = SweepResult(
        sweep_dir=str(sweep_dir), metric=space.metric, search=space.search, early_stopping=space.early_stopping,
        ray=where, n_validation=n_validation, validation_seed=validation.seed, trials=ranked, best_trial=best.trial,
        best_parameters=best.parameters, best_validation_accuracy=best.validation_accuracy,
        best_validation_balanced_accuracy=best.validation_balanced_accuracy,
        best_parameters_file=str(best_file), final=final, tensorboard_logdir=str(sweep_dir / RUNS_DIR),
        validation_folds=validation.folds, readout=config.readout,
    )
    write_atomic(sweep_dir / RESULT_NAME, (json.dumps(result.to_dict(), indent=2, default=str) + "\n").encode())
    return result
