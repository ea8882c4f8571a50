"""Compiled (numba) loops of the fast engine: one whole presentation per call.

Each function implements the dynamics of a BindsNET class and names it; the engine in
:mod:`snnctl.simulate` calls them. All state is float32 and every constant is passed as
float32, so the arithmetic is the same as BindsNET's float32 tensors (up to summation
order). Spikes travel as events (CSR lists of active indices per step and batch
element), never as dense ``[time, inputs]`` rasters: an MNIST image makes about 13
input spikes per step out of 784 inputs.
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


@njit(cache=True)
def seed_rng(seed: int) -> None:
    """Seed numba's generator (separate from NumPy's) used by the kernels below."""
    np.random.seed(seed)


@njit(cache=True)
def poisson_events(rates: np.ndarray, steps: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Poisson spike trains as events, the algorithm of ``bindsnet.encoding.poisson``.

    For each input with rate r > 0 Hz, inter-spike intervals are drawn from a Poisson
    distribution of mean 1000 / (r * dt) steps, zeros raised to one, and spikes fall at
    the cumulative sums 1..steps (shifted to steps 0..steps-1). Same distribution as
    BindsNET, drawn per spike instead of per (step, input).

    Returns ``(pointers, indices)``: the inputs that spike at step t in batch element b
    are ``indices[pointers[t * B + b]:pointers[t * B + b + 1]]``, in ascending order.
    """
    batch, n_inputs = rates.shape
    active = 0
    for b in range(batch):
        for i in range(n_inputs):
            if rates[b, i] > 0:
                active += 1
    keys = np.empty(active * steps, np.int64)
    inputs = np.empty(active * steps, np.int32)
    n_events = 0
    for b in range(batch):
        for i in range(n_inputs):
            rate = rates[b, i]
            if rate <= 0:
                continue
            mean_interval = 1000.0 / rate / dt
            time = 0
            while True:
                interval = np.random.poisson(mean_interval)
                time += interval if interval > 0 else 1
                if time > steps:
                    break
                keys[n_events] = (time - 1) * batch + b
                inputs[n_events] = i
                n_events += 1
    return _group_by_key(keys[:n_events], inputs[:n_events], steps * batch)


