"""Distorted copies of the training images for the readouts (``readout_augment``): seeded
small affine maps, the same units as the images, a patient's copies kept in its group."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnctl.data import distortions
from snnctl.errors import ConfigError
from snnctl.service import readouts

from conftest import tiny_config


def disc(size: int, radius: float) -> torch.Tensor:
    """A bright disc in the middle of a dark 8-bit image [size * size]."""
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    return torch.from_numpy(((rows ** 2 + cols ** 2 <= radius ** 2) * 255).astype(np.uint8).reshape(-1))


def test_each_map_rotates_shears_and_scales_within_its_bounds():
    maps = distortions.affine_maps(2000, seed=3).double()
    rotation = np.degrees(np.arctan2(maps[:, 1, 0], maps[:, 0, 0]))
    # the map's determinant is 1 / scale^2: a rotation and a shear keep areas
    scale = 1 / torch.linalg.det(maps[:, :, :2]).sqrt()
    assert rotation.abs().max() <= distortions.MAX_ROTATION
    assert rotation.abs().max() > 0.9 * distortions.MAX_ROTATION  # the whole range is drawn
    assert scale.min() >= 1 - distortions.MAX_SCALE - 1e-6 and scale.max() <= 1 + distortions.MAX_SCALE + 1e-6
    assert (maps[:, :, 2] == 0).all()  # about the centre: no translation
    assert torch.equal(maps, distortions.affine_maps(2000, seed=3).double())
    assert not torch.equal(maps, distortions.affine_maps(2000, seed=4).double())


def test_copies_keep_the_units_and_order_and_a_disc_keeps_its_area_within_the_scaling():
    images = torch.stack([disc(28, 6), disc(28, 9)])
    copies = distortions.distorted_copies(images, 28, copies=3, seed=1)
    assert copies.shape == (6, 784) and copies.dtype == torch.uint8
    # first copies of both images, then the second ones: a copy of the small disc stays smaller
    areas = copies.float().sum(1) / images.float().sum(1).repeat(3)
    assert ((1 - distortions.MAX_SCALE) ** 2 - 0.05 <= areas).all() and (areas <= (1 + distortions.MAX_SCALE) ** 2 + 0.05).all()
    assert (copies[0::2].float().sum(1) < copies[1::2].float().sum(1)).all()
    # a rotation moves pixels: a copy is not its image
    bar = torch.zeros(28, 28, dtype=torch.uint8)
    bar[13:15, 4:24] = 255
    moved = distortions.distorted_copies(bar.reshape(1, -1), 28, copies=5, seed=2)
    assert all(not torch.equal(copy, bar.reshape(-1)) for copy in moved)


def test_float_images_stay_float_and_every_channel_goes_through_the_same_map():
    image = disc(12, 4).float() / 255
    two_channels = torch.cat([image, image]).reshape(1, -1)
    copies = distortions.distorted_copies(two_channels, 12, copies=4, seed=5)
    assert copies.dtype == torch.float32 and copies.shape == (4, 288)
    assert torch.equal(copies[:, :144], copies[:, 144:])
    assert copies.min() >= 0 and copies.max() <= 1


def test_with_distorted_copies_tiles_labels_and_keeps_each_image_with_its_copies(tmp_path):
    images = torch.stack([disc(28, r) for r in (4, 6, 8)])
    labels = torch.tensor([0, 1, 2])
    config = tiny_config(tmp_path, readout_features="drive", readout_augment=2)
    fit_images, fit_labels, groups = readouts.with_distorted_copies(config, images, labels, None)
    assert len(fit_images) == 9 and torch.equal(fit_images[:3], images)
    assert fit_labels.tolist() == [0, 1, 2] * 3
    assert groups == ["0", "1", "2"] * 3  # the folds that choose C hold an image out with its copies
    _, _, patients = readouts.with_distorted_copies(config, images, labels, ["P1", "P1", "P2"])
    assert patients == ["P1", "P1", "P2"] * 3
    # the same seed, the same copies: a refit reads the same rows
    assert torch.equal(fit_images, readouts.with_distorted_copies(config, images, labels, None)[0])
    unchanged = readouts.with_distorted_copies(tiny_config(tmp_path), images, labels, None)
    assert unchanged[0] is images and unchanged[2] is None


def test_readout_augment_needs_the_drive(tmp_path):
    with pytest.raises(ConfigError, match="readout_augment: 1 .*readout_features: drive"):
        tiny_config(tmp_path, readout_augment=1)
    with pytest.raises(ConfigError, match="readout_augment"):
        tiny_config(tmp_path, readout_features="drive", readout_augment=-1)


def test_a_patch_of_tissue_stays_tissue_where_a_copy_reads_past_its_edge():
    grey = torch.full((1, 32 * 32), 100, dtype=torch.uint8)
    reflected = distortions.distorted_copies(grey, 32, copies=20, seed=6, outside="reflection")
    assert (reflected == 100).all()
    # zeros would give a scaled-down or rotated patch dark corners: what a digit's page has
    zeroed = distortions.distorted_copies(grey, 32, copies=20, seed=6)
    assert (zeroed.reshape(20, 32, 32)[:, 0, 0] < 100).sum() >= 10


def test_every_task_says_what_lies_outside_its_images():
    from snnctl.choices import TASKS

    assert set(readouts.OUTSIDE_THE_IMAGE) == set(TASKS)
    assert readouts.OUTSIDE_THE_IMAGE["MAMMO"] == "reflection" and readouts.OUTSIDE_THE_IMAGE["MNIST"] == "zeros"
