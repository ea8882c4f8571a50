"""Studies (train --folds K): the K test sets partition the data and keep patients apart;
a study interrupted after two folds resumes with the others and gives the uninterrupted
table; the table as a file, in --json and in TensorBoard; folds on a Ray cluster at
127.0.0.1 give the same table as folds run one after another (slow)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from snnctl import config as cfg
from snnctl import service
from snnctl.data import synthetic
from snnctl.errors import ConfigError, SnnctlError

from conftest import assert_one_line_error, run_on_ray

FOLDS = 3
PATIENT = re.compile(r"(P\d+)_")
# Tiny and quick: a study of three folds takes seconds.
SMALL = dict(task="MAMMO", n_classes=3, input_size=16, n_neurons=9, time=20, batch_size=4, update_interval=16,
             checkpoint_every=0, one_spike="off", group=r"^(P\d+)_", normalize="percentile", encoding="on-off")


def study_config(mammo: Path, tmp_path: Path, **changes) -> cfg.Config:
    return cfg.Config(data_dir=str(mammo), log_dir=str(tmp_path / "logs")).replace(**{**SMALL, **changes})


@pytest.fixture(scope="module")
def finished(mammo, tmp_path_factory) -> service.StudyResult:
    """A study run one fold after another, uninterrupted: the reference table."""
    tmp_path = tmp_path_factory.mktemp("study")
    return service.study(study_config(mammo, tmp_path), folds=FOLDS, out=tmp_path / "study", concurrent_folds=1)


class Stop(Exception):
    """Raised by :func:`stopping_at_fold`'s notice: a study stopped between folds."""


def stopping_at_fold(fold: int, said: list[str] | None = None) -> Callable[[str], None]:
    """A study's notice that stops it as fold ``fold`` (from 1) begins, after recording each
    message in ``said``."""

    def notice(message: str) -> None:
        if said is not None:
            said.append(message)
        if message.startswith(f"study: fold {fold} of {FOLDS}"):
            raise Stop

    return notice


def copied(mammo: Path, tmp_path: Path) -> Path:
    """A copy of the shared synthetic set that a test may change."""
    copy = tmp_path / "mammo"
    shutil.copytree(mammo, copy)
    return copy


def split_lists(run_dir: str) -> dict:
    return json.loads((Path(run_dir) / "split.json").read_text())


def test_the_folds_test_sets_partition_the_data_and_keep_each_patient_on_one_side(finished, mammo):
    tests = [[entry["file"] for entry in split_lists(fold.run_dir)["test"]] for fold in finished.per_fold]
    every = [file for test in tests for file in test]
    assert sorted(every) == sorted(p.relative_to(mammo).as_posix() for p in mammo.rglob("*.png"))
    for fold in finished.per_fold:
        lists = split_lists(fold.run_dir)
        train, test = ({PATIENT.search(e["file"]).group(1) for e in lists[side]} for side in ("train", "test"))
        assert train.isdisjoint(test) and lists["fold"] == fold.fold and lists["folds"] == FOLDS


