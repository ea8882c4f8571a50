"""Poisson input as events: ``bindsnet.encoding.poisson`` drawn per spike, not per (step, input).

Spikes travel as events, never as dense ``[time, inputs]`` rasters: an MNIST image makes
about 13 input spikes per step out of 784 inputs. Events are grouped by batch element,
then by step: the inputs that spike at step t in element b are
``indices[pointers[b, t]:pointers[b, t + 1]]``, in ascending order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from snnctl.engine.kernels.compile import no_refcounts
from snnctl.engine.kernels.rng import uniform

# Poisson CDF tables, one per pixel value, kept across the images of a call (a table depends
# only on the value, the intensity and dt). Open addressing: MNIST's 255 values hash to 160
# of 256 direct-mapped slots, and the values sharing a slot rebuilt each other's table.
_TABLE_SLOTS = 1024
_PROBES = 8


@no_refcounts
def _table_slot(keys: np.ndarray, value: np.float32, bits: np.uint32) -> int:
    """Slot of a pixel value (its float32 ``bits`` hashed by Knuth's multiplicative hash,
    then up to _PROBES slots on): the one that holds ``value``, else the first empty one
    (key -1), else, all probed slots taken by other values, the first, to be rebuilt."""
    home = ((np.int64(bits) * 2654435761) & 0xFFFFFFFF) >> 22
    for probe in range(_PROBES):
        slot = (home + probe) & (_TABLE_SLOTS - 1)
        if keys[slot] == value or keys[slot] < 0:
            return slot
    return home


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


@no_refcounts
def _poisson_element(pixels, bits, intensity, steps, dt, state, tables, times, inputs) -> int:
    """One batch element's spike trains, the algorithm of ``bindsnet.encoding.poisson``.

    For an input of rate r = pixel * intensity > 0 Hz, inter-spike intervals are Poisson with mean
    ``1000 / (r * dt)`` steps, zeros raised to one, and spikes fall at their cumulative
    sums 1..steps (shifted to steps 0..steps-1): the same distribution as BindsNET,
    drawn per spike instead of per (step, input). Each interval is one uniform draw
    u by inverse transform sampling: the smallest k with u < CDF(k), counted without
    branches in a window around the mode, else searched from the window's edge. CDF
    tables are built lazily and kept per pixel value (``tables``, :func:`cdf_tables`);
    beyond the window they never go past ``steps``, as a longer interval ends the train
    whatever its length. Writes (step, input) pairs, input by input; returns their number.
    """
    keys, built_to, last_p, cdf, reciprocals = tables[:5]
    n_events = 0
    for i in range(pixels.shape[0]):
        rate = pixels[i] * intensity  # float32, as torch scales the images
        if not rate > 0:
            continue
        slot = _table_slot(keys, pixels[i], bits[i])
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
            u = uniform(state)
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
def cdf_tables(steps: int, intensity: np.float32, dt: float) -> tuple:
    """Empty CDF tables for :func:`poisson_events` at ``intensity`` and ``dt``, to be shared
    by its calls on the images of one presentation sequence: ``(keys, built_to, last_p,
    cdf, reciprocals, drawn_at)``, a table per pixel value (key -1: an empty slot)."""
    width = steps + _WINDOW  # the window may reach past the last step
    reciprocals = np.empty(width)
    reciprocals[1:] = 1.0 / np.arange(1, width)  # reciprocals 1 / k, off the dependency chain
    return (np.full(_TABLE_SLOTS, -1.0, np.float32), np.empty(_TABLE_SLOTS, np.int64), np.empty(_TABLE_SLOTS),
            np.empty((_TABLE_SLOTS, width)), reciprocals, np.array([intensity, dt]))


@njit(cache=True)
def poisson_events(pixels: np.ndarray, intensity: np.float32, steps: int, dt: float,
                   states: np.ndarray, tables=None) -> tuple[np.ndarray, np.ndarray]:
    """Poisson spike trains of images [batch, inputs] at ``pixel * intensity`` Hz, as events.

    Element b draws from generator ``states[b]``. ``tables`` (:func:`cdf_tables`) carry
    the CDF tables from one call to the next; for tables made for another intensity, dt
    or fewer steps, the call uses fresh ones. The events never depend on the tables
    passed. Returns ``(pointers, indices)``.
    """
    if tables is None:
        tables = cdf_tables(steps, intensity, dt)
    drawn_at = tables[5]
    if drawn_at[0] != intensity or drawn_at[1] != dt or tables[3].shape[1] < steps + _WINDOW:
        tables = cdf_tables(steps, intensity, dt)
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
