"""The reference engine: the real BindsNET network, as the original project ran it."""

from __future__ import annotations

import torch

from snnctl import network as net
from snnctl.config import Config
from snnctl.engine.base import Engine, Presentation, encode
from snnctl.errors import ConfigError


class BindsNETEngine(Engine):
    """``bindsnet.network.Network.run`` of ``DiehlAndCook2015`` (or v2) with a monitor on the
    excitatory layer; presentations run batched on ``device``."""

    # a few images a second on the CPU: a thousand would keep Ctrl-C waiting for minutes
    images_per_call = 8

    def __init__(self, config: Config, tensors: net.NetworkTensors, device: torch.device) -> None:
        super().__init__(config, tensors, device)
        from bindsnet.network.monitors import Monitor

        if config.one_spike == "winner":
            raise ConfigError("one_spike: 'winner' runs on the fast engine only (on the CPU); for the BindsNET "
                              "engine (engine: bindsnet, or device: cuda) set one_spike: bindsnet or off")
        if config.nu_post_theta is not None:
            raise ConfigError("nu_post_theta runs on the fast engine only (BindsNET's PostPre has one nu_post for "
                              "every neuron); for the BindsNET engine set nu_post_theta: null")
        self.network = net.build_bindsnet(config, tensors, device)
        self.exc_name = net.EXC_LAYER[config.model]
        # recorded where the network runs: a monitor on the CPU would copy from the GPU,
        # and wait for it, at every step
        self.monitor = Monitor(self.network.layers[self.exc_name], state_vars=["s"], time=config.steps,
                               device=str(device))
        self.network.add_monitor(self.monitor, name="exc")

    def _present_images(self, images: torch.Tensor, hz_per_unit: float, learn: bool, seed: int,
                        record: bool) -> Presentation:
        rates = images.float() * hz_per_unit
        return self.present_spikes(encode(self.config, rates, seed, self.device), learn, seed, record)

    def set_learning_rates(self, nu_pre: float, nu_post: float) -> None:
        rule = net.learning_rule(self.network, self.config.model)
        rule.nu = torch.tensor([nu_pre, nu_post], dtype=torch.float, device=rule.nu.device)

    def present_spikes(self, spikes: torch.Tensor, learn: bool, seed: int = 0, record: bool = False) -> Presentation:
        torch.manual_seed(seed)  # BindsNET's one-spike rule draws from torch's generator
        self.network.train(learn)
        # a copy: BindsNET's reset zeroes the input layer's last spikes in place
        self.network.run(
            inputs={net.INPUT_LAYER: spikes.to(self.device, copy=True)}, time=self.config.time,
            one_step=self.config.one_step,
        )
        recorded = self.monitor.get("s").bool()  # [steps, batch, n]
        self.network.reset_state_variables()
        counts = recorded.sum(0).to("cpu", torch.int32)
        return Presentation(counts, recorded.cpu() if record else None)

    def sync(self) -> net.NetworkTensors:
        self.tensors = net.tensors_from_bindsnet(self.network, self.config)
        return self.tensors

    def set_weights(self, weights: torch.Tensor) -> None:
        tensors = self.sync()
        tensors.weights.copy_(weights)
        net.load_into_bindsnet(self.network, self.config, tensors.to(self.device))
