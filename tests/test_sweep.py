"""snnctl sweep: search spaces and bad input, the validation split, a tiny sweep on Ray
started locally (table, JSON, best parameters, no test image in a trial), resume after an
interruption, and a Ray cluster on loopback (127.0.0.1 only).

Ray starts in a few seconds, so the in-process sweeps share one local Ray session; the
interrupted sweep and the cluster sweep run as commands of their own, as a user runs them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from snnctl.cli import sweep as sweep_cli
from snnctl import config as cfg
from snnctl import service
from snnctl import space as spaces
from snnctl.cli import app

from conftest import assert_one_line_error, run_on_ray, tiny_config, wait_for, write_mnist_idx

runner = CliRunner()
N_TRAIN, N_TEST, N_VALIDATION = 120, 40, 40
# Small and quick, long enough (time) for the excitatory neurons to fire.
TRIAL = dict(n_neurons=16, time=60, batch_size=4, n_train=None, n_test=None, update_interval=16)
SPACE = {
    "parameters": {"inh": {"uniform": [30, 200]}, "theta_plus": {"loguniform": [0.01, 0.5]},
                   "time": {"grid": [20, 100]}},
    "metric": "all_activity", "trials": 2, "validation": N_VALIDATION, "seed": 7,
}


def _params(root: Path, **changes) -> Path:
    """A parameter file on synthetic MNIST IDX files (120 training, 40 test images) under ``root``."""
    write_mnist_idx(root / "data", n_train=N_TRAIN, n_test=N_TEST)
    path = root / "params.yaml"
    path.write_text(cfg.dump_yaml(tiny_config(root, **{**TRIAL, **changes})))
    return path


def _space(root: Path, **changes) -> Path:
    path = root / "space.yaml"
    path.write_text(yaml.safe_dump({**SPACE, **changes}, sort_keys=False))
    return path


# ---------------------------------------------------------------- without Ray


def test_space_reads_every_kind_and_counts_trials(tmp_path):
    space = spaces.load_space(_space(tmp_path, parameters={
        "inh": {"uniform": [30, 200]}, "nu_post": {"loguniform": [0.001, 0.1]}, "time": {"grid": [25, 50, 100]},
        "one_spike": {"choice": ["off", "winner"]}}))
    assert [(d.key, d.kind) for d in space.dimensions] == [
        ("inh", "uniform"), ("nu_post", "loguniform"), ("time", "grid"), ("one_spike", "choice")]
    assert space.samples == 2 and space.n_trials == 6  # every sample runs the whole grid
    assert spaces.space_from_mapping({"parameters": {"time": {"grid": [25, 50]}}}, "s").n_trials == 2
    exponents = spaces.space_from_mapping(yaml.safe_load("parameters: {nu_post: {loguniform: [1e-3, 1e-1]}}"), "s")
    assert exponents.dimensions[0].values == (0.001, 0.1)  # YAML 1.1 reads 1e-3 as a string
    assert spaces.space_from_mapping({"parameters": {"inh": {"choice": [1, 2]}}}, "s").n_trials == spaces.DEFAULT_TRIALS
    # what sweep.json stores reads back the same
    assert spaces.space_from_mapping(json.loads(json.dumps(space.to_dict())), "s") == space


@pytest.mark.parametrize("change, words", [
    ({"parameters": {"inhh": {"uniform": [1, 2]}}}, ["unknown key 'inhh'", "did you mean 'inh'"]),
    ({"trails": 3}, ["unknown key 'trails'", "did you mean 'trials'"]),
    ({"parameters": {"inh": {"uniform": [200, 30]}}}, ["parameters.inh", "empty"]),
    ({"parameters": {"inh": {"uniform": [50, 50]}}}, ["parameters.inh", "empty"]),
    ({"parameters": {"time": {"grid": []}}}, ["parameters.time", "empty"]),
    ({"parameters": {"nu_post": {"loguniform": [0, 0.1]}}}, ["loguniform", "low must be > 0"]),
    ({"parameters": {"n_neurons": {"uniform": [10.5, 20]}}}, ["n_neurons is an integer"]),
    ({"parameters": {"model": {"uniform": [1, 2]}}}, ["uniform needs a numeric parameter"]),
    ({"parameters": {"inh": {"normal": [1, 2]}}}, ["'normal' is not one of grid, choice, uniform, loguniform"]),
    ({"parameters": {"inh": [60, 120]}}, ["parameters.inh: expected one of"]),
    ({"parameters": {"data_dir": {"choice": ["a", "b"]}}}, ["data_dir: cannot be searched", "keeps the data"]),
    ({"parameters": {"seed": {"choice": [1, 2]}}},
     ["parameters.seed: cannot be searched", "draws the held-out test images", "train on the final run's test images"]),
    ({"parameters": {"test_fraction": {"uniform": [0.1, 0.3]}}},
     ["parameters.test_fraction: cannot be searched", "draws the held-out test images", "final run's test images"]),
    ({"parameters": {"inh": {"uniform": [-5, 10]}}}, ["inh: -5.0 is out of range"]),
    ({"parameters": {"one_spike": {"choice": ["off", "always"]}}}, ["one_spike: 'always' is not one of"]),
    ({"metric": "auc"}, ["metric: 'auc' is not one of all_activity, proportion_weighting, balanced_accuracy"]),
    ({"search": "optuna"}, ["parameters.time: search optuna does not take a grid, use choice"]),
    ({"validation": 0}, ["validation: 0 is not an integer >= 1"]),
    ({"validation": 500}, ["validation: 500 images", f"the {N_TRAIN} training images"]),
])
def test_bad_space_is_one_line_and_writes_nothing(tmp_path, change, words):
    params, space = _params(tmp_path), _space(tmp_path, **change)
    result = runner.invoke(app, ["sweep", str(params), str(space), "--out", str(tmp_path / "sweep")])
    assert_one_line_error(result, 2, *words)
    assert not (tmp_path / "sweep").exists()


def test_a_space_naming_a_parameter_twice_is_refused(tmp_path):
    # read by the same strict YAML reader as parameter files: the second range would win silently
    params, space = _params(tmp_path), tmp_path / "space.yaml"
    space.write_text("parameters:\n  inh: {uniform: [30, 200]}\n  time: {grid: [20, 100]}\n"
                     "  inh: {uniform: [1, 10]}\ntrials: 2\n")
    result = runner.invoke(app, ["sweep", str(params), str(space), "--out", str(tmp_path / "sweep")])
    assert_one_line_error(result, 2, str(space), "key 'inh' appears twice (lines 2 and 4)")
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_on_cuda_is_refused_before_it_starts(tmp_path):
    # Ray gives a trial the CPUs it reserved and no GPU: every trial would fail
    params, space = _params(tmp_path, device="cuda"), _space(tmp_path)
    result = runner.invoke(app, ["sweep", str(params), str(space), "--out", str(tmp_path / "sweep")])
    assert_one_line_error(result, 2, "device: 'cuda'", "cpus_per_trial", "use device: auto or cpu")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("arguments, code, words", [
    (["--address", "ray://127.0.0.1:{port}"], 1, ["--address ray://127.0.0.1:", "cannot reach Ray there"]),
    (["--address", "nonsense"], 2, ["expected auto, ray://HOST:PORT or HOST:PORT"]),
    (["--trials", "0"], 2, []),
    # --set reaches the trials' parameters as it does train's
    (["--set", "device=cuda"], 2, ["device: 'cuda'", "cpus_per_trial"]),
    (["--set", "bogus=1"], 2, ["--set: unknown key 'bogus'"]),
])
def test_bad_options_are_one_line_and_write_nothing(tmp_path, arguments, code, words):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    params, space = _params(tmp_path), _space(tmp_path)
    arguments = [a.format(port=port) for a in arguments]
    result = runner.invoke(app, ["sweep", str(params), str(space), "--out", str(tmp_path / "sweep"), *arguments])
    if words:
        assert_one_line_error(result, code, *words)
    assert result.exit_code == code and not (tmp_path / "sweep").exists()


def test_resume_needs_a_sweep_directory(tmp_path):
    assert_one_line_error(runner.invoke(app, ["sweep", "--resume", str(tmp_path)]), 1, "not a sweep directory")
    assert_one_line_error(runner.invoke(app, ["sweep", "--resume", str(tmp_path), "--trials", "3"]), 2,
                          "--resume SWEEP_DIR continues a sweep as it was set up")
    assert_one_line_error(runner.invoke(app, ["sweep", str(_params(tmp_path))]), 2,
                          "give a parameter file and a search space")
    assert_one_line_error(runner.invoke(app, ["sweep", "--resume", str(tmp_path), "--set", "inh=30"]), 2,
                          "--resume continues a sweep with the parameters it was set up with")


def test_validation_split_is_the_same_for_every_trial_and_no_test_image_runs(tmp_path, monkeypatch):
    """What each trial does, in process: the held-out images are training images, the
    same whatever a trial's seed and n_train, and no test image is ever presented."""
    from snnctl import data
    from snnctl import engine as engines

    config = cfg.load(_params(tmp_path))
    validation = service.Validation(N_VALIDATION, 7)
    splits = service.validation_splits(config, validation)
    other = service.validation_splits(config.replace(seed=99, n_train=30), validation)
    assert len(splits.test) == len(other.test) == N_VALIDATION and len(other.train) == 30
    assert splits.test.images.equal(other.test.images)
    assert len(splits.train) == N_TRAIN - N_VALIDATION

    rows = lambda images: {bytes(row.numpy()) for row in images.reshape(len(images), -1)}  # noqa: E731
    test_images = rows(data.load_splits(config, lambda message: None).test.images)
    assert not test_images & rows(splits.train.images) and not test_images & rows(splits.test.images)
    presented = []
    present = engines.FastEngine.present_sequence

    def recording(engine, images, *args, **kwargs):
        presented.append(images.clone())
        return present(engine, images, *args, **kwargs)

    monkeypatch.setattr(engines.FastEngine, "present_sequence", recording)
    result = service.train(config.replace(n_neurons=10, time=25), out=tmp_path / "trial", validation=validation)
    assert result.held_out == "validation" and result.n_test == N_VALIDATION
    assert presented and not any(test_images & rows(images) for images in presented)
    info = service.inspect(Path(result.checkpoint)).info
    assert "validation_accuracy" in info and "test_accuracy" not in info


