"""Compiled (numba) loops of the fast engine: one whole presentation per call.

Each function implements the dynamics of a BindsNET class and names it. All state is
float32 and every parameter is float32 (:mod:`snnctl.engine.params`), so the arithmetic
is the same as BindsNET's float32 tensors (up to summation order). Importing this
package imports numba; :func:`snnctl.engine.policy.fast_engine_available` checks it.
"""

from snnctl.engine.kernels.stale_cache import drop_stale_cache

drop_stale_cache()  # before any kernel is compiled or loaded from numba's cache

from snnctl.engine.kernels.neurons import sparse_rows
from snnctl.engine.kernels.poisson import cdf_tables, dense_to_events, poisson_events
from snnctl.engine.kernels.present import NetworkState, present, present_sequence
from snnctl.engine.kernels.rng import rng_states
from snnctl.engine.kernels.stdp import NEEDS_CLAMP, NEEDS_NORM, column_sums

__all__ = ["NEEDS_CLAMP", "NEEDS_NORM", "NetworkState", "cdf_tables", "column_sums", "dense_to_events",
           "poisson_events", "present", "present_sequence",
           "rng_states", "sparse_rows"]