@njit(cache=True)
def _group_by_key(keys: np.ndarray, values: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable counting sort of events by key into CSR form."""
    pointers = np.zeros(n_keys + 1, np.int64)
    for k in keys:
        pointers[k + 1] += 1
    for k in range(n_keys):
        pointers[k + 1] += pointers[k]
    cursor = pointers[:-1].copy()
    grouped = np.empty(len(values), np.int32)
    for e in range(len(keys)):
        grouped[cursor[keys[e]]] = values[e]
        cursor[keys[e]] += 1
    return pointers, grouped


@njit(cache=True)
def dense_to_events(spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[steps, batch, inputs]`` 0/1 spikes to the CSR events of :func:`poisson_events`."""
    steps, batch, n_inputs = spikes.shape
    pointers = np.zeros(steps * batch + 1, np.int64)
    total = 0
    for t in range(steps):
        for b in range(batch):
            for i in range(n_inputs):
                if spikes[t, b, i]:
                    total += 1
            pointers[t * batch + b + 1] = total
    indices = np.empty(total, np.int32)
    e = 0
    for t in range(steps):
        for b in range(batch):
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
def _lif_step(v, refrac, current, spiked, c, rest, reset, thresh, decay, refrac_steps) -> int:
    """``bindsnet.network.nodes.LIFNodes.forward`` for one batch element; returns spike count."""
    n_spikes = 0
    for j in range(v.shape[0]):
        v[j] = (v[j] - rest) * decay + rest
        if refrac[j] <= 0:
            v[j] += current[j]
        refrac[j] -= c[DT]
        spiked[j] = v[j] >= thresh
        if spiked[j]:
            refrac[j] = refrac_steps
            v[j] = reset
            n_spikes += 1
    return n_spikes


@njit(cache=True)
def _diehl_cook_step(v, refrac, theta, current, spiked, crossed, c, one_spike) -> int:
    """``bindsnet.network.nodes.DiehlAndCookNodes.forward`` for one batch element.

    Leaky integration toward rest, refractory period, threshold ``thresh + theta``,
    reset. ``crossed`` marks neurons whose adaptive threshold must rise. With
    ``one_spike`` = bindsnet, every crossing neuron is reset and made refractory but
    only one, drawn at random, emits a spike (BindsNET's rule); = off, all spike
    (Diehl & Cook's network); = winner, only the neuron furthest above threshold
    crosses, spikes and is reset. Returns the number of spikes emitted.
    """
    n = v.shape[0]
    n_crossed = 0
    best, best_margin = -1, np.float32(-np.inf)
    for j in range(n):
        v[j] = (v[j] - c[REST]) * c[DECAY] + c[REST]
        if refrac[j] <= 0:
            v[j] += current[j]
        refrac[j] -= c[DT]
        margin = v[j] - (c[THRESH] + theta[j])
        crossed[j] = margin >= 0
        if crossed[j]:
            n_crossed += 1
            if margin > best_margin:
                best, best_margin = j, margin
    if one_spike == ONE_SPIKE_WINNER and n_crossed > 1:
        for j in range(n):
            crossed[j] = j == best
        n_crossed = 1
    for j in range(n):
        spiked[j] = crossed[j]
        if crossed[j]:
            refrac[j] = c[REFRAC]
            v[j] = c[RESET]
    if one_spike == ONE_SPIKE_BINDSNET and n_crossed > 1:
        pick = np.random.randint(n_crossed)
        for j in range(n):
            if spiked[j]:
                spiked[j] = pick == 0
                pick -= 1
        n_crossed = 1
    return n_crossed


@njit(cache=True)
def _decay_trace(trace, spiked, decay) -> None:
    """Spike trace of ``bindsnet.network.nodes.Nodes.forward``: decay, set to 1 on a spike."""
    for j in range(trace.shape[0]):
        trace[j] = np.float32(1.0) if spiked[j] else trace[j] * decay


@njit(cache=True)
def _input_trace(last_spike, t, decay_powers, out) -> None:
    """Input traces computed lazily: 1 at a spike, times ``decay`` each step since.

    ``decay_powers[k]`` is ``decay`` multiplied k times in float32, so the value equals
    BindsNET's trace decayed step by step.
    """
    for i in range(out.shape[0]):
        out[i] = decay_powers[t - last_spike[i]] if last_spike[i] >= 0 else np.float32(0.0)


@njit(cache=True)
def _clamp_row(weights, i, low, high) -> None:
    row = weights[i]
    for j in range(row.shape[0]):
        row[j] = min(max(row[j], low), high)


@njit(cache=True)
def _clamp_column(weights, j, low, high) -> None:
    for i in range(weights.shape[0]):
        weights[i, j] = min(max(weights[i, j], low), high)


@njit(cache=True)
def _post_pre_update(weights, pointers, indices, t, batch, post_trace, post_spikes, last_spike,
                     decay_powers, c, reduction, pre_trace, scratch) -> None:
    """``bindsnet.learning.PostPre`` (Morrison et al. 2008, eqs. 13-14) for one step.

    Depression on each presynaptic spike: ``w[i, :] -= nu_pre * x_post``; potentiation
    on each postsynaptic spike: ``w[:, j] += nu_post * x_pre``; updates of the batch
    combined by sum, mean or max; then weights clipped to [wmin, wmax]. Only rows and
    columns that changed are clipped (the others are already inside the bounds).
    """
    n_inputs, n = weights.shape
    scale = np.float32(1.0 / batch) if reduction == REDUCE_MEAN else np.float32(1.0)
    nu_pre = c[NU_PRE] * scale
    nu_post = c[NU_POST] * scale
    if reduction != REDUCE_MAX:
        for b in range(batch):
            for e in range(pointers[t * batch + b], pointers[t * batch + b + 1]):
                row = weights[indices[e]]
                for j in range(n):
                    row[j] -= nu_pre * post_trace[b, j]
        for b in range(batch):
            _input_trace(last_spike[b], t, decay_powers, pre_trace)
            for j in range(n):
                if post_spikes[b, j]:
                    for i in range(n_inputs):
                        weights[i, j] += pre_trace[i] * nu_post
    else:
        # max over the batch of non-negative terms: only batch elements that spike count
        for b in range(batch):
            for e in range(pointers[t * batch + b], pointers[t * batch + b + 1]):
                i = indices[e]
                scratch[i, :n] = -1.0  # marks rows to update once
        for b in range(batch):
            for e in range(pointers[t * batch + b], pointers[t * batch + b + 1]):
                i = indices[e]
                for j in range(n):
                    scratch[i, j] = max(scratch[i, j], post_trace[b, j])
        for b in range(batch):
            for e in range(pointers[t * batch + b], pointers[t * batch + b + 1]):
                i = indices[e]
                if scratch[i, 0] >= 0:
                    for j in range(n):
                        weights[i, j] -= nu_pre * scratch[i, j]
                    scratch[i, 0] = -2.0  # done
        for j in range(n):
            best = -1
            for b in range(batch):
                if post_spikes[b, j]:
                    best = b
            if best < 0:
                continue
            for i in range(n_inputs):
                value = np.float32(0.0)
                for b in range(batch):
                    if post_spikes[b, j]:
                        x = decay_powers[t - last_spike[b, i]] if last_spike[b, i] >= 0 else np.float32(0.0)
                        value = max(value, x)
                weights[i, j] += value * nu_post
    for b in range(batch):
        for e in range(pointers[t * batch + b], pointers[t * batch + b + 1]):
            _clamp_row(weights, indices[e], c[WMIN], c[WMAX])
        for j in range(n):
            if post_spikes[b, j]:
                _clamp_column(weights, j, c[WMIN], c[WMAX])


@njit(cache=True)
def normalize_columns(weights: np.ndarray, norm: np.float32) -> None:
    """Each excitatory neuron's input weights scaled to sum to ``norm`` (Connection.normalize)."""
    n_inputs, n = weights.shape
    sums = np.zeros(n, np.float32)
    for i in range(n_inputs):
        for j in range(n):
            sums[j] += weights[i, j]
    for j in range(n):
        if sums[j] == 0:
            sums[j] = 1.0
        sums[j] = norm / sums[j]
    for i in range(n_inputs):
        for j in range(n):
            weights[i, j] *= sums[j]


@njit(cache=True)
def present(pointers, indices, steps, batch, two_layer, one_step, one_spike, learn, reduction,
            weights, theta, lateral_a, lateral_b, c, counts, record):
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
    """
    n_inputs, n = weights.shape
    v = np.full((batch, n), c[REST], np.float32)
    refrac = np.zeros((batch, n), np.float32)
    spikes = np.zeros((batch, n), np.bool_)
    crossed = np.zeros(n, np.bool_)
    theta_rises = np.zeros(n, np.int32)
    post_trace = np.zeros((batch, n), np.float32)
    inh_v = np.full((batch, n), c[INH_REST], np.float32)
    inh_refrac = np.zeros((batch, n), np.float32)
    inh_spikes = np.zeros((batch, n), np.bool_)
    exc_current = np.zeros((batch, n), np.float32)
    inh_current = np.zeros((batch, n), np.float32)
    last_spike = np.full((batch, n_inputs), -1, np.int64)
    pre_trace = np.zeros(n_inputs, np.float32)
    scratch = np.zeros((n_inputs, n) if reduction == REDUCE_MAX else (1, 1), np.float32)
    decay_powers = np.empty(steps + 1, np.float32)
    decay_powers[0] = 1.0
    for k in range(1, steps + 1):
        decay_powers[k] = decay_powers[k - 1] * c[TRACE_DECAY]
    empty = np.empty(0, np.int32)
    spike_rows = np.empty(n, np.int32)

    for t in range(steps):
        # Inputs from the previous step's spikes (synchronous mode) or this step's (one-step).
        for b in range(batch):
            exc_current[b, :] = 0.0
            if one_step:
                inputs_now = indices[pointers[t * batch + b]:pointers[t * batch + b + 1]]
            elif t > 0:
                inputs_now = indices[pointers[(t - 1) * batch + b]:pointers[(t - 1) * batch + b + 1]]
            else:
                inputs_now = empty
            _add_rows(exc_current[b], weights, inputs_now)
            source = inh_spikes[b] if two_layer else spikes[b]
            k = 0
            for j in range(n):
                if source[j]:
                    spike_rows[k] = j
                    k += 1
            _add_rows(exc_current[b], lateral_b if two_layer else lateral_a, spike_rows[:k])
            if two_layer and not one_step:
                inh_current[b, :] = 0.0
                k = 0
                for j in range(n):
                    if spikes[b, j]:
                        spike_rows[k] = j
                        k += 1
                _add_rows(inh_current[b], lateral_a, spike_rows[:k])
            # Input layer: spikes of step t become the input traces' last spike time.
            for e in range(pointers[t * batch + b], pointers[t * batch + b + 1]):
                last_spike[b, indices[e]] = t

        if learn:
            for j in range(n):
                theta[j] *= c[THETA_DECAY]
        theta_rises[:] = 0
        for b in range(batch):
            _diehl_cook_step(v[b], refrac[b], theta, exc_current[b], spikes[b], crossed, c, one_spike)
            for j in range(n):
                theta_rises[j] += crossed[j]
            _decay_trace(post_trace[b], spikes[b], c[TRACE_DECAY])
            for j in range(n):
                if spikes[b, j]:
                    counts[b, j] += 1
            if record.shape[0] > 0:
                record[t, b, :] = spikes[b]
            if two_layer:
                if one_step:
                    inh_current[b, :] = 0.0
                    k = 0
                    for j in range(n):
                        if spikes[b, j]:
                            spike_rows[k] = j
                            k += 1
                    _add_rows(inh_current[b], lateral_a, spike_rows[:k])
                _lif_step(inh_v[b], inh_refrac[b], inh_current[b], inh_spikes[b], c,
                          c[INH_REST], c[INH_RESET], c[INH_THRESH], c[INH_DECAY], c[INH_REFRAC])

        if learn:
            # After the whole batch: every element compared against the same theta.
            for j in range(n):
                if theta_rises[j]:
                    theta[j] += c[THETA_PLUS] * np.float32(theta_rises[j])
            _post_pre_update(weights, pointers, indices, t, batch, post_trace, spikes, last_spike,
                             decay_powers, c, reduction, pre_trace, scratch)
    if learn:
        normalize_columns(weights, c[NORM])