# ---------------------------------------------------------------- on Ray, started locally


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray session for the in-process sweeps (service.sweep keeps a caller's session)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def finished_sweep(local_ray, tmp_path_factory):
    """A tiny sweep, 4 trials (2 samples x a grid of 2), early stopping on. Half a CPU each:
    the four start at once on Ray's 2 CPUs (a trial is one thread, mostly start-up)."""
    root = tmp_path_factory.mktemp("sweep")
    notices: list[str] = []
    result = service.sweep(cfg.load(_params(root)), _space(root, cpus_per_trial=0.5), out=root / "s1",
                           notice=notices.append)
    return result, notices


@pytest.mark.slow
def test_sweep_ranks_trials_that_each_are_an_ordinary_run(finished_sweep):
    result, notices = finished_sweep
    assert len(result.trials) == 4 and result.n_validation == N_VALIDATION
    assert sorted(t.parameters["time"] for t in result.trials) == [20, 20, 100, 100]
    assert all(30 <= t.parameters["inh"] <= 200 and 0.01 <= t.parameters["theta_plus"] <= 0.5 for t in result.trials)
    finished = [t for t in result.trials if t.status == "finished"]
    assert finished and result.trials[:len(finished)] == finished
    scores = [t.validation_accuracy.all_activity for t in finished]
    assert scores == sorted(scores, reverse=True)
    assert result.best_trial == finished[0].trial and result.best_validation_accuracy == finished[0].validation_accuracy
    assert all(t.status == "stopped early" and t.validation_accuracy is None for t in result.trials[len(finished):])
    for trial in finished:  # a run directory with checkpoint, TensorBoard events, parameters
        run_dir = Path(trial.run_dir)
        assert run_dir.parent == Path(result.tensorboard_logdir)
        assert {"checkpoint.safetensors", "parameters.yaml", "status.json"} <= {p.name for p in run_dir.iterdir()}
        assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())
        info = service.inspect(run_dir / "checkpoint.safetensors").info
        assert info["validation_accuracy"]["all_activity"] == pytest.approx(trial.validation_accuracy.all_activity)
        assert "test_accuracy" not in info  # no trial ran a test image
        assert f"{N_VALIDATION} of its training images held out" in info["data"]
    # the final run: the best configuration on all training images, tested on the test images
    final = result.final
    assert final.held_out == "test" and (final.n_train, final.n_test) == (N_TRAIN, N_TEST)
    assert "test_accuracy" in service.inspect(Path(final.checkpoint)).info
    assert any("4 trials on Ray" in n for n in notices)
    stored = json.loads((Path(result.sweep_dir) / "result.json").read_text())
    assert stored["best_trial"] == result.best_trial and stored["final"]["test_accuracy"]


