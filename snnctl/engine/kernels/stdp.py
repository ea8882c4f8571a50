"""``bindsnet.learning.PostPre`` STDP of the input weights, its batch reductions, and the
weight bounds and column normalization of BindsNET's ``Connection``, with per-column
flags that let the kernels clip and normalize only what can have changed."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from snnctl.choices import REDUCTIONS
from snnctl.engine.kernels.compile import no_refcounts

# stdp_reduction as the kernels' integer codes: positions in choices.REDUCTIONS
REDUCE_MEAN = REDUCTIONS.index("mean")
REDUCE_MAX = REDUCTIONS.index("max")


class PostSpikes(NamedTuple):
    """The excitatory side of a step: traces x_post, spikes, and who has spiked so far."""

    trace: np.ndarray  # float32 [batch, n]
    active: np.ndarray  # int32: neurons that have spiked in this presentation, in any element
    spiked: np.ndarray  # bool [batch, n]: at this step
    spikers: np.ndarray  # int32 [batch, n]: element b's spikes at this step, spikers[b, :n_spiked[b]], ascending
    n_spiked: np.ndarray  # [batch]
    count: np.ndarray  # int32 [n]: spikes at this step over the batch


class InputTraces(NamedTuple):
    """Input traces x_pre, computed lazily: an input's trace is ``decay_powers[t - last_spike]``,
    and only the inputs that have spiked (``seen[b, :n_seen[b]]``) have a non-zero one."""

    last_spike: np.ndarray  # int32 [batch, n_inputs], -1 before the first
    seen: np.ndarray  # int32 [batch, n_inputs]
    n_seen: np.ndarray  # [batch]
    decay_powers: np.ndarray  # float32 [steps + 1]: the trace decay multiplied k times, as BindsNET does

# Per-column flags (excitatory neuron j's input weights) that persist between presentations.
NEEDS_CLAMP = np.uint8(1)  # may lie outside [wmin, wmax]: unknown history, or normalized outside them
NEEDS_NORM = np.uint8(2)  # changed since last normalized


@no_refcounts
def clamp_columns(weights, columns, low, high, flags) -> None:
    """Clip ``columns`` to [low, high]; a column that this changes needs normalizing again."""
    for i in range(weights.shape[0]):
        row = weights[i]
        for j in columns:
            clipped = min(max(row[j], low), high)
            if clipped != row[j]:
                row[j] = clipped
                flags[j] |= NEEDS_NORM
    for j in columns:
        flags[j] &= ~NEEDS_CLAMP


@no_refcounts
def _depress_max(weights, events, t, post_trace, active, nu_pre, scratch) -> None:
    """Depression with the batch combined by max: each input that spiked in some
    elements loses ``nu_pre * max`` of those elements' post traces (the max of the
    others' zero updates and theirs, as traces are non-negative), in the ``active``
    columns, the only ones with a non-zero trace."""
    pointers, indices = events
    owner_count, owner_start, touched, owners = scratch[:4]
    batch = pointers.shape[0]
    n_touched = 0
    for b in range(batch):
        for e in range(pointers[b, t], pointers[b, t + 1]):
            i = indices[e]
            if owner_count[i] == 0:
                touched[n_touched] = i
                n_touched += 1
            owner_count[i] += 1
    position = 0
    for q in range(n_touched):
        i = touched[q]
        owner_start[i] = position
        position += owner_count[i]
        owner_count[i] = 0
    for b in range(batch):
        for e in range(pointers[b, t], pointers[b, t + 1]):
            i = indices[e]
            owners[owner_start[i] + owner_count[i]] = b
            owner_count[i] += 1
    for q in range(n_touched):
        i = touched[q]
        start = owner_start[i]
        row = weights[i]
        for j in active:
            largest = post_trace[owners[start], j]
            for r in range(start + 1, start + owner_count[i]):
                largest = max(largest, post_trace[owners[r], j])
            row[j] -= nu_pre * largest
        owner_count[i] = 0


@no_refcounts
def potentiation_factor(theta_j, nu_post_theta):
    """What neuron j's potentiation is multiplied by, ``1 / (1 + theta_j / nu_post_theta)``:
    the more it has won (its threshold ``theta_j`` risen), the less an image moves its
    weights, as online k-means moves a centroid by 1 / (its images so far) (MacQueen 1967).
    Exactly 1 where ``nu_post_theta`` is infinite (null), so the rule is then PostPre's."""
    return np.float32(1.0) / (np.float32(1.0) + theta_j / nu_post_theta)


@no_refcounts
def _potentiate_max(weights, t, post, pre, nu_post, theta, nu_post_theta, scratch) -> None:
    """Potentiation with the batch combined by max: each neuron that spiked in some
    elements gains ``nu_post`` times the max of those elements' input traces (times its
    :func:`potentiation_factor`)."""
    spiked, post_count = post.spiked, post.count
    last_spike, seen, n_seen, decay_powers = pre
    column_max, union = scratch[4:]
    batch = spiked.shape[0]
    for j in range(spiked.shape[1]):
        if post_count[j] == 0:
            continue
        n_union = 0
        for b in range(batch):
            if not spiked[b, j]:
                continue
            for q in range(n_seen[b]):
                i = seen[b, q]
                x = decay_powers[t - last_spike[b, i]]
                if column_max[i] < 0:
                    column_max[i] = x
                    union[n_union] = i
                    n_union += 1
                else:
                    column_max[i] = max(column_max[i], x)
        factor = potentiation_factor(theta[j], nu_post_theta)
        for q in range(n_union):
            i = union[q]
            weights[i, j] += nu_post * column_max[i] * factor
            column_max[i] = -1.0


