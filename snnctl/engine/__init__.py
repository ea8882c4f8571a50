"""Running batches of images through a network: spike counts per excitatory neuron.

Two engines with one interface (:class:`Engine`): :class:`BindsNETEngine`, the reference
(the real BindsNET network), and :class:`FastEngine`, the same dynamics compiled
(:mod:`snnctl.engine.kernels`), CPU only; and :class:`ManyNetworks`, many of the fast
engine's networks stepped together in torch (CPU or CUDA). :mod:`snnctl.engine.policy` decides which runs
and where. Both draw their randomness (Poisson input, BindsNET's one-spike pick) from a
seed given per presentation, so a run is reproducible and resumable at any batch.
"""

from snnctl.engine.base import (Engine, Presentation, encode, encoder_input, present_with_retries, rate_per_unit,
                                worker_count)
from snnctl.engine.fast import FastEngine
from snnctl.engine.many import ManyNetworks
from snnctl.engine.policy import (choose_engine, fast_engine_available, make_engine, require_cpu, resolve_device,
                                  runnable_device)
from snnctl.engine.reference import BindsNETEngine

__all__ = ["BindsNETEngine", "Engine", "FastEngine", "ManyNetworks", "Presentation", "choose_engine", "encode", "encoder_input",
           "fast_engine_available", "make_engine", "present_with_retries", "rate_per_unit", "require_cpu",
           "resolve_device", "runnable_device", "worker_count"]