@pytest.mark.slow
def test_table_lists_the_trials_best_first(finished_sweep):
    result, _ = finished_sweep
    console = Console(width=250, record=True)
    console.print(sweep_cli.trials_table(result))
    text = console.export_text()
    positions = [text.index(t.trial) for t in result.trials]
    assert positions == sorted(positions)
    assert "validation" in text and "theta_plus" in text and "finished" in text


@pytest.mark.slow
def test_best_parameters_file_loads_and_trains_as_the_final_run(finished_sweep, tmp_path):
    result, _ = finished_sweep
    best = cfg.load(result.best_parameters_file)
    assert {k: getattr(best, k) for k in result.best_parameters} == result.best_parameters
    trained = runner.invoke(app, ["train", result.best_parameters_file, "--out", str(tmp_path / "again"), "--json"])
    assert trained.exit_code == 0, trained.output
    document = json.loads(trained.stdout)
    assert document["test_accuracy"] == pytest.approx(vars(result.final.test_accuracy))


@pytest.mark.slow
def test_resuming_a_finished_sweep_reruns_no_trial(finished_sweep):
    result, _ = finished_sweep
    status = {t.trial: Path(t.run_dir, "status.json").stat().st_mtime_ns for t in result.trials
              if t.status == "finished"}
    resumed = runner.invoke(app, ["sweep", "--resume", result.sweep_dir, "--json"])
    assert resumed.exit_code == 0, resumed.output
    document = json.loads(resumed.stdout)  # exactly one JSON document
    assert [(t["trial"], t["status"]) for t in document["trials"]] == [(t.trial, t.status) for t in result.trials]
    assert document["final"]["test_accuracy"] == pytest.approx(vars(result.final.test_accuracy))
    assert status == {t: Path(result.sweep_dir, "runs", t, "status.json").stat().st_mtime_ns for t in status}


