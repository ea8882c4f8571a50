"""How a NIR export writes time, voltage and recurrence: :class:`NirOptions` and one preset
per NIR consumer (docs/export.md). Free of torch and NIR, so the command line can offer the
choices without loading them; :mod:`snnctl.export` writes the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from snnctl.errors import ConfigError


@dataclass(frozen=True)
class NirOptions:
    """How the NIR graph writes time, voltage and recurrence, so that a given NIR consumer
    runs it as snnctl does (docs/export.md has one preset per consumer: :data:`NIR_PRESETS`).

    The defaults suit Norse's ``norse.torch.from_nir`` with its default ``dt`` of 1 ms.
    """

    time_unit: str = "s"  # unit of tau and delays in the graph: "s" or "ms"
    step: float | None = None  # the consumer's time step, in time_unit; None: the network's dt
    delays: str = "implicit"  # "implicit": recurrence alone waits a step; "explicit": Delay nodes
    voltage_zero: str = "reset"  # the potential written as 0: each layer's "reset" or "rest"
    threshold: str = "per-neuron"  # "per-neuron" in mV, or "one": each neuron's voltage scaled to it
    r: str = "one"  # "one": the weights carry tau/dt (Norse ignores r); "tau/dt": r does, weights are BindsNET's

    def __post_init__(self) -> None:
        for name, allowed in NIR_CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--nir-{name.replace('_', '-')}: {getattr(self, name)!r} is not one of "
                                  f"{', '.join(allowed)}")
        if self.step is not None and not self.step > 0:
            raise ConfigError(f"--nir-step: {self.step!r} is not a positive number")

    def graph_step(self, dt_ms: float) -> float:
        """The length of one simulation step in the graph's time unit."""
        if self.step is not None:
            return self.step
        return dt_ms * MS_PER[self.time_unit]


NIR_CHOICES: dict[str, tuple[str, ...]] = {
    "time_unit": ("s", "ms"), "delays": ("implicit", "explicit"),
    "voltage_zero": ("reset", "rest"), "threshold": ("per-neuron", "one"), "r": ("one", "tau/dt"),
}
MS_PER = {"s": 1e-3, "ms": 1.0}  # one ms in each time unit
NIR_PRESETS: dict[str, NirOptions] = {
    "norse": NirOptions(),
    # snnTorch's import_from_nir: a fixed step of 1e-4, no v_leak, one threshold per layer, reset
    # to 0; with r = tau/dt its weight scale r dt / tau is 1, so it keeps the thresholds as written
    "snntorch": NirOptions(step=1e-4, voltage_zero="rest", threshold="one", r="tau/dt"),
    # a simulator that honours NIR Delay nodes and the refractory metadata: spike for spike
    "delays": NirOptions(delays="explicit"),
}


def nir_options(preset: str = "norse", **changes: str | float | None) -> NirOptions:
    """The options of ``preset`` (a key of :data:`NIR_PRESETS`, one per consumer) with the
    ``changes`` that are not None: what ``snnctl export --nir-for PRESET --nir-... VALUE`` asks."""
    if preset not in NIR_PRESETS:
        raise ConfigError(f"--nir-for: {preset!r} is not one of {', '.join(NIR_PRESETS)}")
    return replace(NIR_PRESETS[preset], **{name: value for name, value in changes.items() if value is not None})
