"""Running batches of images through a network: spike counts per excitatory neuron.

Two engines with one interface (:class:`Engine`):

* :class:`BindsNETEngine`, the reference: the real BindsNET network, ``Network.run``
  with a monitor on the excitatory layer, as the original project ran it.
* :class:`FastEngine`: the same dynamics as one compiled loop per presentation
  (:mod:`snnctl.kernels`), events instead of dense rasters. Proven equal to BindsNET by
  tests/test_parity.py. It runs on the CPU; with ``device: cuda`` the BindsNET engine
  runs batched on the GPU.

Both draw their randomness (Poisson input, BindsNET's one-spike pick) from a seed
given per presentation, so a run is reproducible and resumable at any batch.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from snnctl import network as net
from snnctl.config import Config
from snnctl.data import pixel_scale
from snnctl.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Presentation:
    counts: torch.Tensor  # [batch, n_neurons] excitatory spike counts
    spikes: torch.Tensor | None = None  # [steps, batch, n_neurons] when recorded


def rate_per_unit(config: Config, images: torch.Tensor, intensity: float | None = None) -> float:
    """Firing rate (Hz) per unit of ``images``: the maximum rate (``intensity``, the config's
    unless given) times the pixel scale (1/255 for 8-bit pixels)."""
    return (config.intensity if intensity is None else intensity) * pixel_scale(images)


class Engine(ABC):
    """Simulates the network of ``config`` whose state is ``tensors`` (updated in place)."""

    def __init__(self, config: Config, tensors: net.NetworkTensors, device: torch.device) -> None:
        self.config = config
        self.tensors = tensors
        self.device = device

    def present(self, images: torch.Tensor, learn: bool, seed: int, intensity: float | None = None,
                record: bool = False) -> Presentation:
        """Poisson-code ``images`` [batch, n_inputs] at ``intensity`` Hz and run them: float
        pixels in [0, 1], or 8-bit pixels (uint8, 255 = 1), which datasets keep to save memory."""
        return self._present_images(images, rate_per_unit(self.config, images, intensity), learn, seed, record)

    @abstractmethod
    def _present_images(self, images: torch.Tensor, intensity: float, learn: bool, seed: int,
                        record: bool) -> Presentation:
        ...

    @abstractmethod
    def set_learning_rates(self, nu_pre: float, nu_post: float) -> None:
        """STDP rates from now on (``Config.learning_rates`` of an epoch)."""

    @abstractmethod
    def present_spikes(self, spikes: torch.Tensor, learn: bool, seed: int = 0, record: bool = False) -> Presentation:
        """Run given input spikes [steps, batch, n_inputs] (the parity tests' entry)."""

    def sync(self) -> net.NetworkTensors:
        """The current state as CPU tensors (for checkpoints)."""
        return self.tensors


def encode(config: Config, rates: torch.Tensor, seed: int,
           device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """Input spikes [steps, batch, n_inputs] on ``device`` from the BindsNET encoder the config
    names. The Poisson draw is made there, from torch's generator on that device: a seed gives
    the same spikes on the same kind of device. On the CPU it costs about 3 ms per image of
    100 ms (2 cores), which alone would hold the BindsNET engine on a GPU to a few hundred
    images per second: the engine draws where it runs."""
    from bindsnet import encoding

    torch.manual_seed(seed)
    if config.encoder == "PoissonEncoder":
        encoder = encoding.PoissonEncoder(time=config.time, dt=config.dt, device=str(device))
        return encoder(rates.to(device))
    # Bernoulli and rank-order encoders take intensities, not rates in Hz; they are cheap,
    # and BindsNET's rank-order encoder mixes CPU and device tensors: drawn on the CPU.
    encoder = getattr(encoding, config.encoder)(time=config.time, dt=config.dt)
    return encoder(rates.cpu() / config.intensity).to(device)


class BindsNETEngine(Engine):
    """The reference: ``bindsnet.network.Network.run`` with a monitor on the excitatory layer."""

    def __init__(self, config: Config, tensors: net.NetworkTensors, device: torch.device) -> None:
        super().__init__(config, tensors, device)
        from bindsnet.network.monitors import Monitor

        if config.one_spike == "winner":
            raise ConfigError("one_spike: 'winner' runs on the fast engine only (on the CPU); for the BindsNET "
                              "engine (engine: bindsnet, or device: cuda) set one_spike: bindsnet or off")
        self.network = net.build_bindsnet(config, tensors, device)
        self.exc_name = net.EXC_LAYER[config.model]
        # recorded where the network runs: a monitor on the CPU would copy from the GPU,
        # and wait for it, at every step
        self.monitor = Monitor(self.network.layers[self.exc_name], state_vars=["s"], time=config.steps,
                               device=str(device))
        self.network.add_monitor(self.monitor, name="exc")

    def _present_images(self, images: torch.Tensor, intensity: float, learn: bool, seed: int,
                        record: bool) -> Presentation:
        rates = images.float() * intensity
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


class FastEngine(Engine):
    """One compiled loop per presentation; state lives in the (CPU) tensors themselves."""

    def __init__(self, config: Config, tensors: net.NetworkTensors) -> None:
        super().__init__(config, tensors, torch.device("cpu"))
        from snnctl import kernels

        self.kernels = kernels
        names = net.lateral_names(config.model)
        self.two_layer = config.model == "diehl-cook-2015"
        # numpy views share memory with the tensors: the kernel updates them in place
        self.weights = tensors.weights.numpy()
        self.theta = tensors.theta.numpy()
        self.lateral_a = tensors.lateral[names[0]].numpy()
        self.lateral_b = tensors.lateral[names[1]].numpy() if self.two_layer else self.lateral_a
        self.constants = self._constants(config)
        self.one_spike = {"bindsnet": kernels.ONE_SPIKE_BINDSNET, "off": kernels.ONE_SPIKE_OFF,
                          "winner": kernels.ONE_SPIKE_WINNER}[config.one_spike]
        self.reduction = {"sum": kernels.REDUCE_SUM, "mean": kernels.REDUCE_MEAN,
                          "max": kernels.REDUCE_MAX}[config.stdp_reduction]
        self.column_flags = self._column_flags(config)

    def _column_flags(self, config: Config) -> np.ndarray:
        """The kernel's per-neuron weight flags for weights of unknown history: every column
        may lie outside the bounds (clipping what is inside changes nothing), and columns
        that do not sum to ``norm`` (a fresh network) are normalized after the first
        learning presentation, as BindsNET does. A trained network's columns sum to
        ``norm`` to float rounding, so a resumed run continues bit for bit."""
        k = self.kernels
        sums = k.column_sums(self.weights, np.arange(config.n_neurons, dtype=np.int32), not self.two_layer)
        flags = np.full(config.n_neurons, k.NEEDS_CLAMP, np.uint8)
        flags[np.abs(sums - config.norm) > 1e-4 * abs(config.norm)] |= k.NEEDS_NORM
        return flags

    def _constants(self, config: Config) -> np.ndarray:
        """Float32 constants, computed as BindsNET computes its decays (float32 torch ops)."""
        k = self.kernels
        dt = torch.tensor(config.dt)
        decay = lambda tc: float(torch.exp(-dt / torch.tensor(tc)))  # noqa: E731
        values = np.zeros(k.N_CONSTANTS, np.float32)
        values[[k.REST, k.RESET, k.THRESH, k.REFRAC]] = (-65.0, -60.0, config.exc_thresh, 5)
        values[k.DECAY] = decay(100.0)
        values[k.THETA_DECAY] = decay(config.tc_theta_decay)
        values[k.THETA_PLUS] = config.theta_plus
        values[k.TRACE_DECAY] = decay(20.0)
        values[k.DT] = config.dt
        values[[k.NU_PRE, k.NU_POST, k.WMIN, k.WMAX, k.NORM]] = (
            config.nu_pre, config.nu_post, config.wmin, config.wmax, config.norm)
        values[[k.INH_REST, k.INH_RESET, k.INH_THRESH, k.INH_REFRAC]] = (-60.0, -45.0, -40.0, 2)
        values[k.INH_DECAY] = decay(10.0)
        return values

    def set_learning_rates(self, nu_pre: float, nu_post: float) -> None:
        self.constants[[self.kernels.NU_PRE, self.kernels.NU_POST]] = (nu_pre, nu_post)

    def _run(self, pointers: np.ndarray, indices: np.ndarray, states: np.ndarray, learn: bool,
             record: bool) -> Presentation:
        batch, n = len(pointers), self.config.n_neurons
        counts = np.zeros((batch, n), np.int32)
        recorded = np.zeros((self.config.steps, batch, n) if record else (0, 0, 0), np.bool_)
        self.kernels.present(
            pointers, indices, states, self.two_layer, self.config.one_step, self.one_spike, learn, self.reduction,
            self.weights, self.theta, self.column_flags, self.lateral_a, self.lateral_b, self.constants, counts, recorded,
        )
        return Presentation(torch.from_numpy(counts), torch.from_numpy(recorded) if record else None)

    def _present_images(self, images: torch.Tensor, intensity: float, learn: bool, seed: int,
                        record: bool) -> Presentation:
        if self.config.encoder != "PoissonEncoder":
            return self.present_spikes(encode(self.config, images.float() * intensity, seed), learn, seed, record)
        # numpy, not torch: a torch op here starts torch's thread pool, which stalls on busy cores
        pixels = np.ascontiguousarray(images.cpu().numpy(), dtype=np.float32)
        states = self.kernels.rng_states(seed, len(pixels))
        pointers, indices = self.kernels.poisson_events(pixels, np.float32(intensity), self.config.steps,
                                                        self.config.dt, states)
        return self._run(pointers, indices, states, learn, record)

    def present_spikes(self, spikes: torch.Tensor, learn: bool, seed: int = 0, record: bool = False) -> Presentation:
        dense = np.ascontiguousarray(spikes.cpu().numpy().astype(np.uint8))
        pointers, indices = self.kernels.dense_to_events(dense)
        return self._run(pointers, indices, self.kernels.rng_states(seed, dense.shape[1]), learn, record)


def fast_engine_available() -> bool:
    try:
        import snnctl.kernels  # noqa: F401  (numba compiles lazily; importing checks it loads)

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


def make_engine(config: Config, tensors: net.NetworkTensors) -> Engine:
    """The engine the config asks for (:func:`choose_engine`) on its device (:func:`resolve_device`)."""
    engine = choose_engine(config)
    device = resolve_device(config, engine)
    if engine == "fast":
        if device.type != "cpu":
            raise ConfigError(f"engine: 'fast' runs on the CPU, not on device {device.type!r}")
        return FastEngine(config, tensors.to(device))
    return BindsNETEngine(config, tensors, device)


def present_with_retries(engine: Engine, config: Config, images: torch.Tensor, learn: bool, seed: int) -> torch.Tensor:
    """Diehl & Cook's rule: an image that makes fewer than ``min_spikes`` excitatory spikes
    is presented again with its maximum rate raised by ``intensity_step`` Hz, at most
    ``max_retries`` times. Returns the counts of each image's last presentation."""
    counts = engine.present(images, learn, seed).counts
    if config.min_spikes == 0:
        return counts
    intensity = config.intensity
    for retry in range(1, config.max_retries + 1):
        silent = torch.nonzero(counts.sum(1) < config.min_spikes).flatten()
        if len(silent) == 0:
            break
        intensity += config.intensity_step
        counts[silent] = engine.present(images[silent], learn, seed + retry, intensity).counts
    return counts