@pytest.mark.slow
def test_sweep_refuses_a_directory_in_use(finished_sweep):
    result, _ = finished_sweep
    root = Path(result.sweep_dir).parent
    refused = runner.invoke(app, ["sweep", str(root / "params.yaml"), str(root / "space.yaml"),
                                  "--out", result.sweep_dir])
    assert_one_line_error(refused, 2, "exists and is not an empty directory", "--resume")


@pytest.mark.slow
def test_optuna_search_and_a_failing_trial(local_ray, tmp_path):
    """Optuna's TPE samples the space; a trial whose values do not go together fails with
    its reason in one line, listed last, and the sweep goes on."""
    params = _params(tmp_path)
    tpe = service.sweep(cfg.load(params), _space(tmp_path, parameters={
        "inh": {"uniform": [30, 200]}, "n_neurons": {"loguniform": [8, 16]}}, search="optuna", early_stopping="none"),
        out=tmp_path / "tpe")
    assert tpe.search == "optuna" and [t.status for t in tpe.trials] == ["finished", "finished"]
    assert all(isinstance(t.parameters["n_neurons"], int) and 8 <= t.parameters["n_neurons"] <= 16
               for t in tpe.trials)

    failing = service.sweep(cfg.load(params), _space(tmp_path, parameters={
        "wmin": {"grid": [0.0, 0.95]}, "wmax": {"choice": [0.5]}}, trials=1, early_stopping="none"),
        out=tmp_path / "failing")
    assert [(t.parameters["wmin"], t.status) for t in failing.trials] == [(0.0, "finished"), (0.95, "error")]
    assert failing.trials[1].error == "trial: wmin: 0.95 must be below wmax (0.5)"


