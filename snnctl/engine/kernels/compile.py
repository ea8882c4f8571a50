"""How the innermost loops of the kernels are compiled."""

from __future__ import annotations

from numba import njit


def no_refcounts(function):
    """``njit(cache=True)`` without numba's reference counting, for the loops that run at
    every step: every view they take of an argument (a row of the weights, one batch
    element's state, the input spikes of a step) would otherwise cost an atomic increment
    and a decrement. Those were 38% of a presentation's CPU time at 225 neurons (perf,
    2026-12-03). numba refuses to compile an allocation in such a function, or the return
    of an array that is not one of its arguments, so it cannot free or leak an array;
    arrays come in from reference-counted callers, which keep them alive."""
    return njit(cache=True, _nrt=False)(function)
