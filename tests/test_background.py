"""Work beside training: the pixel baseline fitted on a spare core while STDP trains, the
same readout as fitted after, its notices said when it is collected."""

from __future__ import annotations

import threading

import pytest

from snnctl import service
from snnctl.service import readouts
from snnctl.service.background import Beside

from conftest import tiny_config


def test_beside_runs_the_work_on_its_own_thread_and_says_its_notices_when_collected():
    started, release = threading.Event(), threading.Event()

    def work(notice):
        started.set()
        notice("first")
        release.wait(10)
        notice("second")
        return threading.current_thread().name

    beside = Beside(work, spare_core=True)
    assert started.wait(10)  # running before anyone asks for it
    said = []
    release.set()
    assert beside.result(said.append) == "snnctl-beside-training"
    assert said == ["first", "second"]


def test_without_a_spare_core_the_work_runs_when_collected():
    ran = []
    beside = Beside(lambda notice: ran.append(threading.current_thread().name) or 7, spare_core=False)
    assert ran == []
    assert beside.result(lambda line: None) == 7 and ran == [threading.current_thread().name]


def test_an_error_of_the_work_is_raised_when_collected():
    def work(notice):
        notice("before the error")
        raise ValueError("no pixels")

    beside = Beside(work, spare_core=True)
    said = []
    with pytest.raises(ValueError, match="no pixels"):
        beside.result(said.append)
    assert said == ["before the error"]


def test_train_fits_the_pixel_baseline_beside_the_training_with_the_same_result(tmp_path, monkeypatch):
    threads = []
    fit = readouts.fit_pixel_baseline

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return fit(*args, **kwargs)

    monkeypatch.setattr(readouts, "fit_pixel_baseline", recording)
    baselines = {}
    for workers in ("2", "1"):
        monkeypatch.setenv("SNNCTL_CACHE_DIR", str(tmp_path / f"cache-{workers}"))  # fitted, not read back
        config = tiny_config(tmp_path, name=f"workers-{workers}", n_train=300, n_test=100, n_neurons=25, epochs=1,
                             workers=workers)
        baselines[workers] = service.train(config).scores.baseline
    assert threads == ["snnctl-beside-training", "MainThread"]
    assert baselines["2"] is not None and baselines["2"].n_images == 100
    assert baselines["2"] == baselines["1"]  # beside the training or after it: the same fit, the same scores
