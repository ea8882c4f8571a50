"""``train --folds K``: a cross-validation study, K ordinary runs under one directory.

Each fold is an ordinary training run (its own checkpoint, split.json and TensorBoard
run) that holds out one of K grouped, stratified folds of the data
(:func:`snnctl.data.groups.split_for`) and is then evaluated on it; its figures are kept
in ``fold.json`` in its run directory. The study's table gives every fold's figures and
their mean, standard deviation and a 95% t-interval of the mean, as ``study.csv``, in
``result.json`` (what ``--json`` prints) and in TensorBoard. ``--resume`` runs only the
folds without a ``fold.json``, continuing a fold from its checkpoint. Folds run one
after another in this process, or in parallel on Ray (this machine's cores or a cluster,
through :mod:`snnctl.service.cluster`, the path sweeps take). docs/mammo.md walks
through a study.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnctl import config as cfg
from snnctl.config import Config
from snnctl.errors import SnnctlError
from snnctl.files import read_versioned_json, write_atomic
from snnctl.readout.activity import mostly_in_lockstep, mostly_silent
from snnctl.service.cluster import error_line, ray_session, run_on_tune
import snnctl.service.lockstep as lockstep
from snnctl.service.common import Interrupted, Notice, OnProgress, Result, no_progress, quiet, write_state
from snnctl.service.study_setup import (STATE_NAME, check_same_images, each_once, image_files_of,
                                        notice_classes_short_of_folds, set_up, write_study_state)
from snnctl.service.train import train_in

RESULT_NAME = "result.json"  # the finished study's result, as --json prints it
TABLE_NAME = "study.csv"  # the table: one row per fold, then mean, sd and the interval's ends
FOLD_NAME = "fold.json"  # in each fold's run directory once it is evaluated
RUNS_DIR = "runs"  # one run directory per fold, and the table's run: TensorBoard's logdir
TABLE_RUN = "study"  # runs/study: the table as TensorBoard text and scalars
TUNE_DIR = "tune"
RAY_LOG = "ray.log"
FOLD_FORMAT = "snnctl-study-fold"
FOLD_VERSION = 1
# Leaves of an evaluation's result that are not figures of merit.
NOT_METRICS = {"samples_per_second", "level"}
CHANCE = "scores/chance"
# A linear readout study's control: the same readout of each fold's layer before learning.
UNTRAINED = "untrained"
LOCKSTEP = "layer/lockstep_share"  # of the neurons that fired on the fold's training images (snnctl.readout.activity)
SILENT = "layer/silent_share"  # of the neurons, those that never fired on the fold's training images
# Every figure of a fold is a proportion (accuracy, precision, recall, AUC, a share of neurons).
PROPORTION = (0.0, 1.0)


@dataclass
class Fold(Result):
    fold: int  # 0..K-1: the fold this run held out
    run_dir: str
    checkpoint: str
    n_train: int
    n_test: int
    metrics: dict[str, float]  # flattened figures of the evaluation: "balanced_accuracy", "per_class/benign/recall", ...


@dataclass
class Summary(Result):
    mean: float
    sd: float  # sample standard deviation over the folds (n - 1)
    low: float  # 95% t-interval of the mean over the folds
    high: float


@dataclass
class StudyResult(Result):
    study_dir: str
    folds: int
    ran_on: str  # where the folds ran
    per_fold: list[Fold]
    summary: dict[str, Summary]  # per metric, over the folds
    table_file: str
    tensorboard_logdir: str
    readout: str  # the readout the study reports first: "vote" or "linear"
    verdict: str | None  # when that readout is not clearly above chance and the pixel baseline, in words


def metrics_of(document: Any, prefix: str = "") -> dict[str, float]:
    """The float leaves of an evaluation's ``to_dict()``, by path ("accuracy/all_activity");
    a list of per-class entries is keyed by their names. Counts (ints), text and speed are
    left out, so whatever figures an evaluation gains appear in the table."""
    found: dict[str, float] = {}
    if isinstance(document, dict):
        for key, value in document.items():
            if key not in NOT_METRICS:
                found.update(metrics_of(value, f"{prefix}{key}/"))
    elif isinstance(document, list) and all(isinstance(item, dict) and "name" in item for item in document):
        for item in document:
            found.update(metrics_of({k: v for k, v in item.items() if k != "name"}, f"{prefix}{item['name']}/"))
    elif isinstance(document, float) and math.isfinite(document):
        found[prefix.rstrip("/")] = document
    return found


def summarize(values: list[float], within: tuple[float, float] | None = None) -> Summary:
    """Mean, sample standard deviation and the 95% t-interval of the mean (Student),
    its ends kept ``within`` the range the figure can take: over five folds a precision
    of 0, 0.33, 0.5, 0, 0.5 has a t-interval from -0.05, which no precision can be."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return Summary(mean, float("nan"), float("nan"), float("nan"))
    sd = statistics.stdev(values)
    half = stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values))
    low, high = mean - half, mean + half
    if within is not None:
        low, high = max(low, within[0]), min(high, within[1])
    return Summary(mean, sd, low, high)


