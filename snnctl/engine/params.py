"""Typed parameters of the fast engine's kernels, built once from a :class:`Config`.

BindsNET's fixed values (those its Diehl & Cook models do not take as arguments) are
written here once, each named for the BindsNET class and argument it comes from. Every
value is a numpy float32, so numba types it float32 and the kernels' arithmetic is the
arithmetic of BindsNET's float32 tensors. Decays are computed as BindsNET computes them,
``exp(-dt / tc)`` with float32 torch operations.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from snnctl.choices import ONE_SPIKE_RULES, REDUCTIONS
from snnctl.config import Config

# bindsnet.network.nodes.DiehlAndCookNodes, as DiehlAndCook2015(v2) builds its excitatory layer
DIEHL_COOK_REST = -65.0  # rest
DIEHL_COOK_RESET = -60.0  # reset
DIEHL_COOK_REFRAC = 5.0  # refrac (ms)
DIEHL_COOK_TC_DECAY = 100.0  # tc_decay (ms)
# bindsnet.network.nodes.LIFNodes, the inhibitory layer Ai of DiehlAndCook2015
LIF_INH_REST = -60.0  # rest
LIF_INH_RESET = -45.0  # reset
LIF_INH_THRESH = -40.0  # thresh
LIF_INH_REFRAC = 2.0  # refrac (ms)
LIF_INH_TC_DECAY = 10.0  # tc_decay (ms)
# bindsnet.network.nodes.Nodes: tc_trace of the spike traces PostPre reads
TC_TRACE = 20.0


class LifParams(NamedTuple):
    """A leaky integrate-and-fire layer: ``LIFNodes`` (the inhibitory layer), and the membrane of
    ``DiehlAndCookNodes``. Potentials in mV, refractory period and step in ms, decay per step."""

    rest: np.float32
    reset: np.float32
    thresh: np.float32
    decay: np.float32
    refrac: np.float32
    dt: np.float32


class ExcitatoryParams(NamedTuple):
    """``DiehlAndCookNodes``: a LIF membrane with the adaptive threshold ``thresh + theta``,
    theta decaying by ``theta_decay`` per step and rising by ``theta_plus`` per spike."""

    lif: LifParams
    theta_decay: np.float32
    theta_plus: np.float32


class StdpParams(NamedTuple):
    """``PostPre`` (Morrison et al. 2008): rates, trace decay per step, weight bounds, column
    norm, and ``nu_post_theta`` (infinity where null: every neuron potentiates at ``nu_post``)."""

    nu_pre: np.float32
    nu_post: np.float32
    trace_decay: np.float32
    wmin: np.float32
    wmax: np.float32
    norm: np.float32
    nu_post_theta: np.float32


class KernelParams(NamedTuple):
    exc: ExcitatoryParams
    inh: LifParams
    stdp: StdpParams


class Options(NamedTuple):
    """How a presentation runs: the model, BindsNET's run mode, the one-spike rule and STDP's
    batch reduction (codes: positions in ``choices.ONE_SPIKE_RULES`` / ``choices.REDUCTIONS``)."""

    two_layer: bool  # DiehlAndCook2015 (Ae, Ai) rather than DiehlAndCook2015v2
    one_step: bool
    one_spike: int
    reduction: int
    learn: bool


def decay(dt: float, tc: float) -> np.float32:
    """``exp(-dt / tc)`` as BindsNET computes its decays (float32 torch operations)."""
    import torch

    return np.float32(torch.exp(-torch.tensor(dt) / torch.tensor(tc)))


def kernel_params(config: Config) -> KernelParams:
    """The kernels' parameters for ``config``, with its (initial) STDP rates."""
    f32 = np.float32
    exc = ExcitatoryParams(
        lif=LifParams(rest=f32(DIEHL_COOK_REST), reset=f32(DIEHL_COOK_RESET), thresh=f32(config.exc_thresh),
                      decay=decay(config.dt, DIEHL_COOK_TC_DECAY), refrac=f32(DIEHL_COOK_REFRAC), dt=f32(config.dt)),
        theta_decay=decay(config.dt, config.tc_theta_decay), theta_plus=f32(config.theta_plus),
    )
    inh = LifParams(
        rest=f32(LIF_INH_REST), reset=f32(LIF_INH_RESET), thresh=f32(LIF_INH_THRESH),
        decay=decay(config.dt, LIF_INH_TC_DECAY), refrac=f32(LIF_INH_REFRAC), dt=f32(config.dt),
    )
    stdp = StdpParams(
        nu_pre=f32(config.nu_pre), nu_post=f32(config.nu_post), trace_decay=decay(config.dt, TC_TRACE),
        wmin=f32(config.wmin), wmax=f32(config.wmax), norm=f32(config.norm),
        nu_post_theta=f32(np.inf if config.nu_post_theta is None else config.nu_post_theta),
    )
    return KernelParams(exc, inh, stdp)


def with_learning_rates(params: KernelParams, nu_pre: float, nu_post: float) -> KernelParams:
    """``params`` with the STDP rates of an epoch (``Config.learning_rates``)."""
    stdp = params.stdp._replace(nu_pre=np.float32(nu_pre), nu_post=np.float32(nu_post))
    return params._replace(stdp=stdp)


def options(config: Config, learn: bool) -> Options:
    return Options(
        two_layer=config.model == "diehl-cook-2015", one_step=bool(config.one_step),
        one_spike=ONE_SPIKE_RULES.index(config.one_spike), reduction=REDUCTIONS.index(config.stdp_reduction),
        learn=bool(learn),
    )


def plain(value: Any) -> Any:
    """``value`` with every NamedTuple in it made a plain tuple, to hand to a kernel: numba
    types plain tuples of arrays and scalars on its fast C path, NamedTuples in Python (about
    10 us per call for :class:`KernelParams`, a tenth of a small presentation). The kernels
    name them again (:func:`snnctl.engine.kernels.present.named_params`)."""
    return tuple(plain(item) for item in value) if isinstance(value, tuple) else value
