"""The presentation loop: ``Network.run`` of the Diehl & Cook models, one compiled call
per batch, with BindsNET's order of updates in both of its run modes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from snnctl.engine.kernels.neurons import (SparseRows, add_active, add_rows, decay_trace, diehl_cook_update,
                                           drive_inhibitory, lif_step, resolve_crossings)
from snnctl.engine.kernels.compile import no_refcounts
from snnctl.engine.kernels.poisson import cdf_tables, poisson_events
from snnctl.engine.kernels.rng import rng_states
from snnctl.engine.kernels.scan import flagged
from snnctl.engine.kernels.stdp import (NEEDS_CLAMP, NEEDS_NORM, REDUCE_MAX, InputTraces, PostSpikes, clamp_columns,
                                        max_scratch, normalize_columns, post_pre_update)
from snnctl.engine.params import ExcitatoryParams, KernelParams, LifParams, StdpParams


class NetworkState(NamedTuple):
    """What a presentation reads and (learning) changes, as float32 arrays shared with the
    engine's tensors, plus the per-column flags the engine keeps between presentations and
    the exc -> inh weights' non-zero entries, made once per engine (they never learn)."""

    weights: np.ndarray  # [n_inputs, n] input -> excitatory
    theta: np.ndarray  # [n] adaptive thresholds
    column_flags: np.ndarray  # uint8 [n], NEEDS_CLAMP / NEEDS_NORM
    lateral_a: np.ndarray  # recurrent exc -> exc (v2); DiehlAndCook2015's exc -> inh, read only as exc_to_inh
    lateral_b: np.ndarray  # inh -> exc (DiehlAndCook2015), else lateral_a again
    exc_to_inh: SparseRows  # DiehlAndCook2015: lateral_a's non-zero weights (neurons.sparse_rows); v2: none


class Excitatory(NamedTuple):
    """The excitatory layer during a presentation, per batch element, from rest."""

    v: np.ndarray  # float32 [batch, n]
    refrac: np.ndarray  # float32 [batch, n]
    spiked: np.ndarray  # bool [batch, n]: at this step
    spikers: np.ndarray  # int32 [batch, n]: the neurons that spiked at this step, spikers[b, :n_spiked[b]]
    n_spiked: np.ndarray  # [batch]
    current: np.ndarray  # float32 [n]: the input current of a step
    rises: np.ndarray  # int32 [n]: crossings at this step over the batch, each raising theta
    risen: np.ndarray  # int32 [n]: the neurons with rises, in the order they crossed


class Inhibitory(NamedTuple):
    """The inhibitory layer (DiehlAndCook2015's Ai) during a presentation, per batch element:
    only its awake neurons, those that have had input, leave rest."""

    v: np.ndarray  # float32 [batch, n]
    refrac: np.ndarray  # float32 [batch, n]
    current: np.ndarray  # float32 [batch, n]
    awake: np.ndarray  # int32 [batch, n]: awake[b, :n_awake[b]]
    is_awake: np.ndarray  # bool [batch, n]
    n_awake: np.ndarray  # [batch]
    spikers: np.ndarray  # int32 [batch, n]: spikers[b, :n_spiked[b]], ascending
    n_spiked: np.ndarray  # [batch]


class Plasticity(NamedTuple):
    """What learning keeps during a presentation, made before its steps."""

    post_trace: np.ndarray  # float32 [batch, n]: the excitatory traces x_post
    post_count: np.ndarray  # int32 [n]: each neuron's spikes at this step, over the batch
    active: np.ndarray  # int32 [n]: neurons that have spiked in this presentation, in any element, active[:n_active]
    is_active: np.ndarray  # bool [n]
    columns: np.ndarray  # int32 [n]: a work list of columns to clip or normalize
    scratch: tuple  # the max reduction's work arrays (stdp.max_scratch)


@njit(cache=True)
def named_params(params) -> KernelParams:
    """:class:`~snnctl.engine.params.KernelParams` from ``params``, the same values as a plain
    nested tuple (:func:`snnctl.engine.params.plain`) or already named."""
    (lif, theta_decay, theta_plus), inh, stdp = params
    return KernelParams(ExcitatoryParams(LifParams(*lif), theta_decay, theta_plus), LifParams(*inh), StdpParams(*stdp))


@njit(cache=True)
def at_rest(batch, n, exc_rest, inh_rest) -> tuple[Excitatory, Inhibitory]:
    """Both layers as after ``Network.reset_state_variables``: at rest, nothing refractory."""
    exc = Excitatory(np.full((batch, n), exc_rest, np.float32), np.zeros((batch, n), np.float32),
                     np.zeros((batch, n), np.bool_), np.empty((batch, n), np.int32), np.zeros(batch, np.int64),
                     np.empty(n, np.float32), np.zeros(n, np.int32), np.empty(n, np.int32))
    inh = Inhibitory(np.full((batch, n), inh_rest, np.float32), np.zeros((batch, n), np.float32),
                     np.zeros((batch, n), np.float32), np.empty((batch, n), np.int32), np.zeros((batch, n), np.bool_),
                     np.zeros(batch, np.int64), np.empty((batch, n), np.int32), np.zeros(batch, np.int64))
    return exc, inh