def readout_key(readout: str) -> str:
    """The figure a study judges a readout (or the pixel baseline) by: its balanced accuracy."""
    return f"scores/{readout}/balanced_accuracy"


def verdict(per_fold: list[Fold], readout: str) -> str | None:
    """One plain sentence when the study's ``readout`` is, over its folds, not above
    chance (1 / classes) by more than the 95% t-interval of its mean balanced accuracy,
    or below the pixel baseline or its own layer before learning (the untrained control of
    a linear readout study), or not distinguishable from either (the folds paired: the
    t-interval of the mean difference includes 0); and when it read a layer that stayed
    silent or fired in lockstep. None when it is clearly above both from a layer neither
    silent nor in lockstep, or with fewer than two folds to judge by."""
    network = [fold.metrics.get(readout_key(readout)) for fold in per_fold]
    if len(per_fold) < 2 or None in network:
        return None
    chance = statistics.fmean(fold.metrics[CHANCE] for fold in per_fold)
    said = []
    mean = summarize(network, PROPORTION)
    if mean.mean <= chance:
        said.append(f"no better than chance (mean balanced accuracy {mean.mean:.3f} over {len(network)} folds, "
                    f"chance {chance:.3f})")
    elif mean.low <= chance:
        said.append(f"not distinguishable from chance (mean balanced accuracy {mean.mean:.3f} over {len(network)} "
                    f"folds; its 95% interval, {mean.low:.3f} to {mean.high:.3f}, includes chance, {chance:.3f})")
    for other, name in (("baseline", "the pixel baseline"), (UNTRAINED, "its own layer before learning")):
        compared = _compared(network, [fold.metrics.get(readout_key(other)) for fold in per_fold], name)
        if compared is not None:
            said.append(compared)
    silent = sum(mostly_silent(fold.metrics.get(SILENT, 0.0)) for fold in per_fold)
    if silent:
        said.append(f"read from a layer that stayed silent in {silent} of {len(per_fold)} folds (nearly no neuron "
                    f"fired on the training images, so STDP learned next to nothing; stronger input, intensity)")
    in_lockstep = sum(mostly_in_lockstep(fold.metrics.get(LOCKSTEP, 0.0)) for fold in per_fold)
    if in_lockstep:
        said.append(f"read from a layer that fired in lockstep in {in_lockstep} of {len(per_fold)} folds (one "
                    f"feature, not one per neuron; neurons compete with one_spike: winner, or weaker input)")
    return f"the network ({readout} readout) is " + "; and ".join(said) if said else None