@pytest.mark.slow
def test_interrupted_sweep_resumes_where_it_stopped(local_ray, tmp_path):
    """Ctrl-C (SIGINT) after the first trial: exit 130 and how to continue; --resume
    runs only the rest, the finished trial stays as it was."""
    params = _params(tmp_path)
    space = _space(tmp_path, trials=1, max_concurrent=1, early_stopping="none")  # 2 trials, one after the other
    sweep_dir = tmp_path / "s2"
    command = [sys.executable, "-m", "snnctl", "sweep", str(params), str(space), "--out", str(sweep_dir), "--json"]
    # Tune saves its state on every step here (by default every 10 s or more, and a trial
    # finished since the last save would label and validate again on --resume)
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "0"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # one trial at a time: when the second has begun, Tune has taken in the first
        wait_for(lambda: len(list(sweep_dir.glob("runs/*"))) >= 2 or process.poll() is not None, 240,
                 "the second trial")
        assert process.poll() is None, process.communicate()[1]
        first, = [p.parent for p in sweep_dir.glob("runs/*/status.json")
                  if json.loads(p.read_text() or "{}").get("state") == "finished"]
        before = (first / "checkpoint.safetensors").stat().st_mtime_ns
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert json.loads(stdout)["exit_code"] == 130 and "Traceback" not in stderr  # --json: the error's document
    assert f"sweep interrupted by SIGINT; continue with: snnctl sweep --resume {sweep_dir}" in stderr
    assert not (sweep_dir / "result.json").exists()

    result = service.sweep(resume=sweep_dir)
    assert len(result.trials) == 2 and all(t.status == "finished" for t in result.trials)
    assert (first / "checkpoint.safetensors").stat().st_mtime_ns == before
    assert (sweep_dir / "result.json").exists() and Path(result.best_parameters_file).exists()


# ---------------------------------------------------------------- a Ray cluster on loopback


@pytest.mark.slow
def test_sweep_on_a_ray_cluster_over_loopback(ray_cluster, tmp_path):
    """The README's cluster recipe on 127.0.0.1: `ray start --head`, then --address."""
    address, env = ray_cluster
    params, space = _params(tmp_path), _space(tmp_path, parameters={"inh": {"grid": [60, 120]}}, trials=1,
                                              early_stopping="none")
    command = [sys.executable, "-m", "snnctl", "sweep", str(params), str(space), "--out", str(tmp_path / "s3"),
               "--address", address, "--json"]
    done = run_on_ray(command, env, tmp_path / "s3")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["ray"].startswith(address)
    assert {t["status"] for t in document["trials"]} == {"finished"} and len(document["trials"]) == 2
    assert all(Path(t["run_dir"], "checkpoint.safetensors").exists() for t in document["trials"])


