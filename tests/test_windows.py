"""Receptive fields smaller than the image (``patch_size``): windows, the training order,
the window drive, and a layer trained on windows through the command line."""

from __future__ import annotations

import dataclasses
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
from snnctl.readout.features import centre_positions, input_drive, window_drive

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


@pytest.mark.parametrize("size, patch, shift", [(64, 12, 0), (24, 6, 0), (24, 6, 2), (10, 10, 0), (9, 2, 1)])
def test_the_centre_is_every_window_centred_in_the_middle_half_of_the_image(size, patch, shift):
    positions = size + 2 * shift - patch + 1
    # window k covers padded pixels k .. k + patch - 1: image pixels from k - shift
    centred = [k for k in range(positions) if size / 4 <= k - shift + (patch - 1) / 2 < 3 * size / 4]
    middle = centre_positions(size, patch, shift)
    assert list(range(positions))[middle] == (centred or [positions // 2])


def random_on_off_layer(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three random ON/OFF images of 16 x 16, the fields of 5 neurons on 4 x 4 windows, and
    every window of each image at its position: [3, 13, 13, 32]."""
    rng = np.random.default_rng(seed)
    pixels = rng.random((3, 2 * 16 * 16)).astype(np.float32)
    fields = rng.random((2 * 4 * 4, 5)).astype(np.float32)
    every = windows.sliding_windows(torch.from_numpy(pixels), 16, 4, 1).numpy().reshape(3, 13, 13, -1)
    return pixels, fields, every


def test_centre_pooling_adds_each_neurons_largest_drive_over_the_windows_at_the_centre():
    pixels, fields, every = random_on_off_layer(1)
    pooled = window_drive(pixels, fields, 16, pooling="centre")
    assert pooled.shape == (3, 10)
    np.testing.assert_array_equal(pooled[:, :5], window_drive(pixels, fields, 16))
    middle = centre_positions(16, 4)  # windows at 3..10, centred on pixels 4.5..11.5
    assert (middle.start, middle.stop) == (3, 11)
    expected = np.stack([input_drive(image[middle, middle].reshape(64, -1), fields).max(axis=0) for image in every])
    np.testing.assert_allclose(pooled[:, 5:], expected, rtol=1e-5, atol=1e-5)


def test_a_speck_at_the_centre_and_one_at_the_border_differ_only_in_the_centre_feature():
    speck = np.zeros((4, 4), np.float32)
    speck[1:3, 1:3] = 1.0
    fields = np.stack([speck.ravel(), np.full(16, 0.25, np.float32)], 1)  # a speck detector, a flat one
    images = np.zeros((2, 16, 16), np.float32)
    images[0, 7:9, 7:9] = 1.0  # at the centre
    images[1, 1:3, 13:15] = 1.0  # at the top right
    features = window_drive(images.reshape(2, -1), fields, 16, pooling="centre")
    np.testing.assert_allclose(features[0, :2], features[1, :2])  # the same largest drive anywhere
    assert features[0, 2] == features[0, 0] > 0  # at the centre: found there too
    assert features[1, 2] < features[1, 0] / 2  # at the border: the centre sees only tissue


def test_centre_mean_pooling_adds_each_neurons_mean_drive_over_the_image_and_over_the_centre():
    pixels, fields, every = random_on_off_layer(2)
    pooled = window_drive(pixels, fields, 16, pooling="centre-mean")
    assert pooled.shape == (3, 20)
    np.testing.assert_array_equal(pooled[:, :10], window_drive(pixels, fields, 16, pooling="centre"))
    middle = centre_positions(16, 4)
    whole = np.stack([input_drive(image.reshape(169, -1), fields).mean(axis=0) for image in every])
    centre = np.stack([input_drive(image[middle, middle].reshape(64, -1), fields).mean(axis=0) for image in every])
    np.testing.assert_allclose(pooled[:, 10:15], whole, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pooled[:, 15:], centre, rtol=1e-5, atol=1e-5)


def test_the_mean_tells_many_specks_from_one_where_the_maximum_cannot():
    """Texture: a cluster of specks and a single speck have the same largest drive; the mean
    over the windows counts them."""
    speck = np.zeros((4, 4), np.float32)
    speck[1:3, 1:3] = 1.0
    fields = np.stack([speck.ravel(), np.full(16, 0.25, np.float32)], 1)  # a speck detector, a flat one
    images = np.zeros((2, 16, 16), np.float32)
    images[0, 7:9, 7:9] = 1.0  # one speck
    for row, col in [(2, 2), (2, 11), (7, 7), (12, 3), (12, 12)]:  # five
        images[1, row:row + 2, col:col + 2] = 1.0
    features = window_drive(images.reshape(2, -1), fields, 16, pooling="centre-mean")
    np.testing.assert_allclose(features[0, :2], features[1, :2])  # the same largest drive
    assert features[1, 4] > 3 * features[0, 4]  # the detector's mean over the image counts the specks


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


@pytest.mark.parametrize("lines, words", [
    ("readout_features: drive\nreadout_pooling: centre\n", ["readout_pooling", "'centre'", "patch_size"]),
    ("patch_size: 10\nreadout_pooling: centre\n", ["readout_pooling", "readout_features: drive", "counts"]),
    ("readout_features: drive\npatch_size: 10\nreadout_pooling: middle\n", ["readout_pooling", "middle", "centre"]),
    ("readout_features: drive\nreadout_pooling: centre-mean\n", ["readout_pooling", "'centre-mean'", "patch_size"]),
])
def test_centre_pooling_without_windows_or_drive_is_one_clear_error(tmp_path, lines, words):
    params = tmp_path / "p.yaml"
    params.write_text("task: MNIST\ninput_size: 28\n" + lines)
    result = runner.invoke(app, ["train", str(params)])
    assert_one_line_error(result, 2, str(params), *words)


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


def assigned_with_pooling(window_run, pooling: str, features_per_neuron: int) -> tuple[Path, ckpt.Checkpoint]:
    """``assign --pooling POOLING`` on the layer of 16 windowed neurons: the checkpoint it
    wrote, named after the pooling, whose readout has ``features_per_neuron`` features a
    neuron and which ``evaluate`` scores as assign did."""
    result = runner.invoke(app, ["assign", window_run["checkpoint"], "--pooling", pooling, "--json"])
    assert result.exit_code == 0, result.output
    written = Path(json.loads(result.stdout)["output"])
    assert written.name == f"checkpoint.mammo-linear-drive-{pooling}.safetensors"
    stored = ckpt.load(written)
    assert stored.config.readout_pooling == pooling and stored.readout.n_features == features_per_neuron * 16
    assigned = json.loads(result.stdout)["scores"]["linear"]["balanced_accuracy"]
    assert service.evaluate(written).scores.linear.balanced_accuracy == pytest.approx(assigned)
    return written, stored


def test_assign_pooling_centre_refits_the_readout_on_two_features_a_neuron(window_run):
    written, stored = assigned_with_pooling(window_run, "centre", 2)
    from snnctl import export

    assert export.nir_graph(stored).metadata["readout_pooling"] == "centre"
    assert any("and over those at its centre" in note for note in export.to_nir(stored).notes)
    inspected = runner.invoke(app, ["inspect", str(written)])
    assert inspected.exit_code == 0 and "2 classes x 32 features" in inspected.output
    # each class's map: both features of a neuron read its one field
    from snnctl.service.figures import readout_maps

    maps = readout_maps(stored)
    assert maps.shape == (2, 6, 6)
    per_feature = stored.readout.coef / stored.readout.scale
    field_0 = stored.tensors.weights.double().numpy()
    field_0 = (field_0 - field_0.mean(axis=1, keepdims=True))[:, 0]
    alone = readout_maps(dataclasses.replace(stored, readout=dataclasses.replace(
        stored.readout, coef=np.where(np.arange(32) % 16 == 0, stored.readout.coef, 0).astype(np.float32))))
    np.testing.assert_allclose(alone[0].ravel(), (per_feature[0, 0] + per_feature[0, 16]) * field_0, rtol=1e-5)
    drawn = runner.invoke(app, ["visualize", "readout", str(written), "--output", str(written.with_suffix(".png"))])
    assert drawn.exit_code == 0, drawn.output


def test_assign_pooling_centre_mean_refits_the_readout_on_four_features_a_neuron(window_run):
    _, stored = assigned_with_pooling(window_run, "centre-mean", 4)
    from snnctl import export

    assert any("maximum and mean over the windows" in note for note in export.to_nir(stored).notes)
    from snnctl.service.figures import readout_maps

    assert readout_maps(stored).shape == (2, 6, 6)  # all four features of a neuron read its field


def test_assign_pooling_centre_on_a_layer_without_windows_is_one_clear_error(tmp_path):
    config = tiny_config(tmp_path, readout="linear", readout_features="drive")
    trained = service.train(config, out=tmp_path / "run")
    result = runner.invoke(app, ["assign", trained.checkpoint, "--pooling", "centre"])
    assert_one_line_error(result, 2, "readout_pooling", "patch_size")
    assert not list((tmp_path / "run").glob("*centre*"))
