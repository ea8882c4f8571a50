"""Every seed a run derives from its one ``seed`` parameter, in one place.

A run is reproducible and resumable at any image because each random draw (a
presentation's Poisson input, an epoch's shuffle, which images a limit keeps) has its
own seed computed from the run's ``seed`` and where the draw stands. The formulas are
fixed: changing one changes every result trained since.
"""

from __future__ import annotations

import numpy as np

# Which images a presentation belongs to: part of its seed, so that labelling,
# testing and validating never draw the training images' input again.
SPLIT_CODES = {"train": 1, "test": 2, "all": 3, "label": 4, "validation": 5, "readout": 6, "window": 7,
                "distortion": 8}


def presentation_seed(seed: int, split: str, *position: int) -> int:
    """Independent, reproducible seed of one presentation: the images of ``split`` at
    ``position`` (epoch and index in training; the first image's index elsewhere)."""
    entropy = [seed, SPLIT_CODES[split], *position]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of one training epoch's shuffle."""
    return seed * 1_000_003 + epoch


def limit_seed(seed: int, split: str) -> int:
    """Seed of the images that ``n_train`` (``split`` "train") or ``n_test`` ("test") keeps."""
    return seed + {"train": 0, "test": 1}[split]


def subset_seed(seed: int, split: str) -> int:
    """Seed of ``--n`` images of ``split`` taken by a checkpoint command."""
    return seed + SPLIT_CODES[split]


def readout_seed(seed: int) -> int:
    """Seed of the training images the linear readout and the pixel baseline are fitted on
    (``readout_max_train``), of their cross-validation folds and of the bootstrap."""
    return seed + SPLIT_CODES["readout"]


def distortion_seed(seed: int) -> int:
    """Seed of the distorted copies of the training images the readouts are fitted on
    (``readout_augment``)."""
    return presentation_seed(seed, "distortion")


# numpy's SeedSequence (O'Neill's seed_seq, numpy/random/bit_generator.pyx): its hash
# constants, with the default pool of four 32-bit words.
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_XSHIFT, _POOL_SIZE = 16, 4


def _words(value: int) -> list[int]:
    """A non-negative integer as SeedSequence reads it: 32-bit words, least significant first."""
    words = [value & 0xFFFFFFFF]
    while value > 0xFFFFFFFF:
        value >>= 32
        words.append(value & 0xFFFFFFFF)
    return words


def presentation_seeds(seed: int, split: str, prefix: tuple[int, ...], positions: np.ndarray) -> np.ndarray:
    """``presentation_seed(seed, split, *prefix, p)`` for every p of ``positions`` (int64 >= 0)
    at once: numpy's SeedSequence arithmetic on arrays, the same numbers (a test compares
    them with numpy's), some hundred times faster than one SeedSequence per image."""
    positions = np.asarray(positions, dtype=np.int64)
    if (positions < 0).any():
        raise ValueError("presentation_seeds: positions must be >= 0")
    fixed = _words(seed) + _words(SPLIT_CODES[split]) + [w for p in prefix for w in _words(p)]
    out = np.empty(len(positions), np.int64)
    low, high = positions & 0xFFFFFFFF, positions >> 32  # an int64 is one or two words
    for two_words in (False, True):
        chosen = (high > 0) == two_words
        if chosen.any():
            variable = [low[chosen], high[chosen]] if two_words else [low[chosen]]
            out[chosen] = _seed_from_entropy([np.full(int(chosen.sum()), w, np.uint64) for w in fixed]
                                             + [v.astype(np.uint64) for v in variable])
    return out


def _seed_from_entropy(entropy: list[np.ndarray]) -> np.ndarray:
    """``SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF``, element-wise: uint32
    arithmetic carried in uint64 arrays and masked after each product."""
    mask = np.uint64(0xFFFFFFFF)
    shift = np.uint64(_XSHIFT)
    hash_const = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal hash_const
        value = value ^ np.uint64(hash_const)
        hash_const = (hash_const * _MULT_A) & 0xFFFFFFFF
        value = (value * np.uint64(hash_const)) & mask
        return value ^ (value >> shift)

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = (np.uint64(_MIX_MULT_L) * x - np.uint64(_MIX_MULT_R) * y) & mask
        return result ^ (result >> shift)

    zero = np.zeros_like(entropy[0])
    pool = [hashmix(entropy[i] if i < len(entropy) else zero) for i in range(_POOL_SIZE)]
    for i_src in range(_POOL_SIZE):
        for i_dst in range(_POOL_SIZE):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    for i_src in range(_POOL_SIZE, len(entropy)):
        for i_dst in range(_POOL_SIZE):
            pool[i_dst] = mix(pool[i_dst], hashmix(entropy[i_src]))
    value = (pool[0] ^ np.uint64(_INIT_B)) * np.uint64((_INIT_B * _MULT_B) & 0xFFFFFFFF) & mask
    return ((value ^ (value >> shift)) & np.uint64(0x7FFFFFFF)).astype(np.int64)