def _compared(network: list[float], other: list[float | None], name: str) -> str | None:
    """A clause when the ``network``'s balanced accuracy over the folds is below ``other``'s
    (the folds paired) or not distinguishable from it (the 95% t-interval of the mean
    difference includes 0); None when it is clearly above, or ``other`` is missing."""
    if None in other:
        return None
    difference = summarize([n - o for n, o in zip(network, other)])
    below = sum(n < o for n, o in zip(network, other))
    paired = (f"{statistics.fmean(network):.3f} against {statistics.fmean(other):.3f} mean balanced accuracy; below "
              f"it in {below} of {len(network)} folds, the mean difference {difference.mean:+.3f}, 95% interval "
              f"{difference.low:+.3f} to {difference.high:+.3f}")
    if difference.mean < 0:
        return f"below {name} ({paired})"
    if difference.low <= 0:
        return f"not distinguishable from {name} ({paired})"
    return None


# ---------------------------------------------------------------- one fold


def fold_dir(runs_dir: Path, fold: int) -> Path:
    return runs_dir / f"fold-{fold}"


def run_fold(config: Config, fold: int, runs_dir: Path, notice: Notice = quiet,
             on_progress: OnProgress = no_progress) -> Fold:
    """Fold ``fold`` of the study: trained (or continued from its checkpoint) holding out
    that fold, evaluated on it, its figures written to ``fold.json``; read back when the
    file is there already."""
    run_dir = fold_dir(runs_dir, fold)
    done = run_dir / FOLD_NAME
    if done.exists():
        return _read_fold(done)
    # training tests the fold and reports what evaluate would: its images are not run again
    trained = train_in(run_dir, config.replace(fold=fold), notice=notice, on_progress=on_progress)
    metrics = metrics_of(trained.evaluation.to_dict())
    if config.readout == "linear":
        metrics.update(_untrained_control(Path(trained.checkpoint), notice))
    if trained.activity is not None:
        metrics[LOCKSTEP] = trained.activity.lockstep_share
        metrics[SILENT] = trained.activity.silent_share
    result = Fold(fold, str(run_dir), trained.checkpoint, trained.n_train, trained.n_test, metrics)
    write_state(done, FOLD_FORMAT, FOLD_VERSION, result.to_dict())
    return result


def _untrained_control(checkpoint: Path, notice: Notice) -> dict[str, float]:
    """The fold's control: the layer its training started from, labelled and read out as
    the trained one (:func:`snnctl.service.relabel.assign` with ``untrained``); its
    linear readout's figures under ``scores/untrained/``."""
    from snnctl.service.relabel import assign

    control = assign(checkpoint, readout="linear", untrained=True, force=True, notice=notice)
    return metrics_of(control.to_dict()["scores"]["linear"], f"scores/{UNTRAINED}/")


def _read_fold(path: Path) -> Fold:
    document = read_versioned_json(path, FOLD_FORMAT, FOLD_VERSION, "study fold")
    try:
        return Fold(int(document["fold"]), str(document["run_dir"]), str(document["checkpoint"]),
                    int(document["n_train"]), int(document["n_test"]),
                    {str(k): float(v) for k, v in document["metrics"].items()})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnnctlError(f"{path}: not a readable study fold ({exc})") from None


def _fold_trial(sampled: dict, *, base: dict, runs_dir: str) -> None:
    """One fold in a Ray worker (the trainable of :func:`snnctl.service.cluster.run_on_tune`)."""
    from ray import tune

    # folds run side by side on one CPU each: one inference thread per fold
    config = cfg.from_mapping(base, STATE_NAME).replace(workers="1")
    fold = run_fold(config, int(sampled["fold"]), Path(runs_dir))
    tune.report({"balanced_accuracy": fold.metrics.get("balanced_accuracy", 0.0)})


# ---------------------------------------------------------------- the study


def _on_ray(address: str | None, concurrent_folds: int | None) -> bool:
    """Folds run on Ray unless ``concurrent_folds`` is 1 and no cluster is named."""
    return address is not None or concurrent_folds != 1


