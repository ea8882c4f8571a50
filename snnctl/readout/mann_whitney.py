"""The Mann-Whitney U statistic of many bootstrap resamples at once, compiled.

A resample is a column of ``image_weights`` [images, resamples]: how often each image was
drawn (the metrics' rows of weights, transposed so that one image's draws lie together).
The AUC of one resample is ``U / (P N)``, with ``U`` the sum over the distinct scores, in
ascending order, of the positive weight at that score times the negative weight below it
plus half the negative weight at it (ties count half; Hanley & McNeil 1982), ``P`` and
``N`` the total positive and negative weight. Bootstrap weights are whole counts, so every sum here is a whole
number (or a half) far below 2**53: exact in float64 in any order, the same figures as
numpy's ``add.reduceat`` and ``cumsum`` over the same sort, without the [images,
resamples] arrays those make for each class: the interval of one readout's AUC on 10,000
MNIST test images (1,000 resamples, ten classes) takes 0.4 s instead of 3.7.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")  # 0 / 0 is NaN, as in numpy, not an exception
def resampled_auc(image_weights: np.ndarray, order: np.ndarray, group_starts: np.ndarray,
                  positive: np.ndarray) -> np.ndarray:
    """The AUC of each resample, ``image_weights`` [images, resamples] saying how often each
    image was drawn in each, given the images ``order``ed by ascending score,
    ``group_starts`` the first place in ``order`` of each distinct score (and the number
    of images last), and which images are ``positive``. The resamples are the inner loop:
    contiguous, without a branch, so that they vectorize."""
    n_resamples = image_weights.shape[1]
    below = np.zeros(n_resamples)  # negative weight at lower scores
    u = np.zeros(n_resamples)
    positives = np.zeros(n_resamples)
    pos = np.empty(n_resamples)  # weight at the current score
    neg = np.empty(n_resamples)
    for g in range(len(group_starts) - 1):
        pos[:] = 0.0
        neg[:] = 0.0
        for place in range(group_starts[g], group_starts[g + 1]):
            image = order[place]
            drawn = pos if positive[image] else neg
            for r in range(n_resamples):
                drawn[r] += image_weights[image, r]
        for r in range(n_resamples):
            u[r] += pos[r] * (below[r] + neg[r] / 2)
            below[r] += neg[r]
            positives[r] += pos[r]
    return u / (positives * below)
