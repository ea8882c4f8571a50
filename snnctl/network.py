"""The BindsNET network a config describes, and the tensors that define its state.

:class:`NetworkTensors` is what a checkpoint stores and what every engine runs on: the
learned input-to-excitatory weights and adaptive thresholds, and the fixed connections
that a config can change (``exc``, ``inh``). :func:`build_bindsnet` makes the real
BindsNET ``DiehlAndCook2015`` / ``DiehlAndCook2015v2`` from a config and loads them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from snnctl.config import Config, lateral_names

if TYPE_CHECKING:
    from bindsnet.learning import LearningRule
    from bindsnet.network import Network

# Layer names BindsNET gives the two models.
INPUT_LAYER = "X"
EXC_LAYER = {"diehl-cook-2015": "Ae", "diehl-cook-2015-v2": "Y"}
INH_LAYER = "Ai"


@dataclass
class NetworkTensors:
    """State of a network. ``lateral`` holds the model's fixed connections:

    * diehl-cook-2015: ``exc_to_inh`` (diagonal ``exc``) and ``inh_to_exc`` (``-inh`` off the
      diagonal), through a separate inhibitory layer;
    * diehl-cook-2015-v2: ``recurrent`` (``-inh`` off the diagonal), excitatory to itself.
    """

    weights: torch.Tensor  # [n_inputs, n_neurons], input -> excitatory, learned by STDP
    theta: torch.Tensor  # [n_neurons], adaptive threshold increments
    lateral: dict[str, torch.Tensor]

    def named(self) -> dict[str, torch.Tensor]:
        """Flat names for the checkpoint and exports."""
        tensors = {"input_to_exc.weight": self.weights, "exc.theta": self.theta}
        tensors.update({f"{name}.weight": value for name, value in self.lateral.items()})
        return tensors

    def clone(self) -> "NetworkTensors":
        return NetworkTensors(
            self.weights.clone(), self.theta.clone(), {k: v.clone() for k, v in self.lateral.items()}
        )

    def to(self, device: torch.device) -> "NetworkTensors":
        return NetworkTensors(
            self.weights.to(device), self.theta.to(device), {k: v.to(device) for k, v in self.lateral.items()}
        )


def from_named(tensors: dict[str, torch.Tensor], model: str) -> NetworkTensors:
    return NetworkTensors(
        tensors["input_to_exc.weight"].float().contiguous(),
        tensors["exc.theta"].float().contiguous(),
        {name: tensors[f"{name}.weight"].float().contiguous() for name in lateral_names(model)},
    )


def off_diagonal(n: int, value: float) -> torch.Tensor:
    return value * (torch.ones(n, n) - torch.diag(torch.ones(n)))


def initial_tensors(config: Config) -> NetworkTensors:
    """A fresh network as BindsNET builds it: weights uniform in [0, 0.3), theta zero."""
    generator = torch.Generator().manual_seed(config.seed)
    n = config.n_neurons
    weights = 0.3 * torch.rand(config.n_inputs, n, generator=generator)
    if config.model == "diehl-cook-2015":
        lateral = {"exc_to_inh": config.exc * torch.diag(torch.ones(n)), "inh_to_exc": off_diagonal(n, -config.inh)}
    else:
        lateral = {"recurrent": off_diagonal(n, -config.inh)}
    return NetworkTensors(weights, torch.zeros(n), lateral)


def stdp_reduction(name: str):
    """BindsNET's ``reduction`` argument for ``name`` in ``config.REDUCTIONS``: how STDP updates
    of a batch combine. torch's function of that name; ``amax`` for max, as ``torch.max``
    returns indices too (a function, not a lambda: a network holding it can be pickled by
    BindsNET's Network.save)."""
    return getattr(torch, "amax" if name == "max" else name)


def build_bindsnet(config: Config, tensors: NetworkTensors, device: torch.device) -> "Network":
    """The real BindsNET network for ``config``, holding copies of ``tensors``."""
    from bindsnet.models import DiehlAndCook2015, DiehlAndCook2015v2

    common = dict(
        n_inpt=config.n_inputs,
        n_neurons=config.n_neurons,
        inh=config.inh,
        dt=config.dt,
        nu=(config.nu_pre, config.nu_post),
        reduction=stdp_reduction(config.stdp_reduction),
        wmin=config.wmin,
        wmax=config.wmax,
        norm=config.norm,
        theta_plus=config.theta_plus,
        tc_theta_decay=config.tc_theta_decay,
        exc_thresh=config.exc_thresh,
    )
    if config.model == "diehl-cook-2015":
        network = DiehlAndCook2015(exc=config.exc, device=str(device), **common)
    else:
        network = DiehlAndCook2015v2(**common)
    network.layers[EXC_LAYER[config.model]].one_spike = config.one_spike == "bindsnet"
    network.to(device)
    load_into_bindsnet(network, config, tensors.to(device))
    return network


def learning_rule(network: "Network", model: str) -> "LearningRule":
    """The PostPre rule of the input connection (a Weight feature's in DiehlAndCook2015)."""
    connection = network.connections[(INPUT_LAYER, EXC_LAYER[model])]
    return connection.pipeline[0].learning_rule if model == "diehl-cook-2015" else connection.update_rule


def _weight_slots(network: "Network", model: str) -> dict[str, tuple[object, str]]:
    """(object, attribute) that holds each tensor inside a BindsNET network."""
    exc = EXC_LAYER[model]
    if model == "diehl-cook-2015":
        feature = lambda src, dst: (network.connections[(src, dst)].pipeline[0], "value")  # noqa: E731
        return {
            "weights": feature(INPUT_LAYER, exc),
            "exc_to_inh": feature(exc, INH_LAYER),
            "inh_to_exc": feature(INH_LAYER, exc),
        }
    return {
        "weights": (network.connections[(INPUT_LAYER, exc)], "w"),
        "recurrent": (network.connections[(exc, exc)], "w"),
    }


def load_into_bindsnet(network: "Network", config: Config, tensors: NetworkTensors) -> None:
    with torch.no_grad():
        for name, (holder, attribute) in _weight_slots(network, config.model).items():
            source = tensors.weights if name == "weights" else tensors.lateral[name]
            getattr(holder, attribute).copy_(source)
        network.layers[EXC_LAYER[config.model]].theta.copy_(tensors.theta)
    for connection in network.connections.values():
        if hasattr(connection, "_fold_cache"):
            connection._fold_cache = None


def tensors_from_bindsnet(network: "Network", config: Config) -> NetworkTensors:
    slots = _weight_slots(network, config.model)
    read = lambda name: getattr(*slots[name]).detach().to("cpu", torch.float32).clone()  # noqa: E731
    theta = network.layers[EXC_LAYER[config.model]].theta.detach().cpu().clone()
    return NetworkTensors(read("weights"), theta, {name: read(name) for name in lateral_names(config.model)})
