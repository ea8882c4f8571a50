"""Compiled (numba) loops of the fast engine: one whole presentation per call.

Each function implements the dynamics of a BindsNET class and names it; the engine in
:mod:`snnctl.simulate` calls them. All state is float32 and every constant is passed as
float32, so the arithmetic is the same as BindsNET's float32 tensors (up to summation
order). Spikes travel as events, never as dense ``[time, inputs]`` rasters: an MNIST
image makes about 13 input spikes per step out of 784 inputs. Events are grouped by
batch element, then by step: the inputs that spike at step t in element b are
``indices[pointers[b, t]:pointers[b, t + 1]]``, in ascending order.

Randomness (Poisson input, BindsNET's one-spike pick) comes from one SplitMix64
generator per batch element, so an element's draws do not depend on the others.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# one_spike rules (config.ONE_SPIKE_RULES), as integers for the kernel
ONE_SPIKE_BINDSNET, ONE_SPIKE_OFF, ONE_SPIKE_WINNER = 0, 1, 2
# stdp_reduction (config.REDUCTIONS)
REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX = 0, 1, 2

# Positions in the float32 constants vector handed to present().
(REST, RESET, THRESH, DECAY, THETA_DECAY, THETA_PLUS, TRACE_DECAY, REFRAC, DT, NU_PRE, NU_POST,
 WMIN, WMAX, NORM, INH_REST, INH_RESET, INH_THRESH, INH_DECAY, INH_REFRAC, N_CONSTANTS) = range(20)

# SplitMix64 (Steele, Lea & Flood 2014): the golden-ratio increment and the two mixers.
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
def _uniform(state: np.ndarray) -> float:
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


# Poisson CDF tables kept per call, direct-mapped by pixel value: MNIST's take 256 values.
_TABLE_SLOTS = 256


@njit(cache=True)
def _table_slot(bits: np.uint32) -> int:
    """Slot of a pixel value (by its float32 bits) in the tables: Knuth's multiplicative hash."""
    return ((np.int64(bits) * 2654435761) & 0xFFFFFFFF) >> 24


# Width of the window of CDF entries, from 8 below the mode, that an interval is first
# counted in: about 3 standard deviations each side for the brightest MNIST pixels (mean
# interval 7.8 steps). A constant width lets the count compile to vector instructions.
_WINDOW = 16


@njit(cache=True, inline="always")
def _extend_table(cdf, built, p, mean, reciprocals, upto) -> tuple[int, float]:
    """Poisson(mean) CDF entries up to ``upto``: p(k) = p(k - 1) * mean / k."""
    while built <= upto:
        p *= mean * reciprocals[built]
        cdf[built] = cdf[built - 1] + p
        built += 1
    return built, p