@njit(cache=True)
def input_traces(batch, n_inputs, steps, trace_decay) -> InputTraces:
    """Input traces before any input spike, with the decay multiplied k times, as BindsNET
    decays a trace step by step, for k up to ``steps``."""
    decay_powers = np.empty(steps + 1, np.float32)
    decay_powers[0] = 1.0
    for k in range(1, steps + 1):
        decay_powers[k] = decay_powers[k - 1] * trace_decay
    return InputTraces(np.full((batch, n_inputs), -1, np.int32), np.empty((batch, n_inputs), np.int32),
                       np.zeros(batch, np.int64), decay_powers)


@njit(cache=True, inline="always")
def note_input_spikes(pre, b, now, t) -> None:
    """Element b's inputs ``now`` spiked at step t: their traces restart from 1; those
    that spiked for the first time join ``seen``."""
    last_spike, seen, n_seen = pre.last_spike, pre.seen, pre.n_seen
    for i in now:
        if last_spike[b, i] < 0:
            seen[b, n_seen[b]] = i
            n_seen[b] += 1
        last_spike[b, i] = t


@njit(cache=True, inline="always")
def excitatory_step(exc, b, current, theta, params, one_spike, rng, n_risen, learn) -> int:
    """One step of element b's excitatory layer (``DiehlAndCookNodes.forward``) under
    ``current``; with ``learn``, element 0's step first decays theta for the whole batch.
    Returns the new number of neurons in ``exc.risen``."""
    exc.n_spiked[b] = 0
    theta_decay = params.theta_decay if learn and b == 0 else np.float32(1.0)
    if diehl_cook_update(exc.v[b], exc.refrac[b], theta, current, exc.spiked[b], params.lif, theta_decay):
        exc.n_spiked[b], n_risen = resolve_crossings(exc.v[b], exc.refrac[b], theta, exc.spiked[b], exc.spikers[b],
                                                     exc.rises, exc.risen, n_risen, params.lif, one_spike,
                                                     rng[b:b + 1])
    return n_risen


@njit(cache=True, inline="always")
def inhibitory_step(inh, b, exc_to_inh, exc_spikers, params, drive) -> None:
    """One step of element b's inhibitory layer (``LIFNodes.forward``), its current first
    from ``exc_spikers`` through ``exc_to_inh`` (:class:`SparseRows`) where ``drive``
    (one-step mode: this step's excitatory spikes)."""
    if drive:
        inh.n_awake[b] = drive_inhibitory(inh.current[b], exc_to_inh, exc_spikers, inh.awake[b], inh.is_awake[b],
                                          inh.n_awake[b])
    inh.n_spiked[b] = lif_step(inh.v[b], inh.refrac[b], inh.current[b], inh.awake[b, :inh.n_awake[b]], params,
                               inh.spikers[b])


@njit(cache=True, inline="always")
def adapt_thresholds(theta, exc, n_risen, theta_plus) -> None:
    """Theta rises by ``theta_plus`` per crossing, after the whole batch's step: every
    element compared against the same theta."""
    for q in range(n_risen):
        theta[exc.risen[q]] += theta_plus * np.float32(exc.rises[exc.risen[q]])


