"""Neuron layers of the Diehl & Cook models, one batch element per call: BindsNET's
``DiehlAndCookNodes`` (excitatory), ``LIFNodes`` (inhibitory), the spike traces of
``Nodes`` and the currents of ``Connection.compute``. Parameters come by name
(:class:`~snnctl.engine.params.LifParams`).

Spikes travel between layers as lists of the neurons that spiked, in ascending order.
A step adds the spiking inputs' weight rows into one current (:func:`add_rows`), then
updates every excitatory neuron in one pass without branches (:func:`diehl_cook_update`,
which also decays theta when learning); only steps where a neuron crossed its threshold
look for the crossings, eight flags at a time, and the inhibitory layer reads only the
non-zero excitatory weights into it (:func:`sparse_rows`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from snnctl.choices import ONE_SPIKE_RULES
from snnctl.engine.kernels.compile import no_refcounts
from snnctl.engine.kernels.rng import uniform
from snnctl.engine.kernels.scan import flagged

# one_spike rules as the kernels' integer codes: positions in choices.ONE_SPIKE_RULES
ONE_SPIKE_BINDSNET = ONE_SPIKE_RULES.index("bindsnet")
ONE_SPIKE_WINNER = ONE_SPIKE_RULES.index("winner")

@no_refcounts
def add_rows(target: np.ndarray, matrix: np.ndarray, rows: np.ndarray, keep: bool) -> None:
    """target = (target if ``keep``, else 0) + the sum of ``matrix[rows]``: a spike vector times
    a weight matrix (Connection.compute).

    Rows are added in order, up to eight per pass over ``target``: each element's sum is
    the same sequence of float32 additions as one row at a time from 0, with far fewer loads and
    stores of ``target`` (at 6,400 neurons these passes are most of a presentation; eight
    rows per pass run them about 2.5 times faster). Passes of 2 rows and the first pass
    starting from 0 instead of a zeroed ``target`` save another 7% of the passes' time. The
    choice between ``target`` and 0 is the same for a whole pass, so the compiler makes two
    versions of the loop, each vectorized."""
    n, k, m = target.shape[0], 0, rows.shape[0]
    if m == 0 and not keep:
        target[:] = 0.0
    while k < m:
        kept = keep or k > 0
        if m - k >= 8:
            a, b, c, d = matrix[rows[k]], matrix[rows[k + 1]], matrix[rows[k + 2]], matrix[rows[k + 3]]
            e, f, g, h = matrix[rows[k + 4]], matrix[rows[k + 5]], matrix[rows[k + 6]], matrix[rows[k + 7]]
            for j in range(n):
                prior = target[j] if kept else np.float32(0.0)
                target[j] = prior + a[j] + b[j] + c[j] + d[j] + e[j] + f[j] + g[j] + h[j]
            k += 8
        elif m - k >= 4:
            a, b, c, d = matrix[rows[k]], matrix[rows[k + 1]], matrix[rows[k + 2]], matrix[rows[k + 3]]
            for j in range(n):
                prior = target[j] if kept else np.float32(0.0)
                target[j] = prior + a[j] + b[j] + c[j] + d[j]
            k += 4
        elif m - k >= 2:
            a, b = matrix[rows[k]], matrix[rows[k + 1]]
            for j in range(n):
                prior = target[j] if kept else np.float32(0.0)
                target[j] = prior + a[j] + b[j]
            k += 2
        else:
            a = matrix[rows[k]]
            for j in range(n):
                prior = target[j] if kept else np.float32(0.0)
                target[j] = prior + a[j]
            k += 1


@no_refcounts
def lif_step(v, refrac, current, awake, lif, spikers) -> int:
    """``bindsnet.network.nodes.LIFNodes.forward`` of the inhibitory layer, one element.

    Leaky integration toward rest, refractory period, threshold, reset. Only the
    ``awake`` neurons, those that have had input in this presentation, are updated:
    the others are at rest and outside their refractory period, which the step leaves
    as they are (BindsNET counts their refractory time further below zero, which has
    no effect). The neurons that spiked go to ``spikers``, in ascending order (the
    order their rows are added in); returns their number.
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
        if fired:
            spikers[n_spikes] = j
            n_spikes += 1
    # awake is in the order the neurons woke: sort the few that spiked (insertion sort)
    for q in range(1, n_spikes):
        j, p = spikers[q], q
        while p > 0 and spikers[p - 1] > j:
            spikers[p] = spikers[p - 1]
            p -= 1
        spikers[p] = j
    return n_spikes


class SparseRows(NamedTuple):
    """A weight matrix's non-zero entries row by row (CSR): row r's are at
    ``columns[pointers[r]:pointers[r + 1]]``, ascending, with their ``values``."""

    pointers: np.ndarray  # int64 [rows + 1]
    columns: np.ndarray  # int32
    values: np.ndarray  # float32


def sparse_rows(matrix: np.ndarray) -> SparseRows:
    """:class:`SparseRows` of ``matrix``: its entries that are not 0 (NaN included)."""
    rows, columns = np.nonzero(matrix != 0)
    pointers = np.zeros(matrix.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=matrix.shape[0]), out=pointers[1:])
    return SparseRows(pointers, columns.astype(np.int32), np.ascontiguousarray(matrix[rows, columns], np.float32))