def _run_folds(config: Config, pending: list[int], study_dir: Path, address: str | None, concurrent_folds: int | None,
               notice: Notice, on_progress: OnProgress) -> str:
    """Run the ``pending`` folds: one after another here with ``concurrent_folds`` 1 and no
    ``address``, else on Ray; returns where they ran."""
    runs_dir = study_dir / RUNS_DIR
    if lockstep.in_lockstep(config):
        lockstep.run_in_lockstep(config, [functools.partial(run_fold, lockstep.run_config(config), fold, runs_dir, notice)
                                          for fold in pending], "study", notice)
        return f"this process, {config.networks_per_device} folds at a time in lockstep on {lockstep.group_device(config)}"
    if not _on_ray(address, concurrent_folds):
        for fold in pending:
            notice(f"study: fold {fold + 1} of {config.folds}")
            try:
                run_fold(config, fold, runs_dir, notice, on_progress)
            except Interrupted as stopped:  # the study, not the fold's own run, is what to continue
                raise Interrupted(stopped.signum, stopped.checkpoint, resume=study_dir) from None
        return "this process, one fold after another"
    from ray import tune

    def make_tuner(trainable: Any, storage: str) -> Any:
        return tune.Tuner(trainable, param_space={"fold": tune.grid_search(pending)},
                          tune_config=tune.TuneConfig(max_concurrent_trials=concurrent_folds),
                          run_config=tune.RunConfig(name=TUNE_DIR, storage_path=storage))

    with ray_session(address) as where:
        notice(f"study: {len(pending)} folds on Ray ({where}); Ray's log: {study_dir / RAY_LOG}")
        # inside the session: with_parameters puts the parameters into this Ray's object store
        trainable = tune.with_parameters(_fold_trial, base=config.to_dict(), runs_dir=str(runs_dir))
        grid = run_on_tune(trainable, make_tuner=make_tuner, cpus_per_trial=1, directory=study_dir, name=TUNE_DIR,
                           log=study_dir / RAY_LOG, what="study", resume_hint=f"snnctl train --resume {study_dir}")
    errors = [result.error for result in grid if result.error is not None]
    if errors:
        raise SnnctlError(f"study: {len(errors)} fold(s) failed; first error: {error_line(errors[0])}; "
                          f"see {study_dir / RAY_LOG}; continue with: snnctl train --resume {study_dir}")
    return f"Ray ({where})"


def table_text(result: StudyResult) -> str:
    """The study table as CSV: one row per fold, then mean, sd, ci95_low, ci95_high."""
    names = list(result.summary)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["fold", "n_train", "n_test", *names])
    for fold in result.per_fold:
        writer.writerow([fold.fold, fold.n_train, fold.n_test, *[f"{fold.metrics.get(n, float('nan')):.6g}" for n in names]])
    for row in ("mean", "sd", "low", "high"):
        label = {"low": "ci95_low", "high": "ci95_high"}.get(row, row)
        writer.writerow([label, "", "", *[f"{getattr(result.summary[n], row):.6g}" for n in names]])
    return text.getvalue()


def _log_table(result: StudyResult, config: Config) -> None:
    """The table in TensorBoard (runs/study), written afresh (a resumed study replaces the
    table of the interrupted one): each figure per fold (step = fold), the means as
    hparams, and the table as markdown text."""
    from torch.utils.tensorboard import SummaryWriter

    table_run = Path(result.tensorboard_logdir) / TABLE_RUN
    for old in table_run.glob("events.out.tfevents.*"):
        old.unlink()
    rows = [" | ".join(line.split(",")) for line in table_text(result).splitlines()]
    markdown = [rows[0], " | ".join(["---"] * (rows[0].count("|") + 1)), *rows[1:]]
    with SummaryWriter(str(table_run)) as writer:
        for fold in result.per_fold:
            for name, value in fold.metrics.items():
                writer.add_scalar(f"study/{name}", value, fold.fold)
        writer.add_text("study/table", "\n".join(f"| {line} |" for line in markdown), 0)
        if result.verdict is not None:
            writer.add_text("study/verdict", result.verdict, 0)
        writer.add_hparams({"folds": config.folds, "encoding": config.encoding, "normalize": config.normalize},
                           {f"hparam/{name}_mean": s.mean for name, s in result.summary.items()}, run_name=".")