@njit(cache=True)
def normalize_changed(weights, column_flags, active, columns, stdp, absolute) -> None:
    """After a presentation with learning: the columns changed since they were last
    normalized (the neurons that spiked, and columns changed by clipping) scaled to sum
    to ``stdp.norm``; those that this takes outside [wmin, wmax] are clipped at the next
    first step."""
    for j in active:
        column_flags[j] |= NEEDS_NORM
    changed = columns[:flagged(column_flags, NEEDS_NORM, columns)]
    outside = normalize_columns(weights, changed, stdp.norm, absolute, stdp.wmin, stdp.wmax)
    for q in range(changed.shape[0]):
        column_flags[changed[q]] = NEEDS_CLAMP if outside[q] else np.uint8(0)


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
    the columns that may be outside the bounds (``NEEDS_CLAMP``: of unknown history, or
    taken outside them by the last normalization), clipped at the first learning step,
    and those changed since they were last normalized (``NEEDS_NORM``); only those are
    clipped or normalized.
    The others are within bounds and sum to ``norm`` already: BindsNET's pass moves them
    by float rounding at most. Costs then grow with the neurons that spike, not with
    the size of the weight matrix.
    """
    pointers = events[0]
    weights, column_flags = state[0], state[2]
    exc_params, inh_params, stdp = named_params(params)
    two_layer, _, _, reduction, learn = options
    batch, steps = pointers.shape[0], pointers.shape[1] - 1
    n_inputs, n = weights.shape
    exc, inh = at_rest(batch, n, exc_params.lif.rest, inh_params.rest)
    layers = (exc, inh, input_traces(batch, n_inputs, steps, stdp.trace_decay))
    learned = Plasticity(np.zeros((batch, n), np.float32), np.zeros(n, np.int32), np.empty(n, np.int32),
                         np.zeros(n, np.bool_), np.empty(n, np.int32),
                         max_scratch(pointers, n_inputs, learn and reduction == REDUCE_MAX))
    # the steps run without reference counting (:func:`no_refcounts`): every array is made here
    n_active = _steps(events, rng, state, params, options, out, layers, learned)
    if learn:
        normalize_changed(weights, column_flags, learned.active[:n_active], learned.columns, stdp, not two_layer)


@no_refcounts
def _steps(events, rng, state, params, options, out, layers, learned) -> int:
    """The steps of :func:`present`, from rest: ``layers`` are the excitatory and
    inhibitory layers (:func:`at_rest`) and the input traces (:func:`input_traces`);
    ``learned`` is :class:`Plasticity`. Returns the number of ``active`` neurons."""
    pointers, indices = events
    weights, theta, column_flags, lateral_a, lateral_b, exc_to_inh = state
    exc_params, inh_params, stdp = named_params(params)
    two_layer, one_step, one_spike, reduction, learn = options
    counts, record = out
    exc, inh, pre = layers
    post_trace, post_count, active, is_active, columns, scratch = learned
    batch, steps = pointers.shape[0], pointers.shape[1] - 1
    n = weights.shape[1]
    n_active = 0
    empty = indices[:0]

    for t in range(steps):
        n_risen = 0
        for b in range(batch):
            now = indices[pointers[b, t]:pointers[b, t + 1]]
            if learn:
                note_input_spikes(pre, b, now, t)
            # Input current from this step's input spikes (one-step) or the previous step's.
            if one_step:
                drive = now
            elif t > 0:
                drive = indices[pointers[b, t - 1]:pointers[b, t]]
            else:
                drive = empty
            current = exc.current
            add_rows(current, weights, drive, False)
            # Inhibition from the previous step's spikes (Ai, or Y itself in v2).
            if two_layer:
                if inh.n_spiked[b]:
                    add_rows(current, lateral_b, inh.spikers[b, :inh.n_spiked[b]], True)
                if not one_step:
                    inh.n_awake[b] = drive_inhibitory(inh.current[b], exc_to_inh, exc.spikers[b, :exc.n_spiked[b]],
                                                      inh.awake[b], inh.is_awake[b], inh.n_awake[b])
            elif exc.n_spiked[b]:
                add_rows(current, lateral_a, exc.spikers[b, :exc.n_spiked[b]], True)
            n_risen = excitatory_step(exc, b, current, theta, exc_params, one_spike, rng, n_risen, learn)
            spikers = exc.spikers[b, :exc.n_spiked[b]]
            if learn:
                if exc.n_spiked[b]:
                    n_active = add_active(spikers, active, is_active, n_active)
                decay_trace(post_trace[b], exc.spiked[b], active[:n_active], stdp.trace_decay)
            for j in spikers:
                counts[b, j] += 1
                post_count[j] += 1
            if record.shape[0] > 0:
                for j in range(n):  # a loop: an array assignment would allocate
                    record[t, b, j] = exc.spiked[b, j]
            if two_layer:
                inhibitory_step(inh, b, exc_to_inh, spikers, inh_params, one_step)

        if learn:
            adapt_thresholds(theta, exc, n_risen, exc_params.theta_plus)
            post = PostSpikes(post_trace, active[:n_active], exc.spiked, exc.spikers, exc.n_spiked, post_count)
            post_pre_update(weights, events, t, post, pre, stdp, reduction, scratch, theta)
            if t == 0:
                clamp_columns(weights, columns[:flagged(column_flags, NEEDS_CLAMP, columns)], stdp.wmin, stdp.wmax,
                              column_flags)
        for q in range(n_risen):
            exc.rises[exc.risen[q]] = 0
            post_count[exc.risen[q]] = 0
    return n_active


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
    tables = cdf_tables(steps, rates[0], dt)
    for k in range(seeds.shape[0]):
        start, stop = k * batch_size, min((k + 1) * batch_size, n_images)
        block = pixels[start:stop]
        rng = rng_states(seeds[k], stop - start)
        present(poisson_events(block, rates[0], steps, dt, rng, tables), rng, state, params, options,
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
