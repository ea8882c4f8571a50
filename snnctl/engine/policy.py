"""The one device and engine policy: which engine runs a config, on which device.

Every command reaches an engine through :func:`make_engine`; commands that read a
checkpoint ask :func:`runnable_device` what to run on where the training's device is
missing; parts that cannot use a GPU say so with :func:`require_cpu`. Why the fast engine
stays on the CPU even where a GPU is present: docs/engine.md.
"""

from __future__ import annotations

import logging
import torch

from snnctl import network as net
from snnctl.config import Config
from snnctl.engine.base import Engine
from snnctl.engine.fast import FastEngine
from snnctl.engine.lockstep import member_engine
from snnctl.engine.reference import BindsNETEngine
from snnctl.errors import ConfigError

log = logging.getLogger(__name__)


def fast_engine_available() -> bool:
    """Whether the fast engine's kernels load: numba compiles lazily, so importing them checks it."""
    try:
        import snnctl.engine.kernels  # noqa: F401

        return True
    except Exception as exc:  # a broken numba install must not make snnctl unusable
        log.warning("fast engine unavailable (%s); using the BindsNET engine", exc)
        return False


def choose_engine(config: Config) -> str:
    """``fast`` or ``bindsnet``: the config's ``engine``, where ``auto`` means the fast engine
    unless the config asks for CUDA (where only BindsNET runs) or the kernels cannot load."""
    if config.engine != "auto":
        return config.engine
    if config.device == "cuda":
        return "bindsnet"
    return "fast" if fast_engine_available() else "bindsnet"


def resolve_device(config: Config, engine: str) -> torch.device:
    """The one place that picks the device. ``auto`` is CUDA when present for the BindsNET
    engine, and the CPU for the fast engine: BindsNET's time goes to dispatching small
    operations at every step (the fast engine outruns it about 300 times on the CPU at batch
    1), and a GPU makes no dispatch cheaper (docs/engine.md)."""
    if config.device == "auto":
        gpu = engine == "bindsnet" and torch.cuda.is_available()
        return torch.device("cuda" if gpu else "cpu")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but no CUDA device is available (--device cpu runs here)")
    return torch.device(config.device)


def runnable_device(device: str) -> str:
    """``device``, or ``auto`` where it asks for CUDA and this machine has none: what the
    commands that read a checkpoint run on when not told."""
    return "auto" if device == "cuda" and not torch.cuda.is_available() else device


def require_cpu(config: Config, why: str) -> None:
    """Refuse a config that asks for ``device: cuda`` where only CPUs can serve it (e.g. sweep
    trials, for which Ray reserves CPUs, not GPUs); ``why`` says which part and why."""
    if config.device == "cuda":
        raise ConfigError(f"device: 'cuda': {why}; use device: auto or cpu")


def make_engine(config: Config, tensors: net.NetworkTensors) -> Engine:
    """The engine the config asks for (:func:`choose_engine`) on its device (:func:`resolve_device`);
    in a thread seated in a lockstep group (studies and sweeps with ``networks_per_device``),
    its member of the group (:mod:`snnctl.engine.lockstep`)."""
    member = member_engine(config, tensors)
    if member is not None:
        return member
    engine = choose_engine(config)
    device = resolve_device(config, engine)
    if engine == "fast":
        if device.type != "cpu":
            raise ConfigError(f"engine: 'fast' runs on the CPU, not on device {device.type!r}")
        return FastEngine(config, tensors.to(device))
    return BindsNETEngine(config, tensors, device)