@njit(cache=True)
def _poisson_element(pixels, bits, intensity, steps, dt, state, tables, times, inputs) -> int:
    """One batch element's spike trains, the algorithm of ``bindsnet.encoding.poisson``.

    For an input of rate r = pixel * intensity > 0 Hz, inter-spike intervals are Poisson with mean
    ``1000 / (r * dt)`` steps, zeros raised to one, and spikes fall at their cumulative
    sums 1..steps (shifted to steps 0..steps-1): the same distribution as BindsNET,
    drawn per spike instead of per (step, input). Each interval is one uniform draw
    u by inverse transform sampling: the smallest k with u < CDF(k), counted without
    branches in a window around the mode, else searched from the window's edge. CDF
    tables are built lazily and kept per pixel value (``tables``); beyond the window
    they never go past ``steps``, as a longer interval ends the train whatever its
    length. Writes (step, input) pairs, input by input; returns their number.
    """
    keys, built_to, last_p, cdf, reciprocals = tables
    n_events = 0
    for i in range(pixels.shape[0]):
        rate = pixels[i] * intensity  # float32, as torch scales the images
        if not rate > 0:
            continue
        slot = _table_slot(bits[i])
        table = cdf[slot]
        mean = 1000.0 / (np.float64(rate) * dt)
        if keys[slot] != pixels[i]:
            keys[slot] = pixels[i]
            last_p[slot] = table[0] = np.exp(-mean)  # 0 when mean > ~745: then no interval fits anyway
            built_to[slot] = 1
        bottom = max(min(int(mean), steps) - _WINDOW // 2, 0)
        top = bottom + _WINDOW - 1
        built, p = _extend_table(table, built_to[slot], last_p[slot], mean, reciprocals, top)
        window = table[bottom:bottom + _WINDOW]
        below = table[bottom - 1] if bottom > 0 else -1.0
        time = 0
        while True:
            u = _uniform(state)
            if below <= u < window[-1]:
                k = bottom
                for j in range(_WINDOW):
                    k += u >= window[j]
            elif u < below:
                k = bottom - 1
                while k > 0 and u < table[k - 1]:
                    k -= 1
            else:
                k = top + 1
                while k <= steps - time:
                    built, p = _extend_table(table, built, p, mean, reciprocals, k)
                    if u < table[k]:
                        break
                    k += 1
            time += k if k > 0 else 1
            if time > steps:
                break
            times[n_events] = time - 1
            inputs[n_events] = i
            n_events += 1
        built_to[slot], last_p[slot] = built, p
    return n_events


@njit(cache=True)
def _group_by_step(times, inputs, start, pointers_row, indices) -> None:
    """Stable counting sort of one element's events by step into ``indices[start:]``."""
    steps = pointers_row.shape[0] - 1
    pointers_row[:] = 0
    for t in times:
        pointers_row[t + 1] += 1
    pointers_row[0] = start
    for t in range(steps):
        pointers_row[t + 1] += pointers_row[t]
    cursor = pointers_row[:-1].copy()
    for e in range(times.shape[0]):
        indices[cursor[times[e]]] = inputs[e]
        cursor[times[e]] += 1


@njit(cache=True)
def poisson_events(pixels: np.ndarray, intensity: np.float32, steps: int, dt: float,
                   states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson spike trains of images [batch, inputs] at ``pixel * intensity`` Hz, as events.

    Element b draws from generator ``states[b]``. Returns ``(pointers, indices)``.
    """
    batch, n_inputs = pixels.shape
    most_active, expected = 0, 0.0
    for b in range(batch):
        active = 0
        for i in range(n_inputs):
            rate = pixels[b, i] * intensity
            if rate > 0:
                active += 1
                expected += min(steps, rate * dt * steps / 1000.0)
        most_active = max(most_active, active)
    # One element's events, before they are sorted by step: at most one per step and
    # input. The sorted events of the batch grow as needed from about the expected count.
    times = np.empty(most_active * steps, np.int32)
    inputs = np.empty(most_active * steps, np.int32)
    indices = np.empty(int(1.25 * expected) + 1024, np.int32)
    pointers = np.empty((batch, steps + 1), np.int64)
    width = steps + _WINDOW  # the window may reach past the last step
    tables = (np.full(_TABLE_SLOTS, -1.0, np.float32), np.empty(_TABLE_SLOTS, np.int64),
              np.empty(_TABLE_SLOTS), np.empty((_TABLE_SLOTS, width)), np.empty(width))
    tables[4][1:] = 1.0 / np.arange(1, width)  # reciprocals 1 / k, off the dependency chain
    bits = pixels.view(np.uint32)
    total = 0
    for b in range(batch):
        n_events = _poisson_element(pixels[b], bits[b], intensity, steps, dt, states[b:b + 1], tables, times, inputs)
        if total + n_events > indices.shape[0]:
            grown = np.empty(max(2 * indices.shape[0], total + n_events), np.int32)
            grown[:total] = indices[:total]
            indices = grown
        _group_by_step(times[:n_events], inputs[:n_events], total, pointers[b], indices)
        total += n_events
    return pointers, indices[:total]


@njit(cache=True)
def dense_to_events(spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[steps, batch, inputs]`` 0/1 spikes to the events of :func:`poisson_events`."""
    steps, batch, n_inputs = spikes.shape
    pointers = np.empty((batch, steps + 1), np.int64)
    total = 0
    for b in range(batch):
        for t in range(steps):
            pointers[b, t] = total
            for i in range(n_inputs):
                if spikes[t, b, i]:
                    total += 1
        pointers[b, steps] = total
    indices = np.empty(total, np.int32)
    for b in range(batch):
        e = pointers[b, 0]
        for t in range(steps):
            for i in range(n_inputs):
                if spikes[t, b, i]:
                    indices[e] = i
                    e += 1
    return pointers, indices


@njit(cache=True)
def _add_rows(target: np.ndarray, matrix: np.ndarray, rows: np.ndarray) -> None:
    """target += sum of ``matrix[rows]``: a spike vector times a weight matrix (Connection.compute)."""
    for r in rows:
        row = matrix[r]
        for j in range(target.shape[0]):
            target[j] += row[j]


@njit(cache=True)
def _spiking(spiked: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Indices of the neurons that spiked, written into ``out``; returns the filled part."""
    k = 0
    for j in range(spiked.shape[0]):
        if spiked[j]:
            out[k] = j
            k += 1
    return out[:k]


@njit(cache=True)
def _lif_step(v, refrac, current, spiked, awake, c) -> int:
    """``bindsnet.network.nodes.LIFNodes.forward`` of the inhibitory layer, one element.

    Leaky integration toward rest, refractory period, threshold, reset. Only the
    ``awake`` neurons, those that have had input in this presentation, are updated:
    the others are at rest and outside their refractory period, which the step leaves
    as they are (BindsNET counts their refractory time further below zero, which has
    no effect). Returns the number of spikes.
    """
    rest, decay, thresh = c[INH_REST], c[INH_DECAY], c[INH_THRESH]
    n_spikes = 0
    for j in awake:
        vj = (v[j] - rest) * decay + rest
        if refrac[j] <= 0:
            vj += current[j]
        fired = vj >= thresh
        refrac[j] = c[INH_REFRAC] if fired else refrac[j] - c[DT]
        v[j] = c[INH_RESET] if fired else vj
        spiked[j] = fired
        n_spikes += fired
    return n_spikes


@njit(cache=True)
def _drive_inhibitory(current, exc_to_inh, spiked, n_spiked, rows, awake, is_awake, n_awake) -> int:
    """Input current of one element's inhibitory layer from excitatory spikes ``spiked``
    (``Connection.compute``), kept for its ``awake`` neurons only: those that have had
    input in this presentation, which the non-zero weights of spiking rows add to.
    Returns the new length of ``awake``."""
    for j in awake[:n_awake]:
        current[j] = 0.0
    if n_spiked == 0:
        return n_awake
    for r in _spiking(spiked, rows):
        row = exc_to_inh[r]
        for j in range(row.shape[0]):
            if row[j] != 0:  # adding a zero changes nothing
                current[j] += row[j]
                if not is_awake[j]:
                    is_awake[j] = True
                    awake[n_awake] = j
                    n_awake += 1
    return n_awake


@njit(cache=True)
def _diehl_cook_step(v, refrac, theta, current, spiked, rises, c, one_spike, state) -> int:
    """``bindsnet.network.nodes.DiehlAndCookNodes.forward`` for one batch element.

    Leaky integration toward rest, refractory period, threshold ``thresh + theta``,
    reset; ``rises[j]`` counts the crossings that raise theta. With ``one_spike`` =
    bindsnet, every crossing neuron is reset and made refractory but only one, drawn
    at random, emits a spike (BindsNET's rule); = off, all spike (Diehl & Cook's
    network); = winner, only the neuron furthest above threshold crosses, spikes and
    is reset. The first loop has no branches and vectorizes; the second runs only
    when a neuron crossed. Returns the number of spikes emitted.
    """
    rest, decay = c[REST], c[DECAY]
    n_crossed = 0
    for j in range(v.shape[0]):
        vj = (v[j] - rest) * decay + rest
        if refrac[j] <= 0:
            vj += current[j]
        v[j] = vj
        refrac[j] -= c[DT]
        crossed = vj >= c[THRESH] + theta[j]
        spiked[j] = crossed
        n_crossed += crossed
    if n_crossed == 0:
        return 0
    if one_spike == ONE_SPIKE_WINNER and n_crossed > 1:
        best, best_margin = -1, np.float32(-np.inf)
        for j in range(v.shape[0]):
            if spiked[j] and v[j] - (c[THRESH] + theta[j]) > best_margin:
                best, best_margin = j, v[j] - (c[THRESH] + theta[j])
        for j in range(v.shape[0]):
            spiked[j] = j == best
        n_crossed = 1
    for j in range(v.shape[0]):
        if spiked[j]:
            refrac[j] = c[REFRAC]
            v[j] = c[RESET]
            rises[j] += 1
    if one_spike == ONE_SPIKE_BINDSNET and n_crossed > 1:
        pick = int(_uniform(state) * n_crossed)
        for j in range(v.shape[0]):
            if spiked[j]:
                spiked[j] = pick == 0
                pick -= 1
        return 1
    return n_crossed


@njit(cache=True)
def _decay_trace(trace, spiked, active, decay) -> None:
    """Spike trace of ``bindsnet.network.nodes.Nodes.forward``: decay, set to 1 on a spike.
    Only the ``active`` neurons (those that have spiked) have a trace to update."""
    for j in active:
        trace[j] = np.float32(1.0) if spiked[j] else trace[j] * decay


@njit(cache=True)
def _add_active(spiked, active, is_active, n_active) -> int:
    """Append the neurons that spiked for the first time to ``active``; returns its length."""
    for j in range(spiked.shape[0]):
        if spiked[j] and not is_active[j]:
            is_active[j] = True
            active[n_active] = j
            n_active += 1
    return n_active


# Per-column flags (excitatory neuron j's input weights) that persist between presentations.
NEEDS_CLAMP = np.uint8(1)  # normalized since last clipped: may lie outside [wmin, wmax]
NEEDS_NORM = np.uint8(2)  # changed since last normalized


@njit(cache=True)
def _flagged(flags, flag, out) -> np.ndarray:
    """Indices of the columns whose ``flags`` have ``flag`` set, written into ``out``."""
    k = 0
    for j in range(flags.shape[0]):
        if flags[j] & flag:
            out[k] = j
            k += 1
    return out[:k]


@njit(cache=True)
def _clamp_columns(weights, columns, low, high, flags) -> None:
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


@njit(cache=True)
def _depress_max(weights, pointers, indices, t, post_trace, active, nu_pre, owner_count, owner_start, touched,
                 owners) -> None:
    """Depression with the batch combined by max: each input that spiked in some
    elements loses ``nu_pre * max`` of those elements' post traces (the max of the
    others' zero updates and theirs, as traces are non-negative), in the ``active``
    columns, the only ones with a non-zero trace."""
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


@njit(cache=True)
def _potentiate_max(weights, t, spiked, post_count, last_spike, seen, n_seen, decay_powers, nu_post,
                    column_max, union) -> None:
    """Potentiation with the batch combined by max: each neuron that spiked in some
    elements gains ``nu_post * max`` of those elements' input traces."""
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
        for q in range(n_union):
            i = union[q]
            weights[i, j] += nu_post * column_max[i]
            column_max[i] = -1.0


@njit(cache=True)
def _post_pre_update(weights, pointers, indices, t, post_trace, active, spiked, n_spiked, post_count, last_spike,
                     seen, n_seen, decay_powers, c, reduction, scratch_rows, max_scratch) -> None:
    """``bindsnet.learning.PostPre`` (Morrison et al. 2008, eqs. 13-14) for one step.

    Depression on each presynaptic spike: ``w[i, :] -= nu_pre * x_post``; potentiation
    on each postsynaptic spike: ``w[:, j] += nu_post * x_pre``; updates of the batch
    combined by sum, mean or max; then the changed weights clipped to [wmin, wmax].
    Only the ``active`` neurons (those that spiked in this presentation) have a
    non-zero trace, so depression touches their columns only. An input's trace is
    ``decay_powers[t - last spike]``, and only inputs that have spiked (``seen``)
    have a non-zero one. BindsNET clips the whole matrix at every step; the other
    weights are within bounds already (see :func:`present`).
    """
    batch = pointers.shape[0]
    wmin, wmax = c[WMIN], c[WMAX]
    scale = np.float32(1.0 / batch) if reduction == REDUCE_MEAN else np.float32(1.0)
    nu_pre = c[NU_PRE] * scale
    nu_post = c[NU_POST] * scale
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
        owner_count, owner_start, touched, owners, column_max, union = max_scratch
        _depress_max(weights, pointers, indices, t, post_trace, active, nu_pre, owner_count, owner_start, touched,
                     owners)
        _potentiate_max(weights, t, spiked, post_count, last_spike, seen, n_seen, decay_powers, nu_post,
                        column_max, union)
    else:
        for b in range(batch):
            for e in range(pointers[b, t], pointers[b, t + 1]):
                row = weights[indices[e]]
                for j in active:
                    row[j] -= nu_pre * post_trace[b, j]
        for b in range(batch):
            if n_spiked[b]:
                for j in _spiking(spiked[b], scratch_rows):
                    for q in range(n_seen[b]):
                        i = seen[b, q]
                        weights[i, j] += decay_powers[t - last_spike[b, i]] * nu_post
    for b in range(batch):
        for e in range(pointers[b, t], pointers[b, t + 1]):
            row = weights[indices[e]]
            for j in active:
                row[j] = min(max(row[j], wmin), wmax)
        if n_spiked[b]:
            for j in _spiking(spiked[b], scratch_rows):
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
def normalize_columns(weights: np.ndarray, columns: np.ndarray, norm: np.float32, absolute: bool) -> None:
    """The input weights of the excitatory neurons ``columns`` scaled to sum to ``norm``,
    multiplied by ``(1 / sum) * norm``, which is how torch evaluates ``norm / sum``."""
    scales = column_sums(weights, columns, absolute)
    for q in range(columns.shape[0]):
        scales[q] = (np.float32(1.0) / (scales[q] if scales[q] != 0 else np.float32(1.0))) * norm
    for i in range(weights.shape[0]):
        row = weights[i]
        for q in range(columns.shape[0]):
            row[columns[q]] *= scales[q]


@njit(cache=True)
def _max_scratch(pointers, n_inputs, needed):
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


@njit(cache=True)
def present(pointers, indices, states, two_layer, one_step, one_spike, learn, reduction,
            weights, theta, column_flags, lateral_a, lateral_b, c, counts, record) -> None:
    """Run one presentation of a batch: ``Network.run`` of the Diehl & Cook models.

    two_layer: DiehlAndCook2015 (excitatory ``Ae`` and inhibitory ``Ai`` layers;
    ``lateral_a`` = exc->inh, ``lateral_b`` = inh->exc) else DiehlAndCook2015v2
    (``lateral_a`` = recurrent exc->exc). one_step: BindsNET's one-step mode (inputs
    propagate through the layers within a step) else its default synchronous mode
    (every layer reads the previous step's spikes). State starts from rest, as after
    ``Network.reset_state_variables``. With learn, theta decays and rises and PostPre
    STDP changes ``weights``, normalized after the presentation. Adds the excitatory
    spike counts to ``counts`` [batch, n]; ``record`` [steps, batch, n] (or empty)
    receives the excitatory spikes.

    BindsNET clips all weights at every learning step and normalizes all columns after
    every run. Here ``column_flags`` (kept by the caller between presentations) mark
    the columns that may be outside the bounds (``NEEDS_CLAMP``: normalized since they
    were last clipped), clipped at the first learning step, and those changed since
    they were last normalized (``NEEDS_NORM``); only those are clipped or normalized.
    The others are within bounds and sum to ``norm`` already: BindsNET's pass moves them
    by float rounding at most. Costs then grow with the neurons that spike, not with
    the size of the weight matrix.
    """
    batch, steps = pointers.shape[0], pointers.shape[1] - 1
    n_inputs, n = weights.shape
    v = np.full((batch, n), c[REST], np.float32)
    refrac = np.zeros((batch, n), np.float32)
    spiked = np.zeros((batch, n), np.bool_)
    n_spiked = np.zeros(batch, np.int64)
    inh_v = np.full((batch, n), c[INH_REST], np.float32)
    inh_refrac = np.zeros((batch, n), np.float32)
    inh_spiked = np.zeros((batch, n), np.bool_)
    n_inh_spiked = np.zeros(batch, np.int64)
    exc_current = np.empty(n, np.float32)
    inh_current = np.zeros((batch, n), np.float32)
    inh_awake = np.empty((batch, n), np.int32)  # inhibitory neurons that have had input, per element
    inh_is_awake = np.zeros((batch, n), np.bool_)
    n_inh_awake = np.zeros(batch, np.int64)
    rows = np.empty(n, np.int32)
    columns = np.empty(n, np.int32)
    active = np.empty(n, np.int32)  # neurons that have spiked in this presentation, in any element
    is_active = np.zeros(n, np.bool_)
    n_active = 0
    rises = np.zeros(n, np.int32)
    post_count = np.zeros(n, np.int32)
    post_trace = np.zeros((batch, n), np.float32)
    # Input traces, computed lazily: the step of each input's last spike, and which
    # inputs have spiked at all (the only ones with a non-zero trace).
    last_spike = np.full((batch, n_inputs), -1, np.int32)
    seen = np.empty((batch, n_inputs), np.int32)
    n_seen = np.zeros(batch, np.int64)
    decay_powers = np.empty(steps + 1, np.float32)  # trace decay multiplied k times, as BindsNET does
    decay_powers[0] = 1.0
    for k in range(1, steps + 1):
        decay_powers[k] = decay_powers[k - 1] * c[TRACE_DECAY]
    max_scratch = _max_scratch(pointers, n_inputs, learn and reduction == REDUCE_MAX)
    empty = np.empty(0, np.int32)

    for t in range(steps):
        if learn:
            for j in range(n):
                theta[j] *= c[THETA_DECAY]
        any_spike = False
        for b in range(batch):
            now = indices[pointers[b, t]:pointers[b, t + 1]]
            if learn:
                for i in now:
                    if last_spike[b, i] < 0:
                        seen[b, n_seen[b]] = i
                        n_seen[b] += 1
                    last_spike[b, i] = t
            # Input current from this step's input spikes (one-step) or the previous step's.
            if one_step:
                drive = now
            elif t > 0:
                drive = indices[pointers[b, t - 1]:pointers[b, t]]
            else:
                drive = empty
            exc_current[:] = 0.0
            _add_rows(exc_current, weights, drive)
            # Inhibition from the previous step's spikes (Ai, or Y itself in v2).
            if two_layer:
                if n_inh_spiked[b]:
                    _add_rows(exc_current, lateral_b, _spiking(inh_spiked[b], rows))
                if not one_step:
                    n_inh_awake[b] = _drive_inhibitory(inh_current[b], lateral_a, spiked[b], n_spiked[b], rows,
                                                       inh_awake[b], inh_is_awake[b], n_inh_awake[b])
            elif n_spiked[b]:
                _add_rows(exc_current, lateral_a, _spiking(spiked[b], rows))

            n_spiked[b] = _diehl_cook_step(v[b], refrac[b], theta, exc_current, spiked[b], rises, c, one_spike,
                                           states[b:b + 1])
            if learn:
                if n_spiked[b]:
                    n_active = _add_active(spiked[b], active, is_active, n_active)
                _decay_trace(post_trace[b], spiked[b], active[:n_active], c[TRACE_DECAY])
            if n_spiked[b]:
                any_spike = True
                for j in range(n):
                    counts[b, j] += spiked[b, j]
                    post_count[j] += spiked[b, j]
            if record.shape[0] > 0:
                record[t, b, :] = spiked[b]
            if two_layer:
                if one_step:
                    n_inh_awake[b] = _drive_inhibitory(inh_current[b], lateral_a, spiked[b], n_spiked[b], rows,
                                                       inh_awake[b], inh_is_awake[b], n_inh_awake[b])
                n_inh_spiked[b] = _lif_step(inh_v[b], inh_refrac[b], inh_current[b], inh_spiked[b],
                                            inh_awake[b, :n_inh_awake[b]], c)

        if learn:
            if any_spike:
                # After the whole batch: every element compared against the same theta.
                for j in range(n):
                    if rises[j]:
                        theta[j] += c[THETA_PLUS] * np.float32(rises[j])
            _post_pre_update(weights, pointers, indices, t, post_trace, active[:n_active], spiked, n_spiked,
                             post_count, last_spike, seen, n_seen, decay_powers, c, reduction, rows, max_scratch)
            if t == 0:
                _clamp_columns(weights, _flagged(column_flags, NEEDS_CLAMP, columns), c[WMIN], c[WMAX],
                               column_flags)
        if any_spike:
            rises[:] = 0
            post_count[:] = 0
    if learn:
        for j in active[:n_active]:
            column_flags[j] |= NEEDS_NORM
        changed = _flagged(column_flags, NEEDS_NORM, columns)
        normalize_columns(weights, changed, c[NORM], not two_layer)
        for j in changed:
            column_flags[j] = NEEDS_CLAMP

