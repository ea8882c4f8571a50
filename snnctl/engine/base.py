"""The interface both engines share, the input encoders, and Diehl & Cook's retry rule.

``intensity`` has one meaning everywhere: the maximum input rate in Hz, that of a pixel of
value 1. A retry raises it by ``intensity_step`` Hz. Images become rates in Hz
(:func:`rate_per_unit`), and :func:`encoder_input` hands each encoder those rates in its
own units.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import torch

from snnctl import network as net
from snnctl.config import Config
from snnctl.data import pixel_scale


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

    # Whether presentations are torch operations, which torch's thread pool speeds up.
    # Where not, the small torch operations around them run faster on one thread: on
    # busy cores a pool of several stalls each of them (tens of ms per interval's vote).
    runs_on_torch = True
    # Threads that may call present_sequence at once with learning off (the fast engine's
    # kernels hold no GIL); 1 where they would only contend.
    workers = 1
    # The most images of one training call at batch_size 1: progress, TensorBoard and a stop
    # on a signal are seen at least this often (a thousand on the fast engine: about 0.1 s
    # at 100 neurons, 0.7 s at 6,400).
    images_per_call = 1000

    def __init__(self, config: Config, tensors: net.NetworkTensors, device: torch.device) -> None:
        self.config = config
        self.tensors = tensors
        self.device = device

    def present(self, images: torch.Tensor, learn: bool, seed: int, intensity: float | None = None,
                record: bool = False) -> Presentation:
        """Encode ``images`` [batch, n_inputs] at a maximum rate of ``intensity`` Hz and run them:
        float pixels in [0, 1], or 8-bit pixels (uint8, 255 = 1), which datasets keep to save memory."""
        return self._present_images(images, rate_per_unit(self.config, images, intensity), learn, seed, record)

    @abstractmethod
    def _present_images(self, images: torch.Tensor, hz_per_unit: float, learn: bool, seed: int,
                        record: bool) -> Presentation:
        ...

    def input_spikes(self, images: torch.Tensor, seed: int) -> torch.Tensor:
        """The input spikes [steps, batch, n_inputs] that :meth:`present` draws for ``images``
        with ``seed`` (``visualize spikes`` shows the input that made the counts)."""
        return encode(self.config, images.float() * rate_per_unit(self.config, images), seed, self.device)

    @abstractmethod
    def set_learning_rates(self, nu_pre: float, nu_post: float) -> None:
        """STDP rates from now on (``Config.learning_rates`` of an epoch)."""

    @abstractmethod
    def present_spikes(self, spikes: torch.Tensor, learn: bool, seed: int = 0, record: bool = False) -> Presentation:
        """Run given input spikes [steps, batch, n_inputs] (the parity tests' entry)."""

    def present_sequence(self, images: torch.Tensor, learn: bool, seeds: Sequence[int]) -> torch.Tensor:
        """Batches of ``batch_size`` consecutive ``images``, batch k seeded ``seeds[k]``, each
        through :func:`present_with_retries`, one after another; spike counts [n_images, n].
        The same as calling it per batch: the fast engine runs a sequence in one compiled call."""
        size = self.config.batch_size
        counts = [present_with_retries(self, self.config, images[k * size:(k + 1) * size], learn, int(seed))
                  for k, seed in enumerate(seeds)]
        return torch.cat(counts) if counts else torch.zeros(0, self.config.n_neurons, dtype=torch.int32)

    def sync(self) -> net.NetworkTensors:
        """The current state as CPU tensors (for checkpoints)."""
        return self.tensors

    def set_weights(self, weights: torch.Tensor) -> None:
        """Replace the input weights [inputs, n] (``average_weights``' mean after training)."""
        raise NotImplementedError(f"{type(self).__name__} cannot replace its input weights")


def encoder_input(config: Config, rates: torch.Tensor) -> torch.Tensor:
    """Rates in Hz as the config's BindsNET encoder takes them.

    PoissonEncoder takes rates in Hz. BernoulliEncoder takes a spike probability per step,
    ``rate * dt / 1000``, clamped to 1 (above 1 BindsNET would divide the whole batch by its
    maximum, undoing a retry's raise). RankOrderEncoder rescales its input to fill the
    presentation window, so only the order of the pixels counts and no rate can raise it
    (config validation refuses ``min_spikes`` with it): it gets rates per unit of
    ``intensity``, the pixel values.
    """
    if config.encoder == "PoissonEncoder":
        return rates
    if config.encoder == "BernoulliEncoder":
        return (rates * (config.dt / 1000.0)).clamp(max=1.0)
    return rates / config.intensity


def encode(config: Config, rates: torch.Tensor, seed: int,
           device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """Input spikes [steps, batch, n_inputs] on ``device`` for ``rates`` in Hz, from the BindsNET
    encoder the config names. The Poisson draw is made there, from torch's generator on that
    device: a seed gives the same spikes on the same kind of device. On the CPU it costs about
    3 ms per image of 100 ms (2 cores), which alone would hold the BindsNET engine on a GPU to
    a few hundred images per second: the engine draws where it runs."""
    from bindsnet import encoding

    torch.manual_seed(seed)
    if config.encoder == "PoissonEncoder":
        encoder = encoding.PoissonEncoder(time=config.time, dt=config.dt, device=str(device))
        return encoder(encoder_input(config, rates.to(device)))
    # The Bernoulli and rank-order encoders are cheap, and BindsNET's rank-order encoder mixes
    # CPU and device tensors: drawn on the CPU.
    encoder = getattr(encoding, config.encoder)(time=config.time, dt=config.dt)
    return encoder(encoder_input(config, rates.cpu())).to(device)


def worker_count(config: Config) -> int:
    """Threads for images with learning off: ``workers``, where ``auto`` is every core this
    process may use."""
    if config.workers != "auto":
        return int(config.workers)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def retry_intensities(config: Config) -> list[float]:
    """The maximum rate (Hz) of a presentation and of each retry (``present_with_retries``)."""
    intensities = [config.intensity]
    for _ in range(config.max_retries if config.min_spikes else 0):
        intensities.append(intensities[-1] + config.intensity_step)
    return intensities


def present_with_retries(engine: Engine, config: Config, images: torch.Tensor, learn: bool, seed: int) -> torch.Tensor:
    """Diehl & Cook's rule: an image that makes fewer than ``min_spikes`` excitatory spikes
    is presented again with its maximum rate raised by ``intensity_step`` Hz, at most
    ``max_retries`` times. Returns the counts of each image's last presentation."""
    counts = engine.present(images, learn, seed).counts
    if config.min_spikes == 0:
        return counts
    for retry, intensity in enumerate(retry_intensities(config)[1:], start=1):
        silent = torch.nonzero(counts.sum(1) < config.min_spikes).flatten()
        if len(silent) == 0:
            break
        counts[silent] = engine.present(images[silent], learn, seed + retry, intensity).counts
    return counts