def test_each_fold_is_an_ordinary_run_and_the_table_summarizes_the_folds(finished):
    from snnctl.service import studies

    assert [fold.fold for fold in finished.per_fold] == list(range(FOLDS))
    for fold in finished.per_fold:
        assert Path(fold.checkpoint).exists() and list(Path(fold.run_dir).glob("events.out.tfevents.*"))
        report = service.evaluate(Path(fold.checkpoint))
        # the fold's figures, taken from its training run's test, are evaluate's, key for key,
        # and how its layer spiked on its training images
        layer = (studies.LOCKSTEP, studies.SILENT)
        figures = {name: value for name, value in fold.metrics.items() if name not in layer}
        assert figures == pytest.approx(studies.metrics_of(report.to_dict()))
        assert all(0.0 <= fold.metrics[name] <= 1.0 for name in layer)
        assert fold.metrics["balanced_accuracy"] == pytest.approx(report.balanced_accuracy)
        info = service.inspect(Path(fold.checkpoint)).info
        lists = split_lists(fold.run_dir)
        assert info["fold"] == fold.fold and info["groups"]["test"] == len({e["group"] for e in lists["test"]})
    values = [fold.metrics["balanced_accuracy"] for fold in finished.per_fold]
    summary = finished.summary["balanced_accuracy"]
    assert summary.mean == pytest.approx(sum(values) / FOLDS)
    assert summary.low <= summary.mean <= summary.high
    assert {"per_class/benign/recall", "per_class/malignant/recall", "per_class/normal/recall"} <= set(finished.summary)
    with open(finished.table_file, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["fold", "n_train", "n_test"] and [row[0] for row in rows[1:]] == [
        "0", "1", "2", "mean", "sd", "ci95_low", "ci95_high"]
    column = rows[0].index("balanced_accuracy")
    assert float(rows[4][column]) == pytest.approx(summary.mean, abs=1e-5)
    assert list((Path(finished.tensorboard_logdir) / "study").glob("events.out.tfevents.*"))
    assert json.loads((Path(finished.study_dir) / "result.json").read_text())["summary"]["balanced_accuracy"]["mean"] \
        == pytest.approx(summary.mean)


def test_a_fold_is_scored_by_its_own_training_run_without_running_its_images_again(finished, mammo, tmp_path,
                                                                                    monkeypatch):
    from snnctl.service import checkpoints, readouts, studies

    def not_again(*args, **kwargs):
        raise AssertionError("the fold's images were run through the checkpoint again")

    monkeypatch.setattr(checkpoints, "classify", not_again)
    baselines = []
    fit_baseline = readouts.fit_pixel_baseline
    monkeypatch.setattr(readouts, "fit_pixel_baseline", lambda *a: baselines.append(1) or fit_baseline(*a))
    fold = studies.run_fold(study_config(mammo, tmp_path, folds=FOLDS), 1, tmp_path / "runs")
    assert len(baselines) == 1  # fitted once, by training
    # the same figures, under the same names, as evaluate gave the uninterrupted study
    assert fold.metrics == pytest.approx(finished.per_fold[1].metrics)


def test_the_readout_and_the_baseline_choose_their_penalty_on_folds_of_whole_patients(mammo, tmp_path, monkeypatch):
    from snnctl.cli.scores import scores_table
    from snnctl.readout import LinearReadout

    fitted: list[tuple[str, list[str]]] = []
    fit = LinearReadout.fit.__func__

    def recording(cls, *args, **kwargs):
        fitted.append((kwargs["transform"], kwargs["groups"]))
        return fit(cls, *args, **kwargs)

    monkeypatch.setattr(LinearReadout, "fit", classmethod(recording))
    result = service.train(study_config(mammo, tmp_path, readout="linear"), out=tmp_path / "run")
    patients = sorted(PATIENT.search(entry["file"]).group(1) for entry in split_lists(result.run_dir)["train"])
    assert [transform for transform, _ in fitted] == ["log1p-standardize", "standardize"]  # readout, baseline
    assert all(sorted(groups) == patients for _, groups in fitted)
    assert result.scores.fit_groups == len(set(patients)) and result.to_dict()["scores"]["fit_groups"] > 1
    caption = str(scores_table(result.scores, "the test images").caption)
    assert f"of {len(set(patients))} groups (their L2 strength chosen on folds that keep a group on one side)" in caption


def test_a_resumed_sweep_trial_keeps_its_recorded_validation_split(mammo, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(mammo, data_dir)
    config = study_config(data_dir, tmp_path)
    validation = service.Validation(size=10, seed=3)
    first = service.train(config, out=tmp_path / "trial", validation=validation)
    recorded = (tmp_path / "trial" / "split.json").read_bytes()
    synthetic.write_folders(tmp_path / "more", synthetic.SyntheticMammoSpec(patients=6, size=32, seed=9))
    for new in (tmp_path / "more").rglob("*.png"):  # new patients: a validation split made afresh differs
        new.rename(data_dir / new.parent.name / f"P9{new.name[1:]}")
    again = service.train(config, resume=Path(first.checkpoint), validation=validation)
    assert (tmp_path / "trial" / "split.json").read_bytes() == recorded
    assert (again.held_out, again.n_test, again.n_train) == ("validation", first.n_test, first.n_train)
    assert again.scores.to_dict() == first.scores.to_dict()


def test_a_study_interrupted_after_two_folds_resumes_and_gives_the_uninterrupted_table(finished, mammo, tmp_path):
    study_dir = tmp_path / "interrupted"
    with pytest.raises(Stop):
        service.study(study_config(mammo, tmp_path), folds=FOLDS, out=study_dir, concurrent_folds=1,
                      notice=stopping_at_fold(3))
    assert len(list(study_dir.glob("runs/fold-*/fold.json"))) == 2
    resumed = service.study(resume=study_dir, concurrent_folds=1)
    assert [fold.metrics for fold in resumed.per_fold] == [fold.metrics for fold in finished.per_fold]
    assert resumed.summary == finished.summary


def _folds(network: list[float], baseline: list[float]) -> list:
    from snnctl.service import studies

    return [studies.Fold(k, "", "", 20, 5, {"scores/linear/balanced_accuracy": n, "scores/baseline/balanced_accuracy": b,
                                            "scores/chance": 1 / 3}) for k, (n, b) in enumerate(zip(network, baseline))]


@pytest.mark.parametrize("network, baseline, says", [
    ([0.60, 0.62, 0.58, 0.61, 0.59], [0.45, 0.44, 0.46, 0.43, 0.47], None),
    ([0.30, 0.32, 0.31, 0.29, 0.33], [0.25, 0.25, 0.25, 0.25, 0.25],
     "the network (linear readout) is no better than chance (mean balanced accuracy 0.310 over 5 folds, chance 0.333)"),
    # intervals as scipy.stats.t.interval(0.95, 4, mean, sem) gives them
    ([0.30, 0.45, 0.36, 0.28, 0.40], [0.25, 0.25, 0.25, 0.25, 0.25],
     "the network (linear readout) is not distinguishable from chance (mean balanced accuracy 0.358 over 5 folds; "
     "its 95% interval, 0.271 to 0.445, includes chance, 0.333)"),
    ([0.50, 0.52, 0.49, 0.51, 0.48], [0.55, 0.56, 0.54, 0.57, 0.55],
     "the network (linear readout) is below the pixel baseline (0.500 against 0.554 mean balanced accuracy; below it "
     "in 5 of 5 folds, the mean difference -0.054, 95% interval -0.068 to -0.040)"),
    ([0.55, 0.56, 0.49, 0.55, 0.50], [0.52, 0.52, 0.52, 0.52, 0.52],
     "the network (linear readout) is not distinguishable from the pixel baseline (0.530 against 0.520 mean balanced "
     "accuracy; below it in 2 of 5 folds, the mean difference +0.010, 95% interval -0.030 to +0.050)"),
])
def test_the_study_says_plainly_when_its_readout_is_not_clearly_above_chance_and_the_baseline(network, baseline, says):
    from snnctl.service import studies

    assert studies.verdict(_folds(network, baseline), "linear") == says
    assert studies.verdict(_folds(network[:1], baseline[:1]), "linear") is None  # one fold judges nothing


def test_the_study_says_when_its_linear_readout_does_no_better_than_its_layer_before_learning():
    from snnctl.service import studies

    folds = _folds([0.82, 0.84, 0.83, 0.79, 0.80], [0.49, 0.50, 0.48, 0.49, 0.47])
    assert studies.verdict(folds, "linear") is None
    for fold, untrained in zip(folds, [0.89, 0.94, 0.94, 0.81, 0.92]):
        fold.metrics[studies.readout_key(studies.UNTRAINED)] = untrained
    says = studies.verdict(folds, "linear")
    assert says.startswith("the network (linear readout) is below its own layer before learning (0.816 against "
                           "0.900 mean balanced accuracy; below it in 5 of 5 folds")
    for fold, untrained in zip(folds, [0.70, 0.88, 0.80, 0.85, 0.75]):
        fold.metrics[studies.readout_key(studies.UNTRAINED)] = untrained
    assert "not distinguishable from its own layer before learning" in studies.verdict(folds, "linear")


def test_a_figures_interval_stays_within_what_the_figure_can_be():
    from scipy import stats

    from snnctl.service import studies

    precision = [0.0, 1 / 3, 0.5, 0.0, 0.5]  # a rare class over five folds
    unbounded = stats.t.interval(0.95, 4, loc=sum(precision) / 5, scale=stats.sem(precision))
    assert unbounded[0] < 0  # what a plain t-interval says, and no precision can be
    summary = studies.summarize(precision, studies.PROPORTION)
    assert summary.low == 0.0 and summary.high == pytest.approx(unbounded[1])
    assert summary.mean == pytest.approx(sum(precision) / 5) and summary.sd == pytest.approx(stats.tstd(precision))
    perfect = studies.summarize([1.0, 1.0, 0.9, 1.0, 1.0], studies.PROPORTION)
    assert perfect.high == 1.0 and perfect.low < 1.0
    # a difference of two proportions may be negative: without bounds the interval is Student's as it is
    difference = studies.summarize([-0.2, 0.1, -0.05, 0.0, -0.1])
    assert (difference.low, difference.high) == pytest.approx(
        stats.t.interval(0.95, 4, loc=-0.05, scale=stats.sem([-0.2, 0.1, -0.05, 0.0, -0.1])))


def test_the_command_line_study_prints_the_table_and_one_json_document(mammo, tmp_path):
    params = tmp_path / "study.yaml"
    params.write_text(cfg.dump_yaml(study_config(mammo, tmp_path, folds=FOLDS)))
    command = [sys.executable, "-m", "snnctl", "train", str(params), "--concurrent-folds", "1", "--out", str(tmp_path / "s")]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "balanced_accuracy" in shown.stdout and "95% interval" in shown.stdout
    inspected = subprocess.run([sys.executable, "-m", "snnctl", "inspect", str(tmp_path / "s/runs/fold-1/checkpoint.safetensors")],
                               capture_output=True, text=True, timeout=60)
    assert re.search(r"patient groups\s+│ \d+ train / \d+ test \(group: \^\(P\\d\+\)_\)", inspected.stdout), inspected.stdout
    assert "fold              │ 2 of 3 held out" in inspected.stdout and "ON and OFF" in inspected.stdout
    again = subprocess.run([sys.executable, "-m", "snnctl", "train", "--resume", str(tmp_path / "s"), "--json"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert document["folds"] == FOLDS and len(document["per_fold"]) == FOLDS
    from snnctl.service import studies

    folds = [studies.Fold(**fold) for fold in document["per_fold"]]
    assert document["verdict"] == studies.verdict(folds, document["readout"])
    assert document["verdict"] is None or "the network (" in shown.stdout
    assert document["ran_on"].startswith("nowhere")  # every fold had finished


def test_set_folds_on_the_command_line_makes_a_study(mammo, tmp_path, monkeypatch):
    """`--set folds=K` on a parameter file without folds runs the study, not one ordinary run."""
    from typer.testing import CliRunner

    from snnctl.cli import app

    params = tmp_path / "plain.yaml"
    params.write_text(cfg.dump_yaml(study_config(mammo, tmp_path)))
    asked: list[cfg.Config] = []

    def recording_study(config, **options):
        asked.append(config)
        raise SnnctlError("recorded")

    monkeypatch.setattr(service, "study", recording_study)
    result = CliRunner().invoke(app, ["train", str(params), "--set", f"folds={FOLDS}", "--device", "cpu"])
    assert result.exit_code == 1 and "recorded" in result.stderr
    assert [(c.folds, c.device) for c in asked] == [(FOLDS, "cpu")]


def test_bad_studies_are_one_clear_error(mammo, tmp_path):
    with pytest.raises(ConfigError, match="folds: 40 folds need at least 40 groups, the data has 15"):
        service.study(study_config(mammo, tmp_path), folds=40, out=tmp_path / "s", concurrent_folds=1)
    assert not (tmp_path / "s").exists()
    with pytest.raises(SnnctlError, match="not a study directory"):
        service.study(resume=tmp_path, concurrent_folds=1)
    with pytest.raises(ConfigError, match="--resume STUDY_DIR continues a study as it was set up"):
        service.study(study_config(mammo, tmp_path), resume=tmp_path)
    split = tmp_path / "split"
    for side in ("train", "test"):
        shutil.copytree(mammo, split / side)
    with pytest.raises(ConfigError, match="folds: cross-validation splits one pool of class folders"):
        service.study(study_config(split, tmp_path), folds=FOLDS, out=tmp_path / "s2", concurrent_folds=1)
    from typer.testing import CliRunner

    from snnctl.cli import app

    digits = CliRunner().invoke(app, ["train", str(Path(__file__).resolve().parents[1] / "parameters" / "mnist.yaml"),
                                      "--folds", "2", "--out", str(tmp_path / "s3")])
    assert_one_line_error(digits, 2, "a study cross-validates one pool of image folders (task: MAMMO)", "task MNIST",
                          "snnctl sweep PARAMS SPACE --folds 2")
    assert not (tmp_path / "s3").exists()


@pytest.mark.slow
def test_folds_on_a_ray_cluster_at_127_0_0_1_give_the_same_table(finished, mammo, ray_cluster, tmp_path):
    address, env = ray_cluster
    params = tmp_path / "study.yaml"
    params.write_text(cfg.dump_yaml(study_config(mammo, tmp_path)))
    command = [sys.executable, "-m", "snnctl", "train", str(params), "--folds", str(FOLDS), "--address", address,
               "--out", str(tmp_path / "on-ray"), "--json"]
    done = run_on_ray(command, env, tmp_path / "on-ray")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["ran_on"].startswith(f"Ray ({address}")
    assert [fold["metrics"] for fold in document["per_fold"]] == [fold.metrics for fold in finished.per_fold]


def test_parameters_mammo_study_yaml_is_a_grouped_five_fold_study_of_windows_read_out_linearly():
    config = cfg.load(Path(__file__).resolve().parents[1] / "parameters" / "mammo-study.yaml")
    assert (config.task, config.folds, config.fold, config.group) == ("MAMMO", 5, None, r"^(P\d+)_")
    assert (config.input_size, config.patch_size, config.n_inputs, config.resize) == (64, 8, 8 * 8, "squash")
    assert (config.readout, config.readout_features, config.baseline) == ("linear", "drive", True)
    # four features a neuron: its largest and its mean drive, anywhere and at the centre, where
    # patch sets put the finding
    assert (config.readout_pooling, config.n_readout_features) == ("centre-mean", 4 * config.n_neurons)
    assert config.norm == pytest.approx(0.1 * config.n_inputs)  # Diehl & Cook's 0.1 an input
    assert (config.encoding, config.normalize, config.gamma) == ("rate", "none", 2.0)  # grey levels squared
    assert service.is_study(config, None, None)


def test_a_study_on_ray_with_device_cuda_is_refused_before_it_starts(mammo, tmp_path):
    with pytest.raises(ConfigError, match="device: 'cuda': study folds on Ray run on the CPUs Ray reserves"):
        service.study(study_config(mammo, tmp_path, device="cuda"), folds=FOLDS, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("flags", [["--folds", "3"], ["--concurrent-folds", "2"], ["--address", "127.0.0.1:6379"]])
def test_study_options_on_a_run_that_is_no_study_are_refused_not_ignored(flags, tmp_path):
    from typer.testing import CliRunner

    from conftest import assert_one_line_error
    from snnctl.cli import app

    checkpoint = tmp_path / "run" / "checkpoint.safetensors"  # refused before it is read
    result = CliRunner().invoke(app, ["train", "--resume", str(checkpoint), *flags])
    assert_one_line_error(result, 2, flags[0], "study")


def test_a_study_whose_ray_cluster_cannot_be_reached_leaves_no_study_behind(mammo, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SnnctlError, match=f"--address ray://127.0.0.1:{port}: cannot reach Ray there"):
        service.study(study_config(mammo, tmp_path), folds=3, out=tmp_path / "study", address=f"ray://127.0.0.1:{port}")
    assert not (tmp_path / "study").exists()


def test_resuming_a_finished_study_on_ray_runs_no_fold_and_connects_to_nothing(finished):
    with socket.socket() as probe:  # a port nothing listens on: a connection attempt would fail
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    again = service.study(resume=Path(finished.study_dir), address=f"ray://127.0.0.1:{port}")
    assert again.ran_on == "nowhere: every fold had finished"
    assert again.summary == finished.summary



def test_a_linear_readout_study_reads_each_folds_layer_before_learning_as_its_control(mammo, tmp_path):
    from snnctl.service import relabel, studies

    result = service.study(study_config(mammo, tmp_path, readout="linear", readout_features="drive"), folds=FOLDS,
                           out=tmp_path / "study", concurrent_folds=1)
    key = studies.readout_key(studies.UNTRAINED)
    for fold in result.per_fold:
        control = relabel.assign(Path(fold.checkpoint), readout="linear", untrained=True, force=True)
        assert fold.metrics[key] == pytest.approx(control.scores.linear.balanced_accuracy)
    assert key in result.summary and key in Path(result.table_file).read_text().splitlines()[0]
    vote = service.study(study_config(mammo, tmp_path), folds=2, out=tmp_path / "vote-study", concurrent_folds=1)
    assert not any(name.startswith("scores/untrained/") for name in vote.summary)  # the vote's studies have none


def test_a_study_resumed_after_its_data_folder_changed_is_refused_naming_the_file(mammo, tmp_path):
    copy = copied(mammo, tmp_path)
    study_dir = tmp_path / "interrupted"
    with pytest.raises(Stop):
        service.study(study_config(copy, tmp_path), folds=FOLDS, out=study_dir, concurrent_folds=1,
                      notice=stopping_at_fold(2))
    added = copy / "benign" / "P0999_L_CC.png"
    shutil.copy(next((copy / "benign").glob("*.png")), added)
    with pytest.raises(SnnctlError, match=rf"{re.escape(str(added))}: added since the study in .* started.*move it out"):
        service.study(resume=study_dir, concurrent_folds=1)
    added.unlink()
    gone = next((copy / "normal").glob("*.png"))
    kept = gone.read_bytes()
    gone.unlink()
    with pytest.raises(SnnctlError, match=rf"{re.escape(str(gone))}: one of the images of the study in .*restore it"):
        service.study(resume=study_dir, concurrent_folds=1)
    gone.write_bytes(kept)
    assert len(service.study(resume=study_dir, concurrent_folds=1).per_fold) == FOLDS


def test_a_study_interrupted_in_this_process_says_to_resume_the_study_not_the_folds_run(mammo, tmp_path, monkeypatch):
    import signal

    from snnctl.service import studies
    from snnctl.service.common import Interrupted

    def interrupted(config, fold, runs_dir, *args):
        raise Interrupted(signal.SIGINT, studies.fold_dir(runs_dir, fold) / "checkpoint.safetensors")

    monkeypatch.setattr(studies, "run_fold", interrupted)
    study_dir = tmp_path / "stopped"
    with pytest.raises(Interrupted) as caught:
        service.study(study_config(mammo, tmp_path), folds=FOLDS, out=study_dir, concurrent_folds=1)
    assert str(caught.value).endswith(f"continue with: snnctl train --resume {study_dir.resolve()}")
    assert caught.value.exit_code == 128 + signal.SIGINT


@pytest.mark.parametrize("flags", [["--set", "n_neurons=32"], ["--device", "cpu"]])
def test_settings_given_to_a_resumed_study_are_refused_not_ignored(finished, flags):
    from typer.testing import CliRunner

    from conftest import assert_one_line_error
    from snnctl.cli import app

    result = CliRunner().invoke(app, ["train", "--resume", finished.study_dir, *flags])
    assert_one_line_error(result, 2, "continues a study as it was set up", flags[0])


def test_a_class_with_fewer_patients_than_folds_is_said_once_by_name_without_scikit_learns_warnings(mammo, tmp_path):
    import warnings

    copy = copied(mammo, tmp_path)
    patients = sorted({PATIENT.search(p.name).group(1) for p in (copy / "malignant").glob("*.png")})
    for view in (copy / "malignant").glob("*.png"):
        if PATIENT.search(view.name).group(1) not in patients[:2]:
            view.unlink()
    said: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's warning about the class would fail the test
        with pytest.raises(Stop):
            service.study(study_config(copy, tmp_path), folds=FOLDS, out=tmp_path / "study", concurrent_folds=1,
                          notice=stopping_at_fold(2, said))
    short = [message for message in said if "malignant" in message and "folds" in message]
    assert short == [f"class 'malignant' has 2 patient group(s) for {FOLDS} folds: 1 or more folds test no malignant "
                     f"image, and their balanced accuracy averages the other classes' recall; --folds 2 tests it in "
                     f"every fold"]
    assert len(said) == len(set(said)), "a message repeated by each fold is said once"
