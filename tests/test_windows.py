"""Receptive fields smaller than the image (``patch_size``): windows, the training order,
the window drive, and a layer trained on windows through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl import data, service
from snnctl.cli import app
from snnctl.data import windows
from snnctl.readout.features import input_drive, window_drive

from conftest import assert_one_line_error, tiny_config

runner = CliRunner()


def test_sliding_windows_by_hand():
    # two channels of a 3 x 3 image: 0..8 and 10..18
    image = torch.cat([torch.arange(9.0), torch.arange(9.0) + 10])[None]
    tiles = windows.sliding_windows(image, 3, 2, 1)
    assert tiles.shape == (1, 4, 8)
    # the top-left window: 0 1 / 3 4 of each channel, channel after channel
    assert tiles[0, 0].tolist() == [0, 1, 3, 4, 10, 11, 13, 14]
    # the bottom-right window
    assert tiles[0, 3].tolist() == [4, 5, 7, 8, 14, 15, 17, 18]


def test_random_windows_are_inside_the_image_and_drawn_by_their_seed():
    images = torch.arange(2 * 36, dtype=torch.float32).reshape(2, 36)  # two 6 x 6 images
    seeds = np.array([11, 12])
    first = windows.random_windows(images, 6, 4, seeds)
    assert first.shape == (2, 16)
    assert torch.equal(first, windows.random_windows(images, 6, 4, seeds))
    for k in range(2):  # each is one of the image's own windows
        assert any(torch.equal(first[k], tile) for tile in windows.sliding_windows(images[k:k + 1], 6, 4, 1)[0])
    others = torch.stack([windows.random_windows(images, 6, 4, np.array([s, s]))[0] for s in range(20)])
    assert len(torch.unique(others, dim=0)) > 1


def test_window_drive_is_the_largest_drive_of_any_window():
    rng = np.random.default_rng(0)
    pixels = rng.random((3, 2 * 8 * 8)).astype(np.float32)  # ON/OFF, 8 x 8
    fields = rng.random((2 * 3 * 3, 5)).astype(np.float32)  # 3 x 3 windows, 5 neurons
    every = windows.sliding_windows(torch.from_numpy(pixels), 8, 3, 1).numpy()  # [3, 36, 18]
    expected = np.stack([input_drive(image_windows, fields).max(axis=0) for image_windows in every])
    np.testing.assert_allclose(window_drive(pixels, fields, 8), expected, rtol=1e-5, atol=1e-5)


def test_a_speck_is_found_wherever_it_lies():
    """The point of windows: the same small pattern anywhere in the image gives the same feature."""
    speck = np.zeros((4, 4), np.float32)
    speck[1:3, 1:3] = 1.0
    fields = np.stack([speck.ravel(), np.full(16, 0.25, np.float32)], 1)  # a speck detector, a flat one
    images = np.zeros((2, 12, 12), np.float32)
    images[0, 1:3, 1:3] = 1.0
    images[1, 8:10, 7:9] = 1.0
    features = window_drive(images.reshape(2, -1), fields, 12)
    np.testing.assert_allclose(features[0], features[1])
    assert features[0, 0] > 4 * features[0, 1]  # the detector leads where the speck lies


def test_an_epoch_on_windows_presents_each_image_windows_per_image_times(tmp_path):
    config = tiny_config(tmp_path, patch_size=10, windows_per_image=3, batch_size=1)
    dataset = data.Dataset(torch.zeros(7, 784), torch.arange(7) % 2, ["a", "b"])
    order = data.training_order(dataset, config, 0)
    assert sorted(order.tolist()) == sorted(list(range(7)) * 3)
    assert torch.equal(order, data.training_order(dataset, config, 0))
    assert not torch.equal(order, data.training_order(dataset, config, 1))
    whole = tiny_config(tmp_path, batch_size=1)  # without windows: one pass, as before
    assert torch.equal(data.training_order(dataset, whole, 0), data.epoch_order(7, whole.seed, 0))


def test_the_layer_has_one_input_per_window_pixel(tmp_path):
    config = tiny_config(tmp_path, patch_size=10, encoding="on-off", input_size=28)
    assert config.field_size == 10 and config.n_inputs == 2 * 100 and config.n_image_inputs == 2 * 784
    assert config.tensor_shapes()["input_to_exc.weight"] == (200, config.n_neurons)


def test_a_window_larger_than_the_image_is_one_clear_error(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("task: MNIST\ninput_size: 28\npatch_size: 40\n")
    with pytest.raises(cfg.ConfigError, match="patch_size: 40 is larger than the image"):
        cfg.load(params)
    result = runner.invoke(app, ["train", str(params)])
    assert_one_line_error(result, 2, str(params), "patch_size", "40")


def _specks(root: Path, patients: int, seed: int) -> Path:
    """Two classes of 24 x 24 images, two views per patient: faint noise, and in class
    ``speck`` a bright 2 x 2 speck anywhere in the frame."""
    rng = np.random.default_rng(seed)
    for patient in range(patients):
        label = ("plain", "speck")[patient % 2]
        (root / label).mkdir(parents=True, exist_ok=True)
        for view in ("CC", "MLO"):
            image = 0.4 + 0.05 * rng.standard_normal((24, 24))
            if label == "speck":
                r, c = rng.integers(0, 22, 2)
                image[r:r + 2, c:c + 2] = 1.0
            Image.fromarray((image.clip(0, 1) * 255).astype(np.uint8)).save(root / label / f"P{patient:03d}_{view}.png")
    return root


@pytest.fixture(scope="module")
def window_run(tmp_path_factory):
    """A 16-neuron layer of 6 x 6 windows trained on speck images, read out on the window drive."""
    root = tmp_path_factory.mktemp("windows")
    params = root / "p.yaml"
    params.write_text(
        f"task: MAMMO\ndata_dir: {_specks(root / 'data', 40, 0)}\nlog_dir: {root / 'logs'}\nn_classes: 2\n"
        "input_size: 24\npatch_size: 6\nwindows_per_image: 4\nn_neurons: 16\nbatch_size: 1\ntime: 50\n"
        "group: '^(P\\d+)_'\nreadout: linear\nreadout_features: drive\none_spike: winner\n"
        "checkpoint_every: 0\nseed: 3\n")
    result = runner.invoke(app, ["train", str(params), "--out", str(root / "run"), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_layer_of_windows_trains_saves_and_evaluates_as_it_was_scored(window_run):
    stored = ckpt.load(window_run["checkpoint"])
    assert stored.config.patch_size == 6 and stored.tensors.weights.shape == (36, 16)
    # every training image gave windows_per_image windows to STDP
    assert window_run["samples_seen"] == 4 * window_run["n_train"]
    evaluated = service.evaluate(Path(window_run["checkpoint"]))
    assert evaluated.scores.linear.balanced_accuracy == pytest.approx(
        window_run["scores"]["linear"]["balanced_accuracy"])
    # a speck anywhere is what tells the classes apart: the window drive finds it, and the
    # regression on the whole image's pixels cannot
    assert window_run["scores"]["linear"]["balanced_accuracy"] >= 0.9
    assert window_run["scores"]["linear"]["balanced_accuracy"] > window_run["scores"]["baseline"]["balanced_accuracy"]


def test_the_weights_figure_draws_one_tile_per_window_field(window_run, tmp_path):
    output = tmp_path / "weights.png"
    result = runner.invoke(app, ["visualize", "weights", window_run["checkpoint"], "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert output.stat().st_size > 0
    stored = ckpt.load(window_run["checkpoint"])
    from snnctl.logs import receptive_field_grid

    assert tuple(receptive_field_grid(stored.tensors.weights, stored.config.field_size).shape) == (4 * 6, 4 * 6)


def test_inspect_shows_the_window_size(window_run):
    result = runner.invoke(app, ["inspect", window_run["checkpoint"]])
    assert result.exit_code == 0, result.output
    assert "input 24x24, receptive fields 6x6 windows" in result.output


@pytest.mark.parametrize("figure", ["spikes", "readout"])
def test_the_figures_that_read_the_fields_draw_a_layer_of_windows(window_run, tmp_path, figure):
    output = tmp_path / f"{figure}.png"
    result = runner.invoke(app, ["visualize", figure, window_run["checkpoint"], "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert output.stat().st_size > 0


def test_the_nir_export_of_a_layer_of_windows_says_what_the_graph_leaves_out(window_run):
    from snnctl import export

    exported = export.to_nir(ckpt.load(window_run["checkpoint"]))
    assert any("6x6 windows" in note and "24x24 image" in note for note in exported.notes)
    graph = export.nir_graph(ckpt.load(window_run["checkpoint"]))
    assert graph.metadata["patch_size"] == 6 and graph.nodes["input"].input_type["input"].tolist() == [36]
