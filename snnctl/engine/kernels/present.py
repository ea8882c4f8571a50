"""The presentation loop: ``Network.run`` of the Diehl & Cook models, one compiled call
per batch, with BindsNET's order of updates in both of its run modes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from snnctl.engine.kernels.neurons import (add_active, add_rows, decay_trace, diehl_cook_step, drive_inhibitory,
                                           lif_step, spiking)
from snnctl.engine.kernels.poisson import poisson_events
from snnctl.engine.kernels.rng import rng_states
from snnctl.engine.kernels.stdp import (NEEDS_CLAMP, NEEDS_NORM, REDUCE_MAX, InputTraces, PostSpikes, clamp_columns,
                                        flagged, max_scratch, normalize_columns, post_pre_update)
from snnctl.engine.params import ExcitatoryParams, KernelParams, LifParams, StdpParams


class NetworkState(NamedTuple):
    """What a presentation reads and (learning) changes, as float32 arrays shared with the
    engine's tensors, plus the per-column flags the engine keeps between presentations."""

    weights: np.ndarray  # [n_inputs, n] input -> excitatory
    theta: np.ndarray  # [n] adaptive thresholds
    column_flags: np.ndarray  # uint8 [n], NEEDS_CLAMP / NEEDS_NORM
    lateral_a: np.ndarray  # exc -> inh (DiehlAndCook2015) or recurrent exc -> exc (v2)
    lateral_b: np.ndarray  # inh -> exc (DiehlAndCook2015), else lateral_a again


@njit(cache=True)
def named_params(params) -> KernelParams:
    """:class:`~snnctl.engine.params.KernelParams` from ``params``, the same values as a plain
    nested tuple (:func:`snnctl.engine.params.plain`) or already named."""
    (lif, theta_decay, theta_plus), inh, stdp = params
    return KernelParams(ExcitatoryParams(LifParams(*lif), theta_decay, theta_plus), LifParams(*inh), StdpParams(*stdp))


@njit(cache=True)
def present(events, rng, state, params, options, out) -> None:
    """Run one presentation of a batch: ``Network.run`` of the Diehl & Cook models.

    ``events`` are the input spikes, ``(pointers, indices)`` of
    :func:`~snnctl.engine.kernels.poisson.poisson_events`; element b draws from generator
    ``rng[b]``; ``state`` (:class:`NetworkState`) holds the learned tensors, updated in
    place; ``params`` is :class:`~snnctl.engine.params.KernelParams`. Each may come as a
    plain tuple (:func:`snnctl.engine.params.plain`), which numba types faster. ``options``
    (:class:`~snnctl.engine.params.Options`): two_layer, DiehlAndCook2015 (excitatory
    ``Ae`` and inhibitory ``Ai`` layers; ``lateral_a`` = exc->inh, ``lateral_b`` =
    inh->exc) else DiehlAndCook2015v2 (``lateral_a`` = recurrent exc->exc); one_step,
    BindsNET's one-step mode (inputs propagate through the layers within a step) else
    its default synchronous mode (every layer reads the previous step's spikes). Neuron
    state starts from rest, as after ``Network.reset_state_variables``. With learn, theta
    decays and rises and PostPre STDP changes ``weights``, normalized after the
    presentation. ``out`` is ``(counts, record)``: adds the excitatory spike counts to
    ``counts`` [batch, n]; ``record`` [steps, batch, n] (or empty) receives the excitatory
    spikes.

    BindsNET clips all weights at every learning step and normalizes all columns after
    every run. Here ``column_flags`` (kept by the caller between presentations) mark
    the columns that may be outside the bounds (``NEEDS_CLAMP``: normalized since they
    were last clipped), clipped at the first learning step, and those changed since
    they were last normalized (``NEEDS_NORM``); only those are clipped or normalized.
    The others are within bounds and sum to ``norm`` already: BindsNET's pass moves them
    by float rounding at most. Costs then grow with the neurons that spike, not with
    the size of the weight matrix.
    """
    pointers, indices = events
    weights, theta, column_flags, lateral_a, lateral_b = state
    exc, inh, stdp = named_params(params)
    two_layer, one_step, one_spike, reduction, learn = options
    counts, record = out
    batch, steps = pointers.shape[0], pointers.shape[1] - 1
    n_inputs, n = weights.shape
    v = np.full((batch, n), exc.lif.rest, np.float32)
    refrac = np.zeros((batch, n), np.float32)
    spiked = np.zeros((batch, n), np.bool_)
    n_spiked = np.zeros(batch, np.int64)
    inh_v = np.full((batch, n), inh.rest, np.float32)
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
        decay_powers[k] = decay_powers[k - 1] * stdp.trace_decay
    scratch = max_scratch(pointers, n_inputs, learn and reduction == REDUCE_MAX)
    pre = InputTraces(last_spike, seen, n_seen, decay_powers)
    empty = np.empty(0, np.int32)

    for t in range(steps):
        if learn:
            for j in range(n):
                theta[j] *= exc.theta_decay
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
            add_rows(exc_current, weights, drive)
            # Inhibition from the previous step's spikes (Ai, or Y itself in v2).
            if two_layer:
                if n_inh_spiked[b]:
                    add_rows(exc_current, lateral_b, spiking(inh_spiked[b], rows))
                if not one_step:
                    n_inh_awake[b] = drive_inhibitory(inh_current[b], lateral_a, spiked[b], n_spiked[b], rows,
                                                       inh_awake[b], inh_is_awake[b], n_inh_awake[b])
            elif n_spiked[b]:
                add_rows(exc_current, lateral_a, spiking(spiked[b], rows))

            n_spiked[b] = diehl_cook_step(v[b], refrac[b], theta, exc_current, spiked[b], rises, exc.lif, one_spike,
                                          rng[b:b + 1])
            if learn:
                if n_spiked[b]:
                    n_active = add_active(spiked[b], active, is_active, n_active)
                decay_trace(post_trace[b], spiked[b], active[:n_active], stdp.trace_decay)
            if n_spiked[b]:
                any_spike = True
                for j in range(n):
                    counts[b, j] += spiked[b, j]
                    post_count[j] += spiked[b, j]
            if record.shape[0] > 0:
                record[t, b, :] = spiked[b]
            if two_layer:
                if one_step:
                    n_inh_awake[b] = drive_inhibitory(inh_current[b], lateral_a, spiked[b], n_spiked[b], rows,
                                                       inh_awake[b], inh_is_awake[b], n_inh_awake[b])
                n_inh_spiked[b] = lif_step(inh_v[b], inh_refrac[b], inh_current[b], inh_spiked[b],
                                            inh_awake[b, :n_inh_awake[b]], inh)

        if learn:
            if any_spike:
                # After the whole batch: every element compared against the same theta.
                for j in range(n):
                    if rises[j]:
                        theta[j] += exc.theta_plus * np.float32(rises[j])
            post = PostSpikes(post_trace, active[:n_active], spiked, n_spiked, post_count)
            post_pre_update(weights, events, t, post, pre, stdp, reduction, rows, scratch)
            if t == 0:
                clamp_columns(weights, flagged(column_flags, NEEDS_CLAMP, columns), stdp.wmin, stdp.wmax,
                              column_flags)
        if any_spike:
            rises[:] = 0
            post_count[:] = 0
    if learn:
        for j in active[:n_active]:
            column_flags[j] |= NEEDS_NORM
        changed = flagged(column_flags, NEEDS_NORM, columns)
        normalize_columns(weights, changed, stdp.norm, not two_layer)
        for j in changed:
            column_flags[j] = NEEDS_CLAMP


