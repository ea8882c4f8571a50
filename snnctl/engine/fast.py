"""The fast engine: the dynamics of the BindsNET network as one compiled loop per
presentation (:mod:`snnctl.engine.kernels`), events instead of dense rasters. Proven equal
to BindsNET by tests/test_parity.py. It runs on the CPU."""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import torch

from snnctl import network as net
from snnctl.config import Config
from snnctl.engine.base import Engine, Presentation, encode, rate_per_unit, retry_intensities, worker_count
from snnctl.engine.params import kernel_params, options, plain, with_learning_rates


def column_flags(config: Config, weights: np.ndarray) -> np.ndarray:
    """The kernel's per-neuron weight flags for weights of unknown history: every column
    may lie outside the bounds (clipping what is inside changes nothing), and columns
    that do not sum to ``norm`` (a fresh network) are normalized after the first
    learning presentation, as BindsNET does. A trained network's columns sum to
    ``norm`` to float rounding, so a resumed run continues bit for bit."""
    import snnctl.engine.kernels as k

    absolute = config.model != "diehl-cook-2015"
    sums = k.column_sums(weights, np.arange(config.n_neurons, dtype=np.int32), absolute)
    flags = np.full(config.n_neurons, k.NEEDS_CLAMP, np.uint8)
    flags[np.abs(sums - config.norm) > 1e-4 * abs(config.norm)] |= k.NEEDS_NORM
    return flags


