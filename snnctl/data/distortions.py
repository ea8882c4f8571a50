"""Seeded small affine distortions of images: more training rows for the linear readout
(``readout_augment``).

Each copy of an image is resampled (bilinear; outside the image zeros or its reflection)
through its own random affine map: a rotation of up to ``MAX_ROTATION`` degrees, a
scaling by up to ``MAX_SCALE`` either way and a shear of up to ``MAX_SHEAR`` degrees,
drawn from a seeded generator. Simard, Steinkraus & Platt (2003) lowered the error of
classifiers fitted on MNIST with such distorted copies of the training digits. snnctl
gives them only to the regressions that read a trained layer out (and to the pixel
baseline, so that the two stay comparable): the layer never learns from them, and the
held-out images are never distorted. The amounts are those chosen on a validation split
of the training images (docs/readout.md, *Distorted copies*)."""

from __future__ import annotations

import numpy as np
import torch

MAX_ROTATION = 12.0  # degrees
MAX_SCALE = 0.1  # a copy is 0.9 to 1.1 times the size of its image
MAX_SHEAR = 8.0  # degrees


def affine_maps(count: int, seed: int) -> torch.Tensor:
    """``count`` random affine maps [count, 2, 3] in the normalized coordinates of
    :func:`torch.nn.functional.affine_grid` (from each output pixel to where it is read
    in the image): rotation, then shear, then scaling about the image's centre."""
    rng = np.random.default_rng(seed)
    angle = np.radians(rng.uniform(-MAX_ROTATION, MAX_ROTATION, count))
    shear = np.tan(np.radians(rng.uniform(-MAX_SHEAR, MAX_SHEAR, count)))
    scale = rng.uniform(1 - MAX_SCALE, 1 + MAX_SCALE, count)
    cos, sin = np.cos(angle), np.sin(angle)
    maps = np.zeros((count, 2, 3))
    # [[cos, -sin], [sin, cos]] @ [[1, shear], [0, 1]] / scale
    maps[:, 0, 0], maps[:, 0, 1] = cos / scale, (cos * shear - sin) / scale
    maps[:, 1, 0], maps[:, 1, 1] = sin / scale, (sin * shear + cos) / scale
    return torch.from_numpy(maps).float()


def distorted_copies(images: torch.Tensor, size: int, copies: int, seed: int,
                     outside: str = "zeros") -> torch.Tensor:
    """``copies`` distorted copies of ``images`` [n, channels * size^2]: [copies * n, ...]
    (all images' first copies, then their second ones), in the units and dtype of
    ``images`` (integer pixels rounded), each channel of an image through the same map.
    Where a map reads outside the image, ``outside`` says what it finds: ``zeros`` (a
    digit's black page) or ``reflection`` (tissue that goes on past a patch's edge)."""
    n = len(images)
    channels = images[0].numel() // (size * size) if n else 1
    maps = affine_maps(copies * n, seed)
    pixels = images.reshape(n, channels, size, size).float()
    out = torch.empty((copies * n, channels, size, size), dtype=torch.float32)
    # chunks of some 4 MB of pixels: the sampling grid of a chunk is twice its size
    chunk = max(1, 1_000_000 // (channels * size * size))
    for start in range(0, copies * n, chunk):
        rows = torch.arange(start, min(start + chunk, copies * n))
        grid = torch.nn.functional.affine_grid(maps[rows], [len(rows), channels, size, size], align_corners=False)
        out[rows] = torch.nn.functional.grid_sample(pixels[rows % n], grid, mode="bilinear", padding_mode=outside,
                                                    align_corners=False)
    out = out.reshape(copies * n, *images.shape[1:])
    if images.dtype.is_floating_point:
        return out.to(images.dtype)
    return out.round().clamp(0, torch.iinfo(images.dtype).max).to(images.dtype)

