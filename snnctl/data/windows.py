"""Windows of an image: the input of a layer whose receptive fields are smaller than its
images (``patch_size``; docs/mammo.md, "Receptive fields smaller than the image").

A finding in a mammogram (a speck of calcium, the spicules of a mass) is small and may lie
anywhere in the frame; a neuron that sees the whole image learns whole-image prototypes,
which no finding's position matches twice. With ``patch_size`` P each excitatory neuron
sees a P x P window (every input channel of it): STDP learns on random windows of the
training images, and an image is read by sliding the window over it, as the
convolutional STDP networks of Kheradpisheh et al. (2018) and Falez et al. (2019) do
with one layer of shared weights.

Images here are flattened ``[n, channels * size * size]`` (channels as
:func:`snnctl.data.encodings.input_planes` lays them out: ON then OFF); a window is
flattened the same way, ``[channels * P * P]``.
"""

from __future__ import annotations

import numpy as np
import torch

# The stride of the windows the network is run on with learning off (labels, tests), in
# window widths: half a window, so that any finding of up to half a window lies whole in
# one of them. The drive (snnctl.readout.features) slides by one pixel: it is one product.
SPIKING_STRIDE_SHARE = 0.5


def spiking_stride(patch_size: int) -> int:
    """The stride of the windows the network runs on: :data:`SPIKING_STRIDE_SHARE` of a window."""
    return max(1, int(patch_size * SPIKING_STRIDE_SHARE))


def planes(images: torch.Tensor, size: int) -> torch.Tensor:
    """Flattened images ``[n, channels * size * size]`` as ``[n, channels, size, size]``."""
    return images.reshape(len(images), -1, size, size)


def sliding_windows(images: torch.Tensor, size: int, patch_size: int, stride: int) -> torch.Tensor:
    """Every window of ``images`` at ``stride`` pixels: ``[n, windows, channels * P * P]``,
    the windows of an image in row-major order of their top-left corners."""
    tiles = planes(images, size).unfold(2, patch_size, stride).unfold(3, patch_size, stride)
    n, channels, rows, cols = tiles.shape[:4]
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(n, rows * cols, channels * patch_size * patch_size)


def windows_at(images: torch.Tensor, size: int, patch_size: int, corners: np.ndarray) -> torch.Tensor:
    """The window of each image whose top-left corner is its row of ``corners`` [n, 2]
    (row, column): ``[n, channels * P * P]``."""
    image_planes = planes(images, size)
    return torch.stack([image_planes[k, :, r:r + patch_size, c:c + patch_size].reshape(-1)
                        for k, (r, c) in enumerate(corners)]) if len(corners) else images[:0, :0]


def random_windows(images: torch.Tensor, size: int, patch_size: int, seeds: np.ndarray) -> torch.Tensor:
    """One window of each image ``[n, channels * P * P]``, its corner drawn uniformly by a
    generator seeded with the image's entry of ``seeds`` (so a resumed run draws the same)."""
    corners = np.array([np.random.default_rng(int(seed)).integers(0, size - patch_size + 1, 2) for seed in seeds])
    return windows_at(images, size, patch_size, corners)