@no_refcounts
def post_pre_update(weights, events, t, post, pre, stdp, reduction, max_scratch, theta) -> None:
    """``bindsnet.learning.PostPre`` (Morrison et al. 2008, eqs. 13-14) for one step.

    Depression on each presynaptic spike: ``w[i, :] -= nu_pre * x_post``; potentiation
    on each postsynaptic spike: ``w[:, j] += nu_post * x_pre`` (with ``nu_post_theta``,
    neuron j's rate falls as its threshold ``theta[j]`` rises: :func:`potentiation_factor`);
    updates of the batch combined by sum, mean or max; then the changed weights clipped to
    [wmin, wmax].
    ``events`` are the input spikes (``Events``), ``post`` the excitatory side
    (:class:`PostSpikes`), ``pre`` the input traces (:class:`InputTraces`). Only the
    ``active`` neurons (those that spiked in this presentation) have a non-zero trace,
    so depression touches their columns only; only inputs that have spiked (``seen``)
    have a non-zero one. BindsNET clips the whole matrix at every step; the other
    weights are within bounds already (see :func:`snnctl.engine.kernels.present.present`).
    """
    pointers, indices = events
    post_trace, active, spikers, n_spiked = post.trace, post.active, post.spikers, post.n_spiked
    last_spike, seen, n_seen, decay_powers = pre
    batch = pointers.shape[0]
    wmin, wmax = stdp.wmin, stdp.wmax
    scale = np.float32(1.0 / batch) if reduction == REDUCE_MEAN else np.float32(1.0)
    nu_pre = stdp.nu_pre * scale
    nu_post = stdp.nu_post * scale
    if active.shape[0] == 0:
        return
    if batch == 1 and n_spiked[0] == 0:
        # The common step: depression only, each weight clipped as it is updated.
        for e in range(pointers[0, t], pointers[0, t + 1]):
            row = weights[indices[e]]
            for j in active:
                row[j] = min(max(row[j] - nu_pre * post_trace[0, j], wmin), wmax)
        return
    if reduction == REDUCE_MAX:
        _depress_max(weights, events, t, post_trace, active, nu_pre, max_scratch)
        _potentiate_max(weights, t, post, pre, nu_post, theta, stdp.nu_post_theta, max_scratch)
    else:
        for b in range(batch):
            for e in range(pointers[b, t], pointers[b, t + 1]):
                row = weights[indices[e]]
                for j in active:
                    row[j] -= nu_pre * post_trace[b, j]
        for b in range(batch):
            if n_spiked[b]:
                for j in spikers[b, :n_spiked[b]]:
                    factor = potentiation_factor(theta[j], stdp.nu_post_theta)
                    for q in range(n_seen[b]):
                        i = seen[b, q]
                        weights[i, j] += decay_powers[t - last_spike[b, i]] * nu_post * factor
    for b in range(batch):
        for e in range(pointers[b, t], pointers[b, t + 1]):
            row = weights[indices[e]]
            for j in active:
                row[j] = min(max(row[j], wmin), wmax)
        if n_spiked[b]:
            for j in spikers[b, :n_spiked[b]]:
                for q in range(n_seen[b]):
                    i = seen[b, q]
                    weights[i, j] = min(max(weights[i, j], wmin), wmax)


@njit(cache=True)
def column_sums(weights: np.ndarray, columns: np.ndarray, absolute: bool) -> np.ndarray:
    """Sums of ``columns`` of the input weights: of absolute values (``Connection.normalize``,
    DiehlAndCook2015v2) or plain values (the ``Weight`` feature, DiehlAndCook2015)."""
    sums = np.zeros(columns.shape[0], np.float32)
    for i in range(weights.shape[0]):
        row = weights[i]
        for q in range(columns.shape[0]):
            sums[q] += abs(row[columns[q]]) if absolute else row[columns[q]]
    return sums


@njit(cache=True)
def normalize_columns(weights: np.ndarray, columns: np.ndarray, norm: np.float32, absolute: bool,
                      low: np.float32, high: np.float32) -> np.ndarray:
    """The input weights of the excitatory neurons ``columns`` scaled to sum to ``norm``,
    multiplied by ``(1 / sum) * norm``, which is how torch evaluates ``norm / sum``.

    Returns, per column, whether the scaling left a weight outside [``low``, ``high``] (or
    NaN): only those need the clipping that BindsNET applies at the next learning step.
    Trained columns almost never do, and looking at each weight as it is scaled costs
    nothing, where clipping would read every column again."""
    scales = column_sums(weights, columns, absolute)
    for q in range(columns.shape[0]):
        scales[q] = (np.float32(1.0) / (scales[q] if scales[q] != 0 else np.float32(1.0))) * norm
    outside = np.zeros(columns.shape[0], np.bool_)
    for i in range(weights.shape[0]):
        row = weights[i]
        for q in range(columns.shape[0]):
            scaled = row[columns[q]] * scales[q]
            row[columns[q]] = scaled
            if not low <= scaled <= high:
                outside[q] = True
    return outside


@njit(cache=True)
def max_scratch(pointers, n_inputs, needed):
    """Work arrays of the max reduction (empty when not ``needed``): per input, the count,
    start and list of the elements it spiked in at a step, and the inputs touched; per
    input, a column maximum (-1: none yet), and their union."""
    m = n_inputs if needed else 0
    owners = 0  # the most input spikes of any step, over the whole batch
    if needed:
        for t in range(pointers.shape[1] - 1):
            owners = max(owners, np.sum(pointers[:, t + 1] - pointers[:, t]))
    return (np.zeros(m, np.int32), np.zeros(m, np.int64), np.empty(m, np.int32), np.empty(owners, np.int32),
            np.full(m, -1.0, np.float32), np.empty(m, np.int32))