class FastEngine(Engine):
    """One compiled loop per presentation; state lives in the (CPU) tensors themselves."""

    runs_on_torch = False

    def __init__(self, config: Config, tensors: net.NetworkTensors) -> None:
        super().__init__(config, tensors, torch.device("cpu"))
        # numba is imported here, not with the package: a broken install leaves the BindsNET engine
        import snnctl.engine.kernels as kernels

        self.kernels = kernels
        names = net.lateral_names(config.model)
        two_layer = config.model == "diehl-cook-2015"
        weights = tensors.weights.numpy()  # numpy views share memory with the tensors: updated in place
        lateral_a = tensors.lateral[names[0]].numpy()
        self.state = kernels.NetworkState(
            weights=weights, theta=tensors.theta.numpy(), column_flags=column_flags(config, weights),
            lateral_a=lateral_a, lateral_b=tensors.lateral[names[1]].numpy() if two_layer else lateral_a,
            exc_to_inh=kernels.sparse_rows(lateral_a if two_layer else lateral_a[:0]),
        )
        self.params = kernel_params(config)
        # numba types plain tuples faster than NamedTuples: a tenth of a small presentation
        self.kernel_args = plain((self.state, self.params))
        self.kernel_options = {learn: plain(options(config, learn)) for learn in (False, True)}
        self.workers = worker_count(config)
        # Poisson CDF tables kept from one present() to the next, per thread and rate
        self.poisson_tables: dict[tuple[int, float], tuple] = {}
        if config.encoder == "PoissonEncoder":  # loads the compiled sequence now, not in the first timed call
            self._sequence(np.zeros((0, config.n_inputs), np.float32), np.zeros(0, np.int64), np.ones(1, np.float32),
                           False)

    def set_learning_rates(self, nu_pre: float, nu_post: float) -> None:
        self.params = with_learning_rates(self.params, nu_pre, nu_post)
        self.kernel_args = plain((self.state, self.params))

    def set_weights(self, weights: torch.Tensor) -> None:
        self.state.weights[...] = weights.numpy()  # the tensors' memory: they change with it
        self.state.column_flags[...] = column_flags(self.config, self.state.weights)

    def _run(self, events: tuple[np.ndarray, np.ndarray], rng: np.ndarray, learn: bool,
             record: bool) -> Presentation:
        batch, n = len(rng), self.config.n_neurons
        counts = np.zeros((batch, n), np.int32)
        recorded = np.zeros((self.config.steps, batch, n) if record else (0, 0, 0), np.bool_)
        state, params = self.kernel_args
        self.kernels.present(events, rng, state, params, self.kernel_options[bool(learn)],
                             (counts, recorded))
        return Presentation(torch.from_numpy(counts), torch.from_numpy(recorded) if record else None)

    def _present_images(self, images: torch.Tensor, hz_per_unit: float, learn: bool, seed: int,
                        record: bool) -> Presentation:
        if self.config.encoder != "PoissonEncoder":
            return self.present_spikes(encode(self.config, images.float() * hz_per_unit, seed), learn, seed, record)
        # numpy, not torch: a torch op here starts torch's thread pool, which stalls on busy cores
        pixels = np.ascontiguousarray(images.cpu().numpy(), dtype=np.float32)
        rng = self.kernels.rng_states(seed, len(pixels))
        events = self.kernels.poisson_events(pixels, np.float32(hz_per_unit), self.config.steps, self.config.dt, rng,
                                             self._tables(hz_per_unit))
        return self._run(events, rng, learn, record)

    def input_spikes(self, images: torch.Tensor, seed: int) -> torch.Tensor:
        if self.config.encoder != "PoissonEncoder":
            return super().input_spikes(images, seed)
        pixels = np.ascontiguousarray(images.cpu().numpy(), dtype=np.float32)
        hz_per_unit = rate_per_unit(self.config, images)
        pointers, indices = self.kernels.poisson_events(pixels, np.float32(hz_per_unit), self.config.steps,
                                                        self.config.dt, self.kernels.rng_states(seed, len(pixels)))
        spikes = np.zeros((self.config.steps, len(pixels), pixels.shape[1]), np.bool_)
        for element in range(len(pixels)):  # events grouped by step: step t's inputs lie between pointers t and t + 1
            for step in range(self.config.steps):
                spikes[step, element, indices[pointers[element, step]:pointers[element, step + 1]]] = True
        return torch.from_numpy(spikes)

    def _tables(self, hz_per_unit: float) -> tuple:
        """The CDF tables :meth:`present` draws its Poisson input with at ``hz_per_unit``, kept
        from call to call as ``present_sequence`` keeps them from image to image (made afresh
        they were a quarter of a 100-neuron presentation); one set per thread, as drawing
        fills them in. The events do not depend on them (``kernels.poisson_events``)."""
        key = (threading.get_ident(), hz_per_unit)
        if key not in self.poisson_tables:
            if len(self.poisson_tables) >= 8:  # threads come and go: keep a few sets, not one per thread ever seen
                self.poisson_tables.clear()
            self.poisson_tables[key] = self.kernels.cdf_tables(self.config.steps, np.float32(hz_per_unit),
                                                               self.config.dt)
        return self.poisson_tables[key]

    def present_sequence(self, images: torch.Tensor, learn: bool, seeds: Sequence[int]) -> torch.Tensor:
        """Batches of ``batch_size`` consecutive images, batch k seeded ``seeds[k]``, with
        Diehl & Cook's retry rule, in one compiled call (Poisson input only; other encoders
        go batch by batch). The call holds no GIL: with learning off, sequences may run on
        several threads at once (``workers``)."""
        if self.config.encoder != "PoissonEncoder":
            return super().present_sequence(images, learn, seeds)
        pixels = np.ascontiguousarray(images.cpu().numpy(), dtype=np.float32)
        rates = np.array([rate_per_unit(self.config, images, intensity) for intensity in retry_intensities(self.config)],
                         np.float32)
        return torch.from_numpy(self._sequence(pixels, np.asarray(seeds, dtype=np.int64), rates, learn))

    def _sequence(self, pixels: np.ndarray, seeds: np.ndarray, rates: np.ndarray, learn: bool) -> np.ndarray:
        """The compiled call of :meth:`present_sequence`: pixels [n, inputs] float32, a seed
        per batch, the rate per unit of a presentation and of each retry; the counts."""
        counts = np.zeros((len(pixels), self.config.n_neurons), np.int32)
        state, params = self.kernel_args
        self.kernels.present_sequence(pixels, self.config.batch_size, seeds, rates, self.config.min_spikes,
                                      (self.config.steps, float(self.config.dt)), state, params,
                                      self.kernel_options[bool(learn)], counts)
        return counts

    def present_spikes(self, spikes: torch.Tensor, learn: bool, seed: int = 0, record: bool = False) -> Presentation:
        dense = np.ascontiguousarray(spikes.cpu().numpy().astype(np.uint8))
        return self._run(self.kernels.dense_to_events(dense), self.kernels.rng_states(seed, dense.shape[1]), learn,
                         record)