@pytest.mark.slow
def test_sweep_scored_by_grouped_cross_validation(local_ray, tmp_path):
    """--folds K: each trial is one run per fold of the training images, patients kept
    apart, scored by the mean of the folds' validation figures: here, as a mammography
    study would rank them, the balanced accuracy of the linear readout."""
    import re

    from snnctl.data import synthetic

    synthetic.write_folders(tmp_path / "mammo", synthetic.SyntheticMammoSpec(patients=15, size=32, seed=1))
    config = cfg.Config(task="MAMMO", data_dir=str(tmp_path / "mammo"), log_dir=str(tmp_path / "logs"), n_classes=3,
                        input_size=16, group=r"^(P\d+)_", readout="linear", balance=True,
                        ).replace(**{**TRIAL, "n_neurons": 9, "time": 20})
    space = _space(tmp_path, parameters={"inh": {"grid": [60, 120]}}, trials=1, early_stopping="none", validation=8,
                   metric="balanced_accuracy")
    result = service.sweep(config, space, folds=2, out=tmp_path / "cv")
    assert result.validation_folds == 2 and {t.status for t in result.trials} == {"finished"}
    scores = [trial.validation_balanced_accuracy for trial in result.trials]
    assert scores == sorted(scores, reverse=True) and result.best_validation_balanced_accuracy == scores[0]
    assert "validation balanced accuracy (linear readout)" in Path(result.best_parameters_file).read_text()
    console = Console(width=250, record=True)
    for table in sweep_cli.tables(result):
        console.print(table)
    text = " ".join(console.export_text().split())
    assert "validation: balanced accuracy (linear readout) on 2 folds" in text
    assert f"validation balanced accuracy (linear readout) │ {scores[0]:.2%}" in text
    assert f"test balanced accuracy (linear readout) │ {result.final.scores.linear.balanced_accuracy:.2%}" in text
    patient = re.compile(r"(P\d+)_")
    for trial in result.trials:
        accuracies, balanced = [], []
        for fold in range(2):
            run_dir = Path(trial.run_dir) / f"fold-{fold}"
            lists = json.loads((run_dir / "split.json").read_text())
            train, held = ({patient.search(e["file"]).group(1) for e in lists[side]} for side in ("train", "test"))
            assert train.isdisjoint(held)
            info = service.inspect(run_dir / "checkpoint.safetensors").info
            accuracies.append(info["validation_accuracy"])
            balanced.append(info["validation_scores"]["linear"]["balanced_accuracy"])
        assert trial.validation_accuracy.all_activity == pytest.approx(
            sum(a["all_activity"] for a in accuracies) / 2)
        assert trial.validation_balanced_accuracy == pytest.approx(sum(balanced) / 2)


@pytest.mark.parametrize("name", ["mnist-100", "mnist-400", "mnist-1600", "mnist-6400", "fashion-400", "fashion-6400"])
def test_the_shipped_spaces_search_their_files_own_setting_on_a_fixed_split(name):
    """Each parameters/NAME-space.yaml is the sweep that chose NAME.yaml: it loads, every
    value it searches is valid in that file, the file's own value is among them (a grid's
    or a choice's values, or within a range's bounds), and the split's seed is fixed so
    that --set seed varies only the network."""
    root = Path(__file__).resolve().parents[1] / "parameters"
    config, space = cfg.load(root / f"{name}.yaml"), spaces.load_space(root / f"{name}-space.yaml")
    spaces.check_space(space, config)
    assert space.seed == 1234 and space.validation == 10000
    for dimension in space.dimensions:
        value = getattr(config, dimension.key)
        if dimension.kind in ("uniform", "loguniform"):
            low, high = dimension.values
            assert low <= value <= high, (dimension, value)
        else:
            assert value in dimension.values, (dimension, value)


@pytest.mark.parametrize("name", ["mnist-100", "mnist-400", "mnist-1600", "mnist-6400"])
def test_the_deskew_space_compares_each_mnist_file_with_and_without_deskewed_digits(name):
    """parameters/mnist-deskew-space.yaml chose ``deskew: true`` for every MNIST file: it is
    valid with each, searches both values on the fixed split, and each file took ``true``."""
    root = Path(__file__).resolve().parents[1] / "parameters"
    config, space = cfg.load(root / f"{name}.yaml"), spaces.load_space(root / "mnist-deskew-space.yaml")
    spaces.check_space(space, config)
    assert space.seed == 1234 and space.validation == 10000
    [dimension] = space.dimensions
    assert (dimension.key, dimension.kind, sorted(dimension.values)) == ("deskew", "grid", [False, True])
    assert config.deskew is True


@pytest.mark.parametrize("name", ["fashion-400", "fashion-6400"])
def test_the_gamma_space_compares_each_fashion_file_with_its_grey_levels_to_powers(name):
    """parameters/fashion-gamma-space.yaml chose ``gamma: 0.5`` for the Fashion-MNIST files:
    valid with each, it searches the grey levels as they are and three powers on the fixed
    split, and each file took the square root."""
    root = Path(__file__).resolve().parents[1] / "parameters"
    config, space = cfg.load(root / f"{name}.yaml"), spaces.load_space(root / "fashion-gamma-space.yaml")
    spaces.check_space(space, config)
    assert space.seed == 1234 and space.validation == 10000
    [dimension] = space.dimensions
    assert (dimension.key, dimension.kind) == ("gamma", "grid") and 1.0 in dimension.values
    assert config.gamma == 0.5
