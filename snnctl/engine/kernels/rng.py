"""SplitMix64 (Steele, Lea & Flood 2014), one generator per batch element: an element's
draws (Poisson intervals, BindsNET's one-spike pick) do not depend on the others."""

from __future__ import annotations

import numpy as np
from numba import njit

# The golden-ratio increment and the two mixers of SplitMix64.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11))
_TWO_TO_MINUS_53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _SHIFTS[0])) * _MIX_1
    z = (z ^ (z >> _SHIFTS[1])) * _MIX_2
    return z ^ (z >> _SHIFTS[2])


@njit(cache=True)
def uniform(state: np.ndarray) -> float:
    """The next double in [0, 1) (53 random bits) of the SplitMix64 generator ``state[0]``."""
    state[0] += _GOLDEN
    return np.float64(_mix(state[0]) >> _SHIFTS[3]) * _TWO_TO_MINUS_53


@njit(cache=True)
def rng_states(seed: int, batch: int) -> np.ndarray:
    """One generator per batch element, started at well-separated points for ``seed``."""
    base = _mix(np.uint64(seed) + _GOLDEN)
    states = np.empty(batch, np.uint64)
    for b in range(batch):
        states[b] = _mix(base + np.uint64(b + 1) * _GOLDEN)
    return states