@no_refcounts
def drive_inhibitory(current, exc_to_inh, spikers, awake, is_awake, n_awake) -> int:
    """Input current of one element's inhibitory layer from the excitatory neurons
    ``spikers`` (``Connection.compute``), kept for its ``awake`` neurons only: those that
    have had input in this presentation, which the non-zero weights of spiking rows add
    to. ``exc_to_inh`` is :class:`SparseRows` of the weights: the zeros, which change
    nothing, are never read (Diehl & Cook's are one-to-one, one weight in each row of
    thousands, a row read from memory that cost 3 to 4 us a spike at 6,400 neurons).
    Returns the new length of ``awake``."""
    pointers, columns, values = exc_to_inh
    for j in awake[:n_awake]:
        current[j] = 0.0
    for r in spikers:
        for e in range(pointers[r], pointers[r + 1]):
            j = columns[e]
            current[j] += values[e]
            if not is_awake[j]:
                is_awake[j] = True
                awake[n_awake] = j
                n_awake += 1
    return n_awake


@no_refcounts
def diehl_cook_update(v, refrac, theta, current, spiked, lif, theta_decay) -> bool:
    """The membrane of ``bindsnet.network.nodes.DiehlAndCookNodes.forward`` for one batch
    element: leaky integration toward rest, input ``current`` only outside the
    refractory period, the threshold ``thresh + theta``, each ``theta`` first multiplied
    by ``theta_decay`` (its decay at a learning step, once per step for the whole batch;
    else 1, which leaves it as it is, and then theta is not written at all). ``spiked``
    marks the neurons that crossed it (:func:`resolve_crossings` settles them); returns
    whether any did.

    With learning off the loop then stores one array fewer (the update alone 11% faster at
    100 and 6,400 neurons), and the inference threads (``workers``), which share theta,
    do not write it.

    No branch that depends on the neuron: the loop compiles to vector instructions eight
    neurons wide. The current is loaded for every neuron and the sum kept or not (a
    conditional add made masked loads), and crossings are or-ed, not counted (a count in
    64-bit integers halved the vector width): 1.4 to 1.7 times faster at 6,400 neurons, the
    same float operations. The decay in the same pass saves one over the thresholds (a
    fifth of the update's time at 6,400 neurons)."""
    rest, decay, dt, thresh = lif.rest, lif.decay, lif.dt, lif.thresh
    decays = theta_decay != np.float32(1.0)
    any_crossed = False
    for j in range(v.shape[0]):
        leaked = (v[j] - rest) * decay + rest
        driven = leaked + current[j]
        vj = driven if refrac[j] <= 0 else leaked
        v[j] = vj
        refrac[j] -= dt
        theta_j = theta[j] * theta_decay
        if decays:
            theta[j] = theta_j
        crossed = vj >= thresh + theta_j
        spiked[j] = crossed
        any_crossed |= crossed
    return any_crossed


@no_refcounts
def resolve_crossings(v, refrac, theta, spiked, spikers, rises, risen, n_risen, lif, one_spike,
                      state) -> tuple[int, int]:
    """The crossings of a step of ``DiehlAndCookNodes.forward`` for one batch element.

    Reset and refractory period for the neurons that cross; ``rises[j]`` counts the
    crossings that raise theta, and ``risen[:n_risen]`` lists the neurons with a non-zero
    count. With ``one_spike`` = bindsnet, every crossing
    neuron is reset and made refractory but only one, drawn at random, emits a spike
    (BindsNET's rule); = off, all spike (Diehl & Cook's network); = winner, only the
    neuron furthest above threshold crosses, spikes and is reset. The neurons that
    spike are left in ``spiked`` and, in ascending order, in ``spikers``; returns
    their number and the new length of ``risen``.
    """
    k = flagged(spiked.view(np.uint8), np.uint8(1), spikers)
    if one_spike == ONE_SPIKE_WINNER and k > 1:
        best, best_margin = -1, np.float32(-np.inf)
        for j in spikers[:k]:
            if v[j] - (lif.thresh + theta[j]) > best_margin:
                best, best_margin = j, v[j] - (lif.thresh + theta[j])
        for j in spikers[:k]:
            spiked[j] = j == best
        spikers[0], k = best, 1
    for j in spikers[:k]:
        refrac[j] = lif.refrac
        v[j] = lif.reset
        if rises[j] == 0:
            risen[n_risen] = j
            n_risen += 1
        rises[j] += 1
    if one_spike == ONE_SPIKE_BINDSNET and k > 1:
        pick = int(uniform(state) * k)
        for q in range(k):
            spiked[spikers[q]] = q == pick
        spikers[0] = spikers[pick]
        return 1, n_risen
    return k, n_risen


@no_refcounts
def decay_trace(trace, spiked, active, decay) -> None:
    """Spike trace of ``bindsnet.network.nodes.Nodes.forward``: decay, set to 1 on a spike.
    Only the ``active`` neurons (those that have spiked) have a trace to update."""
    for j in active:
        trace[j] = np.float32(1.0) if spiked[j] else trace[j] * decay


@no_refcounts
def add_active(spikers, active, is_active, n_active) -> int:
    """Append the neurons ``spikers`` that spiked for the first time to ``active``; returns its length."""
    for j in spikers:
        if not is_active[j]:
            is_active[j] = True
            active[n_active] = j
            n_active += 1
    return n_active
