"""Torch arithmetic over lanes (one network or one image each) in the fast engine's order:
SplitMix64 draws in int64, float32 sums added first to last, and the padded index lists
that carry each lane's spikes. :mod:`snnctl.engine.many` builds its steps from these."""

from __future__ import annotations

import numpy as np
import torch

# SplitMix64 (kernels/rng.py) in int64 arithmetic: constants as two's-complement int64.
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX_1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX_2 = 0x94D049BB133111EB - (1 << 64)
_TWO_TO_MINUS_53 = 1.0 / 9007199254740992.0


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical shift of int64 ``z`` (uint64 bits): torch's ``>>`` is arithmetic."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def uniform(states: torch.Tensor, draw: torch.Tensor) -> torch.Tensor:
    """``kernels.rng.uniform`` per lane: the next double in [0, 1) of the SplitMix64 generators
    ``states`` (int64, advanced in place) where ``draw``; lanes not drawing keep their state."""
    states.add_(torch.where(draw, _GOLDEN, 0))  # wraps modulo 2^64, as uint64 does
    z = states
    z = (z ^ _shift_right(z, 30)) * _MIX_1
    z = (z ^ _shift_right(z, 27)) * _MIX_2
    z = z ^ _shift_right(z, 31)
    return _shift_right(z, 11).double() * _TWO_TO_MINUS_53


def sequential_sum(rows: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum over ``dim`` (not the last) as float32 additions in order, first to last: the
    fast engine's sums. CUDA's cumsum along an outer dimension adds in order in float32;
    the CPU's accumulates in float64, so there the rows are added one by one."""
    if rows.shape[dim] == 0:
        shape = list(rows.shape)
        del shape[dim]
        return rows.new_zeros(shape)
    if rows.is_cuda:
        return rows.cumsum(dim).select(dim, -1)
    total = rows.select(dim, 0).clone()
    for k in range(1, rows.shape[dim]):
        total += rows.select(dim, k)
    return total


def padded_indices(mask: torch.Tensor) -> torch.Tensor:
    """Per lane, the positions where ``mask`` [lanes, n] is true, ascending, padded with -1
    to the most of any lane: [lanes, most]."""
    n = mask.shape[1]
    positions = torch.where(mask, torch.arange(n, device=mask.device), n).sort(dim=1).values
    most = int(mask.sum(1).max()) if mask.numel() else 0
    positions = positions[:, :most]
    return torch.where(positions < n, positions, -1)


def scatter_index(padded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded positions [lanes, k] (-1 pads, ascending) made safe to gather and scatter at:
    a pad repeats its lane's first position, whose new value it computes alike (a scatter
    writes one value twice), and a lane without any points at 0 and must write back what it
    read; with, per lane, whether it has any."""
    if padded.shape[1] == 0:
        return padded, torch.zeros(len(padded), dtype=torch.bool, device=padded.device)
    first = padded[:, :1]
    return torch.where(padded >= 0, padded, first.clamp(min=0)), first[:, 0] >= 0


def row_sum(matrix: torch.Tensor, networks: torch.Tensor | int | None, rows: torch.Tensor) -> torch.Tensor:
    """``Connection.compute`` with the fast engine's order of additions: per lane, the ``rows``
    [lanes, k] (padded with -1) of its network's ``matrix`` ([networks, r, n]), gathered
    [lanes, k, n] (zeros for padding) to be summed in order by :func:`sequential_sum`.
    ``networks``: each lane's network, one network for all lanes, or None where lane l is
    network l."""
    safe = rows.clamp(min=0)
    if networks is None:
        gathered = matrix.gather(1, safe[:, :, None].expand(-1, -1, matrix.shape[2]))
    elif isinstance(networks, int):
        gathered = matrix[networks][safe]
    else:
        gathered = matrix[networks[:, None], safe]
    return torch.where((rows >= 0)[:, :, None], gathered, 0.0)


def padded_events(pointers: np.ndarray, indices: np.ndarray, most: int) -> np.ndarray:
    """``kernels.poisson_events``' ``(pointers, indices)`` as padded indices [steps, lanes,
    most]: the inputs that spike at step t in a lane, ascending, padded with -1."""
    lanes, steps = pointers.shape[0], pointers.shape[1] - 1
    per_step = np.diff(pointers, axis=1)  # [lanes, steps]
    padded = np.full((steps, lanes, most), -1, np.int64)
    lane = np.repeat(np.arange(lanes), per_step.sum(1))
    step = np.repeat(np.tile(np.arange(steps), lanes), per_step.reshape(-1))
    start = pointers[lane, step]
    position = pointers[0, 0] + np.arange(len(lane))
    padded[step, lane, position - start] = indices[position - pointers[0, 0]]
    return padded