def is_study(config: Config | None, folds: int | None, resume: Path | None) -> bool:
    """Whether ``train`` with these arguments runs a study: ``folds`` given, a config with
    ``folds`` but no ``fold`` (a study's own runs have one), or ``resume`` a study directory."""
    if resume is not None:
        return Path(resume).is_dir() and (Path(resume) / STATE_NAME).exists()
    return folds is not None or (config is not None and config.folds is not None and config.fold is None)


def study(config: Config | None = None, *, folds: int | None = None, out: Path | None = None,
          resume: Path | None = None, address: str | None = None, concurrent_folds: int | None = None,
          notice: Notice = quiet, on_progress: OnProgress = no_progress) -> StudyResult:
    """k-fold cross-validation of ``config`` (``folds`` overrides its ``folds``): one
    ordinary run per grouped, stratified fold, each evaluated on the fold it held out;
    the table of their figures with mean, sd and a 95% interval. Or continue the study in
    ``resume``. ``concurrent_folds``: folds at once (1: one after another in this process, without
    Ray); ``address``: a Ray cluster, as for :func:`snnctl.service.sweep`.
    """
    from snnctl import data

    config, study_dir, recorded_images = set_up(config, folds, out, resume)
    notice = each_once(notice)
    runs_dir = study_dir / RUNS_DIR
    on_ray = not lockstep.in_lockstep(config) and _on_ray(address, concurrent_folds)
    if lockstep.in_lockstep(config):
        lockstep.check(config, "study")
    elif on_ray:
        from snnctl import engine

        # Ray hides the GPUs from a fold that reserved none
        engine.require_cpu(config, "study folds on Ray run on the CPUs Ray reserves for them (--concurrent-folds 1 runs "
                                   "them here)")
    if resume is None:
        pool = data.load_splits(config.replace(fold=0), notice)  # the data is there and the folds can be made
        notice_classes_short_of_folds(pool, config.folds, notice)
        images = sorted(image_files_of(config))
    pending = [k for k in range(config.folds) if not (fold_dir(runs_dir, k) / FOLD_NAME).exists()]
    if resume is not None and pending:
        check_same_images(config, recorded_images, study_dir)
    # Ray is connected before the study directory is made: a cluster that cannot be
    # reached leaves nothing behind (the folds' own session then reuses this one).
    with ray_session(address) if on_ray and pending else contextlib.nullcontext():
        if resume is None:
            runs_dir.mkdir(parents=True)
            write_study_state(study_dir, config, images)
        ran_on = "nowhere: every fold had finished"
        if pending:
            ran_on = _run_folds(config, pending, study_dir, address, concurrent_folds, notice, on_progress)
    per_fold = [_read_fold(fold_dir(runs_dir, k) / FOLD_NAME) for k in range(config.folds)]
    names = list(dict.fromkeys(name for fold in per_fold for name in fold.metrics))
    summary = {name: summarize([f.metrics[name] for f in per_fold if name in f.metrics], PROPORTION)
               for name in names}
    result = StudyResult(str(study_dir), config.folds, ran_on, per_fold, summary, str(study_dir / TABLE_NAME),
                         str(runs_dir), config.readout, verdict(per_fold, config.readout))
    write_atomic(study_dir / TABLE_NAME, table_text(result).encode())
    _log_table(result, config)
    write_atomic(study_dir / RESULT_NAME, (json.dumps(result.to_dict(), indent=2) + "\n").encode())
    return result
