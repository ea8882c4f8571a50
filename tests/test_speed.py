"""The speed work of issue 18 changes no result: vectorized seeds equal numpy's, a
chunked run equals an image-by-image run, inference on several workers equals one."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl import data
from snnctl import engine as engines
from snnctl import service
from snnctl.cli import app
from snnctl.errors import ConfigError
from snnctl.seeds import SPLIT_CODES, presentation_seed, presentation_seeds

from conftest import assert_one_line_error, tiny_config



@pytest.mark.parametrize("seed", [0, 1, 1234, 2**31 - 1, 2**32 + 5, 2**70 + 3])
def test_vectorized_presentation_seeds_equal_numpys_seed_sequence(seed):
    rng = np.random.default_rng(seed % 1000)
    positions = np.concatenate([np.arange(40), rng.integers(0, 2**40, 40), [2**32 - 1, 2**32, 2**62]])
    for split in SPLIT_CODES:
        for prefix in [(), (0,), (7,), (2**33,)]:
            expected = [presentation_seed(seed, split, *prefix, int(p)) for p in positions]
            assert presentation_seeds(seed, split, prefix, positions).tolist() == expected, (split, prefix)


def test_presentation_seeds_refuse_negative_positions():
    with pytest.raises(ValueError, match="positions"):
        presentation_seeds(1, "train", (0,), np.array([3, -1]))


def _same_checkpoint(first: str, second: str) -> None:
    a, b = ckpt.load(first), ckpt.load(second)
    for name, tensor in a.tensors.named().items():
        assert torch.equal(tensor, b.tensors.named()[name]), name
    for name, tensor in a.labels.named().items():
        assert torch.equal(tensor, b.labels.named()[name]), name
    assert a.progress == b.progress and a.info == b.info


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_chunked_run_gives_the_checkpoint_of_an_image_by_image_run(tmp_path, monkeypatch, batch_size):
    # Retries (min_spikes), intervals and checkpoints that cut chunks at odd places, two epochs.
    config = tiny_config(tmp_path, n_train=70, n_test=30, batch_size=batch_size, epochs=2, min_spikes=6,
                         update_interval=17, checkpoint_every=29, one_spike="bindsnet", name="run")
    chunked = service.train(config, out=tmp_path / "chunked")
    # Engine.present_sequence presents batch by batch through present_with_retries, as before chunks.
    monkeypatch.setattr(engines.FastEngine, "present_sequence", engines.Engine.present_sequence)
    by_image = service.train(config, out=tmp_path / "by-image")
    _same_checkpoint(chunked.checkpoint, by_image.checkpoint)
    assert chunked.train_accuracy == by_image.train_accuracy and chunked.test_accuracy == by_image.test_accuracy


def test_a_run_stopped_mid_chunk_resumes_to_the_same_checkpoint(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, n_train=60, n_test=20, batch_size=1, update_interval=25, name="run")
    whole = service.train(config, out=tmp_path / "whole")
    monkeypatch.setattr(engines.FastEngine, "images_per_call", 7)
    stop = {"after": 3}

    def interrupt(update):  # a SIGINT in the third chunk: the run stops after that chunk, saved
        stop["after"] -= 1
        if stop["after"] == 0:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(service.Interrupted) as stopped:
        service.train(config, out=tmp_path / "stopped", on_progress=interrupt)
    assert ckpt.load(stopped.value.checkpoint).progress.samples_seen == 21
    monkeypatch.setattr(engines.FastEngine, "images_per_call", 1000)
    resumed = service.train(resume=stopped.value.checkpoint)
    _same_checkpoint(whole.checkpoint, resumed.checkpoint)


def test_a_signal_stops_the_bindsnet_engine_within_its_few_images_a_call(tmp_path):
    config = tiny_config(tmp_path, n_train=40, n_test=10, batch_size=1, update_interval=40, engine="bindsnet",
                         one_spike="bindsnet", n_neurons=9, time=20)

    def interrupt(update):  # a SIGINT as the first call's images are counted
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(service.Interrupted) as stopped:
        service.train(config, out=tmp_path / "stopped", on_progress=interrupt)
    assert ckpt.load(stopped.value.checkpoint).progress.samples_seen == engines.BindsNETEngine.images_per_call < 40


@pytest.mark.parametrize("batch_size", [1, 4])
def test_inference_on_several_workers_equals_one(trained_run, batch_size):
    # min_spikes: silent images are presented again, in whichever worker holds them
    overrides = [f"batch_size={batch_size}", "min_spikes=8"]
    stored = ckpt.load(trained_run.checkpoint).config
    config = cfg.apply_overrides(stored, overrides)
    tensors = ckpt.load(trained_run.checkpoint).tensors
    images = data.load_splits(config, service.quiet).test.images
    counts = {w: service.spike_counts(engines.make_engine(config.replace(workers=str(w)), tensors), config, images,
                                      "test") for w in (1, 2, 3)}
    assert counts[1].sum() > 0
    assert torch.equal(counts[1], counts[2]) and torch.equal(counts[1], counts[3])


def test_workers_key_takes_auto_or_a_positive_integer(tmp_path):
    assert engines.worker_count(cfg.Config().replace(workers="3")) == 3
    assert engines.worker_count(cfg.Config()) >= 1
    with pytest.raises(ConfigError, match="workers: '0' is not auto or an integer >= 1"):
        cfg.apply_overrides(cfg.Config(), ["workers=0"])


def test_evaluate_and_assign_take_workers_with_the_same_results(trained_run, tmp_path):
    one, two = (service.evaluate(trained_run.checkpoint, workers=w) for w in ("1", "2"))
    assert one.accuracy == two.accuracy and one.confusion == two.confusion
    assigned = [service.assign(trained_run.checkpoint, n=200, output=tmp_path / f"{w}.safetensors", workers=w)
                for w in ("1", "2")]
    assert assigned[0].neurons_per_class == assigned[1].neurons_per_class
    assert assigned[0].new_accuracy == assigned[1].new_accuracy


def test_a_bad_workers_option_is_one_line_exit_2(trained_run):
    for command in ("evaluate", "assign"):
        result = CliRunner().invoke(app, [command, trained_run.checkpoint, "--workers", "0"])
        assert_one_line_error(result, 2, "Invalid value for '--workers': '0' is not auto or an integer >= 1")
