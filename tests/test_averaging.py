"""``average_weights``: the weights a run keeps are the mean of its snapshots over the end of
the final epoch, taken at fixed places, so chunks, image-by-image runs and resumed runs
average the same weights."""

from __future__ import annotations

import importlib
import os
import signal

import pytest
import torch

from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl import engine as engines
from snnctl.engine.lockstep import check_lockstep
from snnctl import service
from snnctl.errors import ConfigError
from snnctl.data import Dataset
from snnctl.service.averaging import WeightAverage

from conftest import tiny_config

averaging = importlib.import_module("snnctl.service.averaging")
train_service = importlib.import_module("snnctl.service.train")  # the module, not service.train


def _weights(result) -> torch.Tensor:
    return ckpt.load(result.checkpoint).tensors.weights


def test_snapshot_places_are_every_so_many_images_of_the_stretch_and_its_end():
    average = WeightAverage(first=25, end=50, every=7)
    places = [p for p in range(51) if average.places_through(p) > average.places_through(p - 1)]
    assert places == [32, 39, 46, 50]
    assert [average.next_place(p) for p in (0, 25, 31, 32, 46, 47)] == [32, 32, 32, 39, 50, 50]
    train_set = Dataset(torch.zeros(50, 784, dtype=torch.uint8), torch.arange(50) % 10, [str(c) for c in range(10)])
    halves = WeightAverage.of(cfg.Config(average_weights=0.5, epochs=2), train_set, epoch=1)
    assert (halves.first, halves.end, halves.every) == (25, 50, averaging.AVERAGE_EVERY)
    # a resumed sum belongs to the final epoch it was taken in
    assert WeightAverage.of(cfg.Config(average_weights=0.5, epochs=3), train_set, torch.ones(2), epoch=1).total is None
    assert WeightAverage.of(cfg.Config(average_weights=0.5, epochs=3), train_set, torch.ones(2), epoch=2).total is not None
    assert WeightAverage.of(cfg.Config(), train_set) is None


def test_a_batch_that_passes_several_places_counts_its_weights_once_for_each():
    average = WeightAverage(first=10, end=30, every=4)  # places 14, 18, 22, 26, 30
    first, second = torch.full((2, 3), 1.0), torch.full((2, 3), 6.0)
    average.add(lambda: first, 8, 18)  # passes 14 and 18
    average.add(lambda: second, 18, 30)  # passes 22, 26 and 30
    average.add(lambda: pytest.fail("read where no place lies"), 30, 30)
    assert torch.equal(average.mean(), torch.full((2, 3), (2 * 1.0 + 3 * 6.0) / 5))


@pytest.mark.parametrize("engine", ["fast", "bindsnet"])
def test_the_kept_weights_are_the_mean_of_the_snapshots(tmp_path, monkeypatch, engine):
    monkeypatch.setattr(averaging, "AVERAGE_EVERY", 7)
    config = tiny_config(tmp_path, n_train=48, n_test=20, batch_size=1, epochs=2, update_interval=10, engine=engine,
                         name="run")
    last = service.train(config, out=tmp_path / "last")
    snapshots: list[tuple[int, torch.Tensor]] = []
    add = WeightAverage.add

    def recording(self, read_weights, before, after):
        if self.places_through(after) > self.places_through(before):
            snapshots.append((after, read_weights().clone()))
        add(self, read_weights, before, after)

    monkeypatch.setattr(WeightAverage, "add", recording)
    averaged = service.train(config.replace(average_weights=0.5), out=tmp_path / "averaged")
    # the places of the second epoch's last half, whatever the chunks (intervals of 10 images)
    assert [after for after, _ in snapshots] == [31, 38, 45, 48]
    # learning itself is unchanged (BindsNET normalizes the weights again after every run,
    # labelling and testing too: a float rounding apart)
    torch.testing.assert_close(snapshots[-1][1], _weights(last), rtol=0 if engine == "fast" else 1e-5, atol=0)
    mean = torch.stack([w.double() for _, w in snapshots]).mean(0).float()
    torch.testing.assert_close(_weights(averaged), mean, rtol=1e-5, atol=1e-8)
    assert not torch.equal(_weights(averaged), _weights(last))
    assert ckpt.load(averaged.checkpoint).weights_sum is None  # a finished run keeps the mean only
    # the network was tested with the mean: the checkpoint's evaluation reproduces the run's
    assert service.evaluate(averaged.checkpoint).accuracy == averaged.test_accuracy


def test_a_chunked_run_averages_as_an_image_by_image_run(tmp_path, monkeypatch):
    monkeypatch.setattr(averaging, "AVERAGE_EVERY", 5)
    config = tiny_config(tmp_path, n_train=40, n_test=20, batch_size=1, epochs=2, update_interval=13,
                         average_weights=0.6, name="run")
    chunked = service.train(config, out=tmp_path / "chunked")
    monkeypatch.setattr(engines.FastEngine, "present_sequence", engines.Engine.present_sequence)
    by_image = service.train(config, out=tmp_path / "by-image")
    assert torch.equal(_weights(chunked), _weights(by_image))
    assert chunked.test_accuracy == by_image.test_accuracy


def test_a_run_stopped_inside_the_stretch_resumes_to_the_same_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(averaging, "AVERAGE_EVERY", 4)
    config = tiny_config(tmp_path, n_train=40, n_test=20, batch_size=1, epochs=2, update_interval=10,
                         average_weights=0.5, name="run")
    whole = service.train(config, out=tmp_path / "whole")
    # progress comes after each chunk: 4 in the first epoch (intervals of 10), then 10, 20 and
    # 24, the stretch's first snapshot place (it starts after image 20; every 4 images)
    calls = {"left": 7}

    def interrupt(update):
        calls["left"] -= 1
        if calls["left"] == 0:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(service.Interrupted) as stopped:
        service.train(config, out=tmp_path / "stopped", on_progress=interrupt)
    saved = ckpt.load(stopped.value.checkpoint)
    assert (saved.progress.epoch, saved.progress.position) == (1, 24)
    assert saved.weights_sum is not None and saved.weights_sum.dtype == torch.float64
    resumed = service.train(resume=stopped.value.checkpoint)
    assert torch.equal(_weights(whole), _weights(resumed))
    assert whole.test_accuracy == resumed.test_accuracy


def test_average_weights_is_a_fraction_of_an_epoch_and_not_run_in_lockstep(tmp_path):
    for value in ("0", "1.5", "-0.1"):
        with pytest.raises(ConfigError, match="average_weights: .* is out of range"):
            cfg.apply_overrides(cfg.Config(), [f"average_weights={value}"])
    assert cfg.apply_overrides(cfg.Config(), ["average_weights=1"]).average_weights == 1.0
    with pytest.raises(ConfigError, match=r"average_weights is not run in lockstep \(set networks_per_device: null"):
        check_lockstep(cfg.Config(batch_size=1, average_weights=0.5), "p.yaml")
