"""Neuron layers of the Diehl & Cook models, one batch element per call: BindsNET's
``DiehlAndCookNodes`` (excitatory), ``LIFNodes`` (inhibitory), the spike traces of
``Nodes`` and the currents of ``Connection.compute``. Parameters come by name
(:class:`~snnctl.engine.params.LifParams`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from snnctl.config import ONE_SPIKE_RULES
from snnctl.engine.kernels.rng import uniform

# one_spike rules as the kernels' integer codes: positions in config.ONE_SPIKE_RULES
ONE_SPIKE_BINDSNET = ONE_SPIKE_RULES.index("bindsnet")
ONE_SPIKE_WINNER = ONE_SPIKE_RULES.index("winner")


@njit(cache=True)
def add_rows(target: np.ndarray, matrix: np.ndarray, rows: np.ndarray) -> None:
    """target += sum of ``matrix[rows]``: a spike vector times a weight matrix (Connection.compute).

    Rows are added in order, up to eight per pass over ``target``: each element's sum is
    the same sequence of float32 additions as one row at a time, with far fewer loads and
    stores of ``target`` (at 6,400 neurons these passes are most of a presentation; eight
    rows per pass run them about 2.5 times faster)."""
    n, k = target.shape[0], 0
    while k < rows.shape[0]:
        if rows.shape[0] - k >= 8:
            a, b, c, d = matrix[rows[k]], matrix[rows[k + 1]], matrix[rows[k + 2]], matrix[rows[k + 3]]
            e, f, g, h = matrix[rows[k + 4]], matrix[rows[k + 5]], matrix[rows[k + 6]], matrix[rows[k + 7]]
            for j in range(n):
                target[j] = target[j] + a[j] + b[j] + c[j] + d[j] + e[j] + f[j] + g[j] + h[j]
            k += 8
        elif rows.shape[0] - k >= 4:
            a, b, c, d = matrix[rows[k]], matrix[rows[k + 1]], matrix[rows[k + 2]], matrix[rows[k + 3]]
            for j in range(n):
                target[j] = target[j] + a[j] + b[j] + c[j] + d[j]
            k += 4
        else:
            row = matrix[rows[k]]
            for j in range(n):
                target[j] += row[j]
            k += 1


@njit(cache=True)
def spiking(spiked: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Indices of the neurons that spiked, written into ``out``; returns the filled part."""
    k = 0
    for j in range(spiked.shape[0]):
        if spiked[j]:
            out[k] = j
            k += 1
    return out[:k]


@njit(cache=True)
def lif_step(v, refrac, current, spiked, awake, lif) -> int:
    """``bindsnet.network.nodes.LIFNodes.forward`` of the inhibitory layer, one element.

    Leaky integration toward rest, refractory period, threshold, reset. Only the
    ``awake`` neurons, those that have had input in this presentation, are updated:
    the others are at rest and outside their refractory period, which the step leaves
    as they are (BindsNET counts their refractory time further below zero, which has
    no effect). Returns the number of spikes.
    """
    rest, decay, thresh = lif.rest, lif.decay, lif.thresh
    n_spikes = 0
    for j in awake:
        vj = (v[j] - rest) * decay + rest
        if refrac[j] <= 0:
            vj += current[j]
        fired = vj >= thresh
        refrac[j] = lif.refrac if fired else refrac[j] - lif.dt
        v[j] = lif.reset if fired else vj
        spiked[j] = fired
        n_spikes += fired
    return n_spikes


@njit(cache=True)
def drive_inhibitory(current, exc_to_inh, spiked, n_spiked, rows, awake, is_awake, n_awake) -> int:
    """Input current of one element's inhibitory layer from excitatory spikes ``spiked``
    (``Connection.compute``), kept for its ``awake`` neurons only: those that have had
    input in this presentation, which the non-zero weights of spiking rows add to.
    Returns the new length of ``awake``."""
    for j in awake[:n_awake]:
        current[j] = 0.0
    if n_spiked == 0:
        return n_awake
    for r in spiking(spiked, rows):
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
def diehl_cook_step(v, refrac, theta, current, spiked, rises, lif, one_spike, state) -> int:
    """``bindsnet.network.nodes.DiehlAndCookNodes.forward`` for one batch element.

    Leaky integration toward rest, refractory period, threshold ``thresh + theta``,
    reset; ``rises[j]`` counts the crossings that raise theta. With ``one_spike`` =
    bindsnet, every crossing neuron is reset and made refractory but only one, drawn
    at random, emits a spike (BindsNET's rule); = off, all spike (Diehl & Cook's
    network); = winner, only the neuron furthest above threshold crosses, spikes and
    is reset. The first loop has no branches and vectorizes; the second runs only
    when a neuron crossed. Returns the number of spikes emitted.
    """
    rest, decay = lif.rest, lif.decay
    n_crossed = 0
    for j in range(v.shape[0]):
        vj = (v[j] - rest) * decay + rest
        if refrac[j] <= 0:
            vj += current[j]
        v[j] = vj
        refrac[j] -= lif.dt
        crossed = vj >= lif.thresh + theta[j]
        spiked[j] = crossed
        n_crossed += crossed
    if n_crossed == 0:
        return 0
    if one_spike == ONE_SPIKE_WINNER and n_crossed > 1:
        best, best_margin = -1, np.float32(-np.inf)
        for j in range(v.shape[0]):
            if spiked[j] and v[j] - (lif.thresh + theta[j]) > best_margin:
                best, best_margin = j, v[j] - (lif.thresh + theta[j])
        for j in range(v.shape[0]):
            spiked[j] = j == best
        n_crossed = 1
    for j in range(v.shape[0]):
        if spiked[j]:
            refrac[j] = lif.refrac
            v[j] = lif.reset
            rises[j] += 1
    if one_spike == ONE_SPIKE_BINDSNET and n_crossed > 1:
        pick = int(uniform(state) * n_crossed)
        for j in range(v.shape[0]):
            if spiked[j]:
                spiked[j] = pick == 0
                pick -= 1
        return 1
    return n_crossed


@njit(cache=True)
def decay_trace(trace, spiked, active, decay) -> None:
    """Spike trace of ``bindsnet.network.nodes.Nodes.forward``: decay, set to 1 on a spike.
    Only the ``active`` neurons (those that have spiked) have a trace to update."""
    for j in active:
        trace[j] = np.float32(1.0) if spiked[j] else trace[j] * decay


@njit(cache=True)
def add_active(spiked, active, is_active, n_active) -> int:
    """Append the neurons that spiked for the first time to ``active``; returns its length."""
    for j in range(spiked.shape[0]):
        if spiked[j] and not is_active[j]:
            is_active[j] = True
            active[n_active] = j
            n_active += 1
    return n_active
