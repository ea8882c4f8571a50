"""What the linear readout reads (``readout_features``): the spike counts, or each neuron's
input drive above the layer's mean; the same at fit time and at test time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import service
from snnctl.cli import app
from snnctl.errors import ConfigError
from snnctl.readout.features import TRANSFORMS, input_drive, window_drive
from snnctl.readout.linear import LinearReadout
from snnctl.service import readouts
from snnctl.service.checkpoints import classify

from conftest import tiny_config

runner = CliRunner()


def test_input_drive_by_hand():
    weights = np.array([[1.0, 0.0, 0.5],
                        [0.0, 1.0, 0.5]])  # two inputs, three neurons
    pixels = np.array([[1.0, 0.0],   # drive (1, 0, 0.5), mean 0.5
                       [0.2, 0.2]])  # drive (0.2, 0.2, 0.2): no neuron above the mean
    np.testing.assert_allclose(input_drive(pixels, weights), [[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])


def test_the_neuron_whose_field_matches_the_image_leads_and_the_rest_are_graded():
    rng = np.random.default_rng(0)
    fields = rng.random((50, 6))
    image = fields[:, 4] + 0.1 * rng.random(50)  # most like neuron 4's field
    drive = input_drive(image[None], fields)[0]
    assert drive.argmax() == 4
    assert (drive >= 0).all() and 0 < (drive > 0).sum() < 6  # some above the mean, some not


def test_features_of_8_bit_and_float_pixels_agree_and_counts_pass_through(tmp_path):
    weights = torch.rand(784, 5)
    images = torch.randint(0, 256, (4, 784), dtype=torch.uint8)
    counts = torch.randint(0, 9, (4, 5), dtype=torch.int32)
    counting = tiny_config(tmp_path)
    assert readouts.readout_features(counting, weights, images, counts) is counts
    driving = counting.replace(readout_features="drive")
    as_bytes = readouts.readout_features(driving, weights, images, counts)
    as_floats = readouts.readout_features(driving, weights, images.float() / 255, counts)
    assert as_bytes.shape == (4, 5)
    torch.testing.assert_close(as_bytes, as_floats, rtol=1e-4, atol=1e-4)  # float32 products


def test_the_drive_readout_is_fitted_on_the_standardized_squares(tmp_path):
    rng = np.random.default_rng(1)
    labels = torch.from_numpy(np.arange(60) % 3)
    drive = torch.from_numpy(rng.random((60, 6)) + 3 * np.eye(6)[labels.numpy() * 2])
    config = tiny_config(tmp_path, readout_features="drive")
    readout = readouts.fit_linear(drive, labels, config, 3)
    assert readout.transform == TRANSFORMS["drive"] == "square-standardize"
    assert np.allclose(readout.mean, (drive.numpy() ** 2).mean(axis=0), rtol=1e-5)
    assert (readout.predict(drive.numpy()) == labels.numpy()).mean() == 1.0


def test_a_drive_readout_fitted_before_the_square_reads_out_as_it_was_fitted(tmp_path):
    """Checkpoints written before the drive was squared store the transform "standardize":
    their readouts go on reading the plain drive."""
    rng = np.random.default_rng(2)
    labels = np.arange(60) % 3
    drive = rng.random((60, 6)) + 3 * np.eye(6)[labels * 2]
    before = LinearReadout.fit(drive, labels, 3, balanced=False, seed=0, transform="standardize")
    again = LinearReadout.from_tensors(before.to_tensors(), before.metadata())
    assert again.transform == "standardize"
    assert np.allclose(again.mean, drive.mean(axis=0), rtol=1e-5)
    assert np.array_equal(again.predict_proba(drive), before.predict_proba(drive))


def test_an_unknown_kind_of_feature_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="readout_features"):
        tiny_config(tmp_path, readout_features="voltage")


@pytest.fixture(scope="module")
def drive_run(tmp_path_factory):
    """A tiny run whose linear readout reads the input drive."""
    root = tmp_path_factory.mktemp("drive")
    config = tiny_config(root, name="drive", n_train=400, n_test=100, n_neurons=30, time=50, batch_size=1,
                         update_interval=200, readout="linear", readout_features="drive")
    return service.train(config)


def test_train_fits_on_the_drive_and_evaluate_reproduces_it(drive_run):
    stored = ckpt.load(drive_run.checkpoint)
    assert stored.config.readout_features == "drive" and stored.readout.transform == TRANSFORMS["drive"]
    evaluated = service.evaluate(Path(drive_run.checkpoint))
    assert evaluated.readout == "linear"
    assert evaluated.scores.linear.accuracy == pytest.approx(drive_run.scores.linear.accuracy)
    # the features are the drive of the stored weights, not the counts of the vote
    test = classify(Path(drive_run.checkpoint))
    drive = readouts.readout_features(stored.config, stored.tensors.weights, test.dataset.images, test.counts)
    expected = stored.readout.predict(drive.numpy())
    np.testing.assert_array_equal(test.linear[0], expected)
    assert (stored.readout.predict(test.counts.numpy()) != expected).any()


def assign_a_copy(drive_run, tmp_path: Path, *options: str) -> tuple[Path, dict]:
    """``snnctl assign`` with ``options`` on a copy of the drive run's checkpoint (run.safetensors
    in ``tmp_path``): the copy's path and the command's --json document."""
    source = tmp_path / "run.safetensors"
    source.write_bytes(Path(drive_run.checkpoint).read_bytes())
    result = runner.invoke(app, ["assign", str(source), *options, "--n", "200", "--json"])
    assert result.exit_code == 0, result.output
    return source, json.loads(result.stdout)


def test_assign_switches_the_features_into_a_new_file(drive_run, tmp_path):
    source, document = assign_a_copy(drive_run, tmp_path, "--features", "counts")
    assert Path(document["output"]).name == "run.mnist-linear.safetensors"
    relabeled = ckpt.load(document["output"])
    assert relabeled.config.readout_features == "counts" and relabeled.readout.transform == "log1p-standardize"
    assert ckpt.load(source).config.readout_features == "drive"
    again = service.assign(Path(document["output"]), features="drive", n=200)
    assert Path(again.output).name == "run.mnist-linear.mnist-linear-drive.safetensors"


def test_every_kind_of_feature_has_its_transform():
    from snnctl.choices import READOUT_FEATURES
    from snnctl.readout.features import TRANSFORMS

    assert set(TRANSFORMS) == set(READOUT_FEATURES)


def test_a_shift_reads_the_drive_of_the_image_moved_by_up_to_that_many_pixels():
    rng = np.random.default_rng(2)
    images = rng.random((3, 10, 10)).astype(np.float32)
    fields = rng.random((100, 6)).astype(np.float32)  # whole-image fields, 6 neurons
    moved = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))  # zeros come in at the edge
            moved.append(padded[:, 1 - dy:11 - dy, 1 - dx:11 - dx].reshape(3, -1))
    expected = np.max([input_drive(image, fields) for image in moved], axis=0)
    np.testing.assert_allclose(window_drive(images.reshape(3, -1), fields, 10, shift=1), expected, atol=1e-5)
    np.testing.assert_allclose(window_drive(images.reshape(3, -1), fields, 10), input_drive(images.reshape(3, -1), fields),
                               atol=1e-5)
    # a digit drawn a pixel off centre keeps the feature of its centred self
    centred = np.zeros((1, 10, 10), np.float32)
    centred[0, 3:7, 4:6] = 1.0
    off_centre = np.roll(centred, 1, axis=2)
    fields = np.stack([centred.ravel(), rng.random(100).astype(np.float32) * 0.2], 1)
    both = np.concatenate([centred, off_centre]).reshape(2, -1)
    shifted = window_drive(both, fields, 10, shift=1)
    assert shifted[0, 0] == pytest.approx(shifted[1, 0])
    assert window_drive(both, fields, 10)[1, 0] < shifted[1, 0]


def test_readout_shift_needs_the_drive(tmp_path):
    with pytest.raises(ConfigError, match="readout_shift: 2 .*readout_features: drive"):
        tiny_config(tmp_path, readout_shift=2)
    assert tiny_config(tmp_path, readout_features="drive", readout_shift=2).readout_shift == 2


def test_assign_with_a_shift_writes_its_own_file_and_evaluate_reproduces_it(drive_run, tmp_path):
    source, document = assign_a_copy(drive_run, tmp_path, "--shift", "1")
    assert Path(document["output"]).name == "run.mnist-linear-drive-shift1.safetensors"
    shifted = ckpt.load(document["output"])
    assert (shifted.config.readout_features, shifted.config.readout_shift) == ("drive", 1)
    evaluated = service.evaluate(Path(document["output"]))
    assert evaluated.scores.linear.accuracy == pytest.approx(document["scores"]["linear"]["accuracy"])
    # the counts take no shift: back to counts drops it, asking for one is one error line
    counted = service.assign(Path(document["output"]), features="counts", n=200)
    assert ckpt.load(counted.output).config.readout_shift == 0
    refused = runner.invoke(app, ["assign", str(source), "--features", "counts", "--shift", "1", "--n", "200"])
    assert refused.exit_code != 0 and "readout_shift: 1" in refused.output


def test_assign_with_distorted_copies_fits_on_them_and_evaluate_reproduces_it(drive_run, tmp_path):
    source, document = assign_a_copy(drive_run, tmp_path, "--augment", "2")
    assert Path(document["output"]).name == "run.mnist-linear-drive-aug2.safetensors"
    augmented = ckpt.load(document["output"])
    assert augmented.config.readout_augment == 2
    assert document["scores"]["fit_images"] == 200 and document["scores"]["fit_copies"] == 2
    # fitted on more rows than the plain refit of the same 200 images: another readout
    plain = service.assign(source, n=200, output=tmp_path / "plain.safetensors")
    assert not np.array_equal(ckpt.load(plain.output).readout.coef, augmented.readout.coef)
    evaluated = service.evaluate(Path(document["output"]))
    assert evaluated.scores.linear.accuracy == pytest.approx(document["scores"]["linear"]["accuracy"])
    table = runner.invoke(app, ["assign", str(source), "--augment", "1", "--n", "200"])
    assert table.exit_code == 0 and "fitted on 200 training images and 1 distorted copy of each" in table.output
    refused = runner.invoke(app, ["assign", str(source), "--features", "counts", "--augment", "1", "--n", "200"])
    assert refused.exit_code != 0 and "readout_augment: 1" in refused.output
