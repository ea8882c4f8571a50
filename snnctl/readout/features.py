"""What the linear readout reads from a trained layer for each image (``readout_features``).

* ``counts``: the excitatory layer's spike counts, learning off, as the network runs
  (transform ``log1p-standardize``). Under strong lateral inhibition (the ``winner``
  rule, a large ``inh``) an image makes one or two neurons fire: the counts name the
  winners and say little about how well the other receptive fields match.
* ``drive``: each neuron's input drive with a soft, subtractive competition in place of
  the winner-take-all one (transform ``square-standardize``: the features are squared,
  then standardized)::

      d_j = sum_i x_i W_ij                  # x: pixels in [0, 1], W: learned weights
      f_j = max(0, d_j - mean_k d_k)        # k over the layer's neurons
      z_j = (f_j ** 2 - mean) / scale       # the regression's input

  ``d_j`` is, up to the constant ``intensity * time / 1000``, the synaptic input neuron
  j's membrane receives from an image's Poisson spikes on average; subtracting the
  layer's mean and rectifying keeps the neurons that match the image better than the
  average one, each graded by how much. This is the "triangle" encoding of Coates, Lee
  & Ng (2011) with the drive as similarity, the rectified-power hidden layer of Krotov
  & Hopfield (2019) with the mean as threshold and the power 2 (chosen on validation
  splits of the training images: docs/readout.md). It reads the learned receptive
  fields without simulating them: deterministic, and as cheap as one product.

With ``patch_size`` (receptive fields smaller than the image, :mod:`snnctl.data.windows`)
the drive is that of every window, sliding by one pixel, and each neuron's feature its
largest over the image (:func:`window_drive`): global max pooling, as Kheradpisheh et
al. (2018) read out their convolutional STDP layer, so that a neuron that detects a
speck reports it wherever it lies.

With ``readout_pooling: centre`` each neuron has a second feature: its largest drive over
the windows centred in the middle half of the image (:func:`centre_positions`), the
coarsest level of a spatial pyramid (Lazebnik, Schmid & Ponce 2006) cut where a patch set
puts its finding. Public sets of mammogram patches are cut around the lesion; a normal
patch is tissue anywhere. The global maximum alone cannot tell a speck at the centre from
a bright spot of tissue at the border (docs/mammo.md, *Pooling the centre*).

With ``readout_pooling: centre-mean`` each neuron has those two maxima and its mean drive
over the same two regions: four features. The maximum says whether a neuron's pattern
occurs somewhere; the mean says how much of the region is made of it, the texture, as a
bag of features does (Csurka et al. 2004; max and average pooling side by side, Boureau,
Ponce & LeCun 2010). A breast's density, the spread of a calcification cluster and the
tissue around a mass are of that kind (docs/mammo.md, *The mean beside the maximum*).

With ``readout_shift: S`` the drive is also read from the image shifted by up to S
pixels each way (zeros come in at the edge) and each neuron's feature is its largest over
the (2S + 1)^2 shifts: the same max pooling over positions, so that a field that matches a
digit drawn a pixel or two off centre reports the match. Chosen on a validation split of
the training images at 6,400 neurons (docs/readout.md, *Shifts*).

Both are computed the same way for the training images the readout is fitted on and
for the images it classifies.
"""

from __future__ import annotations

import math

import numpy as np

from snnctl.choices import FEATURES_PER_NEURON
from snnctl.readout.linear import COUNTS, SQUARE_STANDARDIZE

# The transform the linear readout applies to each kind of feature before its regression.
# Readouts fitted before the drive was squared keep their stored transform ("standardize").
TRANSFORMS = {"counts": COUNTS, "drive": SQUARE_STANDARDIZE}


def input_drive(pixels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``max(0, d - mean(d))`` of the drive ``d = pixels @ weights`` [n, neurons], from
    ``pixels`` [n, inputs] in [0, 1] and ``weights`` [inputs, neurons]."""
    # float32, as the weights are stored: 60,000 MNIST images stay a few hundred MB
    drive = np.asarray(pixels, dtype=np.float32) @ np.asarray(weights, dtype=np.float32)
    return np.maximum(drive - drive.mean(axis=1, keepdims=True), 0.0)


# Drive values per convolution in window_drive (its maps are [images, neurons, rows, cols]):
# some 64 MB of float32, whatever the layer's size and the number of windows.
WINDOW_DRIVE_VALUES = 16_000_000


def centre_positions(size: int, patch_size: int, shift: int = 0) -> slice:
    """The positions (along a row or a column of :func:`window_drive`'s map) of the
    P x P windows whose centre lies in the middle half of a ``size`` image, ``[size / 4,
    3 size / 4)``, the image padded by ``shift`` on each side."""
    positions = size + 2 * shift - patch_size + 1
    offset = shift - (patch_size - 1) / 2  # a window at position k is centred on pixel k - offset
    first, end = (min(max(math.ceil(edge * size + offset), 0), positions) for edge in (0.25, 0.75))
    return slice(first, max(end, first + 1))


def window_drive(pixels: np.ndarray, weights: np.ndarray, size: int, shift: int = 0,
                 pooling: str = "global") -> np.ndarray:
    """:func:`input_drive` of every window of ``pixels`` [n, channels * size^2] (in [0, 1]),
    sliding by one pixel, its largest value over the image for each neuron: [n, neurons].
    ``weights`` [channels * P^2, neurons] are receptive fields of P x P windows (P may be
    ``size``). ``shift`` pads each side of the image with that many zero pixels first, so
    the windows also read the image shifted by up to ``shift`` pixels each way. With
    ``pooling`` ``centre``, each neuron's largest value over the windows
    :func:`centre_positions` follows: [n, 2 * neurons], the whole image's maxima first;
    with ``centre-mean``, then the means over the whole image and over the centre:
    [n, 4 * neurons]."""
    import torch  # here, not above: the counts' readout needs no torch

    n_neurons = weights.shape[1]
    channels = pixels.shape[1] // (size * size)
    patch_size = int(round((weights.shape[0] / channels) ** 0.5))
    kernels = torch.from_numpy(np.ascontiguousarray(weights.T, dtype=np.float32)).reshape(
        n_neurons, channels, patch_size, patch_size)
    windows_per_image = (size + 2 * shift - patch_size + 1) ** 2
    images_per_chunk = max(1, WINDOW_DRIVE_VALUES // (n_neurons * windows_per_image))
    middle = centre_positions(size, patch_size, shift)
    pooled = np.empty((len(pixels), n_neurons * FEATURES_PER_NEURON[pooling]), np.float32)
    for start in range(0, len(pixels), images_per_chunk):
        chunk = torch.from_numpy(np.asarray(pixels[start:start + images_per_chunk], dtype=np.float32))
        images = torch.nn.functional.pad(chunk.reshape(-1, channels, size, size), (shift,) * 4)
        drive = torch.nn.functional.conv2d(images, kernels)
        above = (drive - drive.mean(dim=1, keepdim=True)).clamp_(min=0.0)
        regions = [above] if pooling == "global" else [above, above[:, :, middle, middle]]
        statistics = [region.amax(dim=(2, 3)) for region in regions]
        if pooling == "centre-mean":
            statistics += [region.mean(dim=(2, 3)) for region in regions]
        pooled[start:start + len(chunk)] = torch.cat(statistics, dim=1).numpy()
    return pooled