@njit(cache=True, nogil=True)
def present_sequence(pixels, batch_size, seeds, rates, min_spikes, timing, state, params, options, counts) -> None:
    """Many presentations in one call, each as :func:`present` runs it, without the GIL.

    ``pixels`` [n_images, inputs] (float32) are presented ``batch_size`` at a time, in
    order; batch k draws its Poisson input (:func:`~snnctl.engine.kernels.poisson.poisson_events`,
    ``timing`` = (steps, dt)) at ``rates[0]`` Hz per unit from generators seeded
    ``seeds[k]``, and writes its spike counts into ``counts`` [n_images, n] (zeros).
    Diehl & Cook's retry rule (``snnctl.engine.base.present_with_retries``): the elements
    that made fewer than ``min_spikes`` spikes are presented again, at ``rates[r]`` and
    seed ``seeds[k] + r`` for retry r, and keep the counts of their last presentation.
    With learning on, the batches learn one after another, as separate calls would.
    """
    steps, dt = timing
    no_record = np.zeros((0, 0, 0), np.bool_)
    n_images = pixels.shape[0]
    for k in range(seeds.shape[0]):
        start, stop = k * batch_size, min((k + 1) * batch_size, n_images)
        block = pixels[start:stop]
        rng = rng_states(seeds[k], stop - start)
        present(poisson_events(block, rates[0], steps, dt, rng), rng, state, params, options,
                (counts[start:stop], no_record))
        for retry in range(1, rates.shape[0] if min_spikes > 0 else 0):
            silent = np.flatnonzero(counts[start:stop].sum(axis=1) < min_spikes)
            if silent.shape[0] == 0:
                break
            again = np.ascontiguousarray(block[silent])
            retry_counts = np.zeros((silent.shape[0], counts.shape[1]), np.int32)
            rng = rng_states(seeds[k] + retry, silent.shape[0])
            present(poisson_events(again, rates[retry], steps, dt, rng), rng, state, params, options,
                    (retry_counts, no_record))
            for q in range(silent.shape[0]):
                counts[start + silent[q]] = retry_counts[q]
