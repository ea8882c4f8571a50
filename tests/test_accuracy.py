"""Accuracy, honestly measured (issue 20): Fashion-MNIST through the MNIST path; the test
split read only by the final evaluation of a run and of a sweep's best configuration;
bench/accuracy.py over seeds (its quick mode; nothing about accuracy asserted)."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from snnctl import config as cfg
from snnctl import data, service
from snnctl.cli import app
from snnctl.data.mnist import FASHION_CLASSES, MNIST_CLASSES

from conftest import assert_one_line_error, synthetic_digits, tiny_config, write_idx, write_mnist_idx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "accuracy.py"
runner = CliRunner()
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_idx_files(folder: Path, n_train: int = 120, n_test: int = 40, stems: tuple[str, ...] = IDX_STEMS) -> Path:
    """The four IDX files directly in ``folder`` (gzipped), as the Debian packages install them."""
    train_x, train_y = synthetic_digits(n_train, 0)
    test_x, test_y = synthetic_digits(n_test, 1)
    arrays = dict(zip(IDX_STEMS, (train_x, train_y, test_x, test_y)))
    for stem in stems:
        write_idx(folder / stem, arrays[stem], compress=True)
    return folder


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_reads_idx_files_directly_in_data_dir_with_its_class_names(tmp_path):
    folder = write_idx_files(tmp_path / "fashion-mnist")
    splits = data.load_splits(tiny_config(tmp_path, task="FASHION", data_dir=str(folder), n_train=None,
                                          n_test=None), lambda message: None)
    assert (len(splits.train), len(splits.test)) == (120, 40)
    assert splits.train.class_names == splits.test.class_names == FASHION_CLASSES
    assert splits.train.class_names[0] == "T-shirt/top" and splits.train.class_names[9] == "Ankle boot"
    assert splits.origin == f"Fashion-MNIST IDX files in {folder}"


def test_mnist_also_reads_idx_files_directly_in_data_dir(tmp_path):
    folder = write_idx_files(tmp_path / "mnist")
    notices: list[str] = []
    splits = data.load_splits(tiny_config(tmp_path, data_dir=str(folder), n_train=None), notices.append)
    assert len(splits.train) == 120 and splits.train.class_names == MNIST_CLASSES
    assert not notices  # no fall-back to the bundled subset


@pytest.mark.parametrize("present", [(), IDX_STEMS[:3]], ids=["no files", "test labels missing"])
def test_fashion_without_its_files_is_one_line_naming_them(tmp_path, present):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    write_idx_files(folder, stems=present)
    params = tmp_path / "fashion.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path, task="FASHION", data_dir=str(folder))))
    result = runner.invoke(app, ["train", str(params), "--out", str(tmp_path / "run")])
    assert_one_line_error(result, 2, "data_dir", "Fashion-MNIST", "t10k-labels-idx1-ubyte", str(folder),
                          "dataset-fashion-mnist")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.parametrize("name", ["fashion-400.yaml", "fashion-1600.yaml", "fashion-6400.yaml"])
def test_fashion_parameter_files_load_as_fashion(name):
    config = cfg.load(ROOT / "parameters" / name)
    assert config.task == "FASHION" and config.data_dir == "/usr/share/datasets/fashion-mnist"
    assert config.n_neurons == int(name.split("-")[1].split(".")[0])


def test_fashion_6400_sees_the_grey_levels_beside_their_on_and_off_channels():
    # chosen on the validation split at 6,400 neurons (docs/accuracy.md); at 400 they cost the vote
    assert cfg.load(ROOT / "parameters" / "fashion-6400.yaml").n_inputs == 3 * 28 * 28
    assert cfg.load(ROOT / "parameters" / "fashion-400.yaml").encoding == "rate"


# ---------------------------------------------------------------- the test split, read last


class SplitReadEarly(AssertionError):
    """A test image or label was read before the final evaluation of the run."""


def _log(path: str, event: str) -> None:
    with open(path, "a") as handle:  # one short line per write: appends from processes do not mix
        handle.write(f"{os.getpid()} {event}\n")


def watch_test_split(log_path: str) -> None:
    """Instrument this process: every Splits that ``data.load_splits`` returns gets a test
    set that logs each read of its images or labels, and raises when the run has not yet
    begun its final labelling (service.train's counts of the training images with learning
    off, after the last training presentation) since it loaded its data. Loads and the
    start of labelling are logged too. Also Ray's worker set-up hook."""
    training = importlib.import_module("snnctl.service.train")  # the module, not service.train

    labelling = {"since_load": False}
    load, counts = data.load_splits, training.spike_counts

    class WatchedDataset(data.Dataset):
        def __getattribute__(self, name: str):
            if name in ("images", "labels"):
                _log(log_path, f"test {name}")
                if not labelling["since_load"]:
                    raise SplitReadEarly(f"test {name} read before the run's final labelling")
            return super().__getattribute__(name)

    def watched_load(*args, **kwargs):
        splits = load(*args, **kwargs)
        labelling["since_load"] = False
        _log(log_path, "load")
        test = splits.test
        watched = WatchedDataset(test.images, test.labels, test.class_names, test.sources, test.groups)
        return dataclasses.replace(splits, test=watched)

    def logged_counts(engine, config, images, split, phase, *args, **kwargs):
        if phase == "label":
            labelling["since_load"] = True
        _log(log_path, phase)
        return counts(engine, config, images, split, phase, *args, **kwargs)

    data.load_splits, training.spike_counts = watched_load, logged_counts


def read_log(path: Path) -> list[tuple[int, str]]:
    return [(int(pid), event) for pid, event in (line.split(" ", 1) for line in path.read_text().splitlines())]


@pytest.fixture
def restore_instrumented():
    """Undo watch_test_split in this process after the test."""
    training = importlib.import_module("snnctl.service.train")  # the module, not service.train

    saved = data.load_splits, training.spike_counts
    yield
    data.load_splits, training.spike_counts = saved


def test_a_run_reads_the_test_split_only_after_training_and_labelling(tmp_path, restore_instrumented):

    write_mnist_idx(tmp_path / "data")
    log = tmp_path / "reads.log"
    watch_test_split(str(log))
    result = service.train(tiny_config(tmp_path, n_train=None, n_test=None, epochs=2), out=tmp_path / "run")
    assert result.n_test == 40 and result.held_out == "test"
    events = [event for _, event in read_log(log)]
    assert events[0] == "load" and events.count("label") == 1
    assert "test images" in events and "test labels" in events  # the final evaluation did read them
    first_read = min(i for i, event in enumerate(events) if event.startswith("test "))
    assert first_read > events.index("label"), events


@pytest.mark.slow
def test_a_sweep_reads_the_test_split_only_in_its_final_evaluation(tmp_path, restore_instrumented):
    """No trial, in its Ray worker, ever reads a test image or label; the sweep's own process
    reads them only after its final run (the best configuration) has trained and labelled."""
    import ray
    from ray import cloudpickle


    write_mnist_idx(tmp_path / "data", n_train=120, n_test=40)
    log = tmp_path / "reads.log"
    watch_test_split(str(log))
    params = tiny_config(tmp_path, n_neurons=16, time=40, n_train=None, n_test=None, update_interval=16)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"parameters": {"inh": {"grid": [60, 120]}}, "validation": 40,
                                     "early_stopping": "none"}))
    def set_up_worker() -> None:
        watch_test_split(str(log))

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             runtime_env={"worker_process_setup_hook": set_up_worker})
    try:
        result = service.sweep(params, space, out=tmp_path / "sweep")
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert len(result.trials) == 2 and all(trial.status == "finished" for trial in result.trials)
    events = read_log(log)
    here = os.getpid()
    workers = [(pid, event) for pid, event in events if pid != here]
    # the trials ran instrumented: each loaded the data, labelled and validated, and read no test image
    assert [event for _, event in workers].count("load") >= 2, workers
    assert [event for _, event in workers].count("validation") >= 2, workers
    assert not [event for _, event in workers if event.startswith("test")], workers
    mine = [event for pid, event in events if pid == here]
    # set-up loads the data to check the validation split; the final run loads, trains, labels, tests
    final_load = len(mine) - 1 - mine[::-1].index("load")
    assert mine[final_load:].count("label") == 1
    reads = [i for i, event in enumerate(mine) if event.startswith("test ")]
    assert reads and min(reads) > mine.index("label", final_load), mine
    assert result.final.held_out == "test" and result.final.n_test == 40


# ---------------------------------------------------------------- bench/accuracy.py


@pytest.mark.slow
def test_accuracy_benchmark_quick_mode_prints_mean_and_sd_over_seeds(capsys):
    result = subprocess.run([sys.executable, str(BENCH), "--quick", "--seeds", "2"], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    with capsys.disabled():  # the table appears in the suite's output
        print("\n" + result.stdout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:3] == ["configuration", "neurons", "seeds"] and "minutes in all" in header
    rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]
    assert len(rows) == 1 and rows[0]["configuration"] == "subset (mnist.yaml)" and rows[0]["seeds"] == "2"
    for column in ("all activity", "proportion weighting", "pixel baseline"):
        assert re.fullmatch(r"\d+\.\d\d ± \d+\.\d\d%", rows[0][column]), rows[0]
    # each seed's vote, in seed order, whose mean is the column beside it
    by_seed = [float(value.rstrip("%")) for value in rows[0]["proportion weighting by seed"].split(" / ")]
    assert len(by_seed) == 2
    assert abs(sum(by_seed) / 2 - float(rows[0]["proportion weighting"].split(" ± ")[0])) < 0.011
    # the linear readout names what it read: mnist.yaml's readout_features
    assert re.fullmatch(r"\d+\.\d\d ± \d+\.\d\d% \(drive\)", rows[0]["linear readout"]), rows[0]
    assert float(rows[0]["minutes in all"]) >= float(rows[0]["minutes a run"])


def test_accuracy_benchmark_refuses_an_unknown_configuration():
    result = subprocess.run([sys.executable, str(BENCH), "100", "fashion-100"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "unknown configuration 'fashion-100'" in result.stderr
    assert "|" not in result.stdout
