"""Many networks in lockstep: N independent Diehl & Cook networks of one shape, in torch.

Each network learns one image at a time, as it would alone on the fast engine
(:mod:`snnctl.engine.kernels`): the same Poisson events from the same SplitMix64 seeds
(drawn by the fast engine's own :func:`~snnctl.engine.kernels.poisson.poisson_events`
on the CPU), the same order of updates within a step (``kernels.present.present``), the
same one-spike rule, the same PostPre STDP (Morrison et al. 2008), clipping and column
normalization. What differs is the width: every torch operation of a step acts on all
networks at once (lanes), so one device runs tens of networks for the dispatch cost of
one. The same code runs on the CPU (the tests prove it equal to the fast engine there)
and on CUDA.

With learning off, the lanes are images of one network: inference at large batches.
``current_sum="exact"`` adds a step's input rows one after another as the fast engine
does (bit for bit); ``"matmul"`` makes the input currents one matrix product per step,
the fast way for large layers and batches, whose sums run in another order (float
rounding: a spike may differ where a membrane lies within an ulp of threshold).

Bit for bit: every float32 operation is the fast engine's, in its order. Sums over a
list (a step's input rows, a column's weights) are sequential float32 additions: on CUDA
by ``cumsum`` along an outer dimension (one thread per column, adding in order), on the
CPU one addition per row, as torch's CPU ``cumsum`` accumulates in float64.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from snnctl import network as net
from snnctl.config import Config
from snnctl.engine.base import rate_per_unit, retry_intensities
from snnctl.engine.lanes import padded_events, padded_indices, row_sum, scatter_index, sequential_sum, uniform
from snnctl.engine.params import KernelParams, kernel_params, options

CURRENT_SUMS = ("exact", "matmul")
# The keys two networks must share to run in one group: the shape of their state and of a
# presentation, and the kernel options every lane of a step follows.
SHAPE_KEYS = ("model", "n_inputs", "n_neurons", "time", "dt", "one_step", "one_spike", "encoder")


def shape_key(config: Config) -> tuple:
    """What networks must share to run in lockstep (:data:`SHAPE_KEYS`)."""
    return tuple(getattr(config, key) for key in SHAPE_KEYS)


class ManyNetworks:
    """N independent networks of one shape (:data:`SHAPE_KEYS`), each with its own parameters
    (thresholds, theta, STDP rates, bounds, norm, retry rule), stepped together in torch on
    ``device``. ``tensors`` are copied there; :meth:`tensors` returns one network's state."""

    def __init__(self, configs: Sequence[Config], tensors: Sequence[net.NetworkTensors], device: torch.device | str,
                 current_sum: str = "exact") -> None:
        if not configs or len(configs) != len(tensors):
            raise ValueError("ManyNetworks: one network's tensors per config, at least one")
        keys = {shape_key(c) for c in configs}
        if len(keys) > 1:
            raise ValueError(f"ManyNetworks: the networks differ in shape ({', '.join(SHAPE_KEYS)}): {sorted(keys)}")
        if configs[0].encoder != "PoissonEncoder":
            raise ValueError(f"ManyNetworks: encoder {configs[0].encoder!r}: only the PoissonEncoder runs in lockstep")
        if current_sum not in CURRENT_SUMS:
            raise ValueError(f"ManyNetworks: current_sum {current_sum!r} is not one of {CURRENT_SUMS}")
        import snnctl.engine.kernels as kernels  # numba: the Poisson events are the fast engine's own

        self.kernels = kernels
        self.configs = list(configs)
        self.device = torch.device(device)
        self.current_sum = current_sum
        first = configs[0]
        self.options = options(first, True)
        self.steps = first.steps
        names = net.lateral_names(first.model)
        self.two_layer = self.options.two_layer
        self.weights = torch.stack([t.weights for t in tensors]).float().to(self.device)
        self.theta = torch.stack([t.theta for t in tensors]).float().to(self.device)
        self.lateral_a = torch.stack([t.lateral[names[0]] for t in tensors]).float().to(self.device)
        self.lateral_b = (torch.stack([t.lateral[names[1]] for t in tensors]).float().to(self.device)
                          if self.two_layer else self.lateral_a)
        self.flags = self._initial_flags(tensors)
        self.needs_clamp, self.needs_norm = int(kernels.NEEDS_CLAMP), int(kernels.NEEDS_NORM)
        self._stack_params([kernel_params(c) for c in configs])

    # ------------------------------------------------------------------ parameters

    def _initial_flags(self, tensors: Sequence[net.NetworkTensors]) -> torch.Tensor:
        """Each network's per-column flags as the fast engine sets them for its weights
        (``fast.column_flags``): then they are clipped and normalized alike."""
        from snnctl.engine.fast import column_flags

        flags = [column_flags(c, t.weights.cpu().numpy()) for c, t in zip(self.configs, tensors)]
        return torch.from_numpy(np.stack(flags)).to(self.device)

    def _stack_params(self, p: list[KernelParams]) -> None:
        """Each network's float32 parameters ``p`` as [networks, 1] tensors, so a lane reads
        its network's."""
        def column(values: list) -> torch.Tensor:
            return torch.tensor(np.array(values, np.float32)[:, None], device=self.device)

        self.exc = {name: column([getattr(q.exc.lif, name) for q in p]) for name in p[0].exc.lif._fields}
        self.inh = {name: column([getattr(q.inh, name) for q in p]) for name in p[0].inh._fields}
        self.stdp = {name: column([getattr(q.stdp, name) for q in p]) for name in p[0].stdp._fields}
        self.theta_decay = column([q.exc.theta_decay for q in p])
        self.theta_plus = column([q.exc.theta_plus for q in p])
        # the trace decay multiplied k times, as BindsNET decays it (kernels.present)
        powers = np.ones((len(p), self.steps + 1), np.float32)
        for k in range(1, self.steps + 1):
            powers[:, k] = powers[:, k - 1] * np.array([q.stdp.trace_decay for q in p], np.float32)
        self.decay_powers = torch.from_numpy(powers).to(self.device)

    def set_learning_rates(self, network: int, nu_pre: float, nu_post: float) -> None:
        """STDP rates of ``network`` from now on (``Config.learning_rates`` of its epoch)."""
        self.stdp["nu_pre"][network] = float(np.float32(nu_pre))
        self.stdp["nu_post"][network] = float(np.float32(nu_post))

    def tensors(self, network: int) -> net.NetworkTensors:
        """Network ``network``'s state as CPU tensors (a checkpoint's)."""
        names = net.lateral_names(self.configs[network].model)
        lateral = {names[0]: self.lateral_a[network].cpu()}
        if self.two_layer:
            lateral[names[1]] = self.lateral_b[network].cpu()
        return net.NetworkTensors(self.weights[network].cpu(), self.theta[network].cpu(), lateral)

    # ------------------------------------------------------------------ input

    def events(self, images: torch.Tensor, hz_per_unit: Sequence[float], generators: np.ndarray) -> torch.Tensor:
        """The fast engine's Poisson events of ``images`` [lanes, inputs] (padded indices,
        :func:`padded_events`, on the device), lane l at ``hz_per_unit[l]`` Hz per unit,
        drawn from the SplitMix64 states ``generators[l]`` (uint64, advanced in place)."""
        pixels = np.ascontiguousarray(images.cpu().numpy(), dtype=np.float32)
        rates = np.asarray(hz_per_unit, np.float32)
        groups = []
        # one call per rate: a lane's events depend only on its pixels, rate and generator
        for rate in np.unique(rates):
            lanes = np.flatnonzero(rates == rate)
            states = np.ascontiguousarray(generators[lanes])
            pointers, indices = self.kernels.poisson_events(np.ascontiguousarray(pixels[lanes]), rate, self.steps,
                                                            float(self.configs[0].dt), states)
            generators[lanes] = states
            groups.append((lanes, pointers, indices))
        most = max([1] + [int(np.diff(p, axis=1).max()) for _, p, _ in groups if p.size])
        padded = np.full((self.steps, len(pixels), most), -1, np.int64)
        for lanes, pointers, indices in groups:
            padded[:, lanes, :] = padded_events(pointers, indices, most)
        return torch.from_numpy(padded).to(self.device)

    # ------------------------------------------------------------------ with the retry rule

    def _rates(self, network: int, images: torch.Tensor) -> np.ndarray:
        """Hz per unit of a presentation and of each retry (``FastEngine.present_sequence``)."""
        config = self.configs[network]
        return np.array([rate_per_unit(config, images, i) for i in retry_intensities(config)], np.float32)

    def learn(self, images: torch.Tensor, seeds: Sequence[int], networks: Sequence[int] | None = None) -> torch.Tensor:
        """Network ``networks[k]`` (default: all, in order) learns ``images[k]`` as the fast
        engine's ``present_sequence`` at batch size 1 with seed ``seeds[k]`` does, with Diehl &
        Cook's retry rule (each network its own ``min_spikes``, ``max_retries``,
        ``intensity_step``). Returns the counts of each image's last presentation [k, n]."""
        chosen = np.arange(len(self.configs)) if networks is None else np.asarray(networks, np.int64)
        rates = [self._rates(int(k), images) for k in chosen]
        counts = self._present_lanes(images, [r[0] for r in rates], [(int(s), 1) for s in seeds], chosen, True)
        for retry in range(1, max(len(r) for r in rates)):
            totals = counts.sum(1).cpu().numpy()
            silent = [q for q, k in enumerate(chosen) if self.configs[k].min_spikes > 0 and retry < len(rates[q])
                      and totals[q] < self.configs[k].min_spikes]
            if not silent:
                break
            counts[silent] = self._present_lanes(images[silent], [rates[q][retry] for q in silent],
                                                 [(int(seeds[q]) + retry, 1) for q in silent], chosen[silent], True)
        return counts

    def infer(self, network: int, images: torch.Tensor, seeds: Sequence[int], max_lanes: int = 1024) -> torch.Tensor:
        """``FastEngine.present_sequence`` with learning off, on network ``network``: batches of
        its ``batch_size`` consecutive images, batch k seeded ``seeds[k]``, with the retry rule;
        run as lanes of at most ``max_lanes`` images at once. Returns the counts [images, n]."""
        size, config = self.configs[network].batch_size, self.configs[network]
        rates = self._rates(network, images)
        blocks = [(int(seed), min(size, len(images) - k * size)) for k, seed in enumerate(seeds)]
        counts = self._present_lanes(images, [rates[0]] * len(images), blocks, network, False, max_lanes)
        for retry in range(1, len(rates) if config.min_spikes > 0 else 0):
            silent = (counts.sum(1) < config.min_spikes).cpu().numpy()
            if not silent.any():
                break
            # batch k's silent images draw from rng_states(seeds[k] + retry, how many they are)
            again = [(seed + retry, int(silent[k * size:(k + 1) * size].sum())) for k, (seed, _) in enumerate(blocks)]
            where = np.flatnonzero(silent)
            counts[where] = self._present_lanes(images[where], [rates[retry]] * len(where), again, network, False,
                                                max_lanes)
        return counts

    def _present_lanes(self, images: torch.Tensor, hz_per_unit: Sequence[float], blocks: Sequence[tuple[int, int]],
                       networks: np.ndarray | int, learn: bool, max_lanes: int | None = None) -> torch.Tensor:
        """Presentations of ``images`` as lanes, lane l at ``hz_per_unit[l]``; the lanes' generators
        are ``kernels.rng_states(seed, count)`` of each ``(seed, count)`` of ``blocks`` in turn
        (one fast-engine batch each). ``networks``: each lane's network, or one for all."""
        generators = np.concatenate([self.kernels.rng_states(seed, count) for seed, count in blocks])
        lanes = len(images)
        network_of = torch.as_tensor(np.broadcast_to(networks, (lanes,)).copy(), device=self.device)
        width = max_lanes or lanes
        parts = []
        for start in range(0, lanes, width):
            part = slice(start, min(start + width, lanes))
            part_generators = generators[part].copy()
            events = self.events(images[part], hz_per_unit[part], part_generators)
            rng = torch.from_numpy(part_generators.view(np.int64).copy()).to(self.device)
            parts.append(self.present(events, rng, network_of[part], learn))
        return torch.cat(parts).cpu()

    # ------------------------------------------------------------------ a presentation

    def present(self, events: torch.Tensor, rng: torch.Tensor, networks: torch.Tensor, learn: bool) -> torch.Tensor:
        """One presentation of the lanes: ``kernels.present.present`` with lane l of network
        ``networks[l]``, each lane a batch of one: ``events`` from :meth:`events`, ``rng`` the
        lanes' SplitMix64 states after them (int64, advanced by the one-spike picks). With
        ``learn``, each network has at most one lane and learns from it (theta, STDP,
        normalization). Returns the counts [lanes, n]."""
        networks = networks.to(self.device)
        if learn and len(torch.unique(networks)) != len(networks):
            raise ValueError("ManyNetworks.present: a learning network takes one lane")
        if self.current_sum == "matmul" and (learn or len(torch.unique(networks)) > 1):
            raise ValueError("ManyNetworks.present: current_sum 'matmul' is for inference, lanes of one network")
        state = _LaneState(self, networks, learn)
        counts = state.run(events, rng)
        if learn:
            state.write_back()
        return counts


class _LaneState:
    """The variables of one presentation of the lanes (neurons from rest, traces at zero),
    and, while learning, the lanes' networks' weights, theta and flags."""

    def __init__(self, many: ManyNetworks, networks: torch.Tensor, learn: bool) -> None:
        self.many, self.networks, self.learn = many, networks, learn
        lanes, n = len(networks), many.weights.shape[2]
        dev = many.device
        self.all_networks = learn and len(networks) == len(many.weights) and bool(
            (networks == torch.arange(len(networks), device=dev)).all())
        pick = (lambda t: t) if self.all_networks else (lambda t: t[networks])
        # learning changes them: the lanes' own copies (or the networks' tensors themselves)
        self.weights = pick(many.weights) if learn else many.weights
        self.theta = pick(many.theta) if learn else many.theta[networks]
        self.threshold = None if learn else many.exc["thresh"][networks] + self.theta  # theta is fixed
        self.flags = pick(many.flags) if learn else None
        # the network every lane runs, where they share one (inference): cheaper gathers
        shared = None if learn or not bool((networks == networks[0]).all()) else int(networks[0])
        self.row_networks = None if learn else (networks if shared is None else shared)
        self.lateral_networks = networks if shared is None else shared
        self.exc = {k: v[networks] for k, v in many.exc.items()}
        self.inh = {k: v[networks] for k, v in many.inh.items()}
        self.stdp = {k: v[networks] for k, v in many.stdp.items()}
        self.theta_decay, self.theta_plus = many.theta_decay[networks], many.theta_plus[networks]
        self.decay_powers = many.decay_powers[networks]
        self.v = self.exc["rest"].expand(lanes, n).clone()
        self.refrac = torch.zeros(lanes, n, device=dev)
        self.spiked = torch.zeros(lanes, n, dtype=torch.bool, device=dev)
        self.emitted = self._emitted()  # the spiking neurons as indices: read up to twice a step
        self.inh_v = self.inh["rest"].expand(lanes, n).clone()
        self.inh_refrac = torch.zeros(lanes, n, device=dev)
        self.inh_spiked = torch.zeros(lanes, n, dtype=torch.bool, device=dev)
        self.inh_current = torch.zeros(lanes, n, device=dev)
        self.counts = torch.zeros(lanes, n, dtype=torch.int32, device=dev)
        self.post_trace = torch.zeros(lanes, n, device=dev)
        self.active = torch.zeros(lanes, n, dtype=torch.bool, device=dev)
        # the step of each input's last spike (-1: none yet), and a column for padding
        self.last_spike = torch.full((lanes, many.weights.shape[1] + 1), -1, dtype=torch.int64, device=dev)

    def run(self, events: torch.Tensor, rng: torch.Tensor) -> torch.Tensor:
        one_step = self.many.options.one_step
        empty = events.new_full((events.shape[1], 1), -1)
        n_inputs = self.weights.shape[1]
        for t in range(self.many.steps):
            now = events[t]
            if self.learn:
                self.theta = self.theta * self.theta_decay
                # padding lands in the last column, past the inputs
                self.last_spike.scatter_(1, torch.where(now >= 0, now, n_inputs), t)
            drive = now if one_step else (events[t - 1] if t > 0 else empty)
            current = self._exc_current(drive)
            if self.two_layer and not one_step:
                self.inh_current = self._inh_current()
            crossed = self._diehl_cook_step(current, rng)
            if self.learn:
                self.post_trace = torch.where(self.spiked, 1.0, self.post_trace * self.stdp["trace_decay"])
                self.active |= self.spiked
            self.counts += self.spiked
            if self.two_layer:
                if one_step:
                    self.inh_current = self._inh_current()
                self._lif_step()
            if self.learn:
                self.theta = torch.where(crossed, self.theta + self.theta_plus, self.theta)
                self._post_pre(now, t)
        if self.learn:
            self._normalize()
        return self.counts

    @property
    def two_layer(self) -> bool:
        return self.many.two_layer

    def _exc_current(self, drive: torch.Tensor) -> torch.Tensor:
        """Input rows (ascending), then inhibition from the previous step's spikes: ``Ai``'s
        through ``inh_to_exc``, or v2's recurrent connection from the excitatory layer. The
        few spiking rows of inhibition are gathered (a product with the whole [n, n] matrix
        would cost more than the input's); with ``matmul`` the input is one product."""
        many = self.many
        if self.two_layer:
            lateral = row_sum(many.lateral_b, self.lateral_networks, padded_indices(self.inh_spiked))
        else:
            lateral = row_sum(many.lateral_a, self.lateral_networks, self.emitted)
        if many.current_sum == "matmul":
            return self._input_product(drive) + sequential_sum(lateral, 1)
        return sequential_sum(torch.cat([row_sum(self.weights, self.row_networks, drive), lateral], dim=1), 1)

    def _input_product(self, drive: torch.Tensor) -> torch.Tensor:
        """The input spikes ``drive`` (padded indices) times the weights of the one network
        the lanes share, as one matrix product."""
        n_inputs = self.weights.shape[1]
        spikes = torch.zeros(len(drive), n_inputs + 1, device=drive.device)
        spikes.scatter_(1, torch.where(drive >= 0, drive, n_inputs), 1.0)  # padding: the last column
        spikes = spikes[:, :n_inputs]
        return spikes @ self.weights[self.lateral_networks]

    def _emitted(self) -> torch.Tensor:
        """The excitatory neurons that spiked at this step, per lane (:func:`padded_indices`).
        Under the one-spike rules a lane has at most one: found without asking the device
        how many (no wait for it)."""
        from snnctl.engine.kernels.neurons import ONE_SPIKE_BINDSNET, ONE_SPIKE_WINNER

        if self.many.options.one_spike in (ONE_SPIKE_BINDSNET, ONE_SPIKE_WINNER):
            first = self.spiked.to(torch.uint8).argmax(1, keepdim=True)
            return torch.where(self.spiked.any(1, keepdim=True), first, -1)
        return padded_indices(self.spiked)

    def _inh_current(self) -> torch.Tensor:
        """``Ai``'s input from the excitatory spikes through ``exc_to_inh``."""
        return sequential_sum(row_sum(self.many.lateral_a, self.lateral_networks, self.emitted), 1)

    def _diehl_cook_step(self, current: torch.Tensor, rng: torch.Tensor) -> torch.Tensor:
        """``kernels.neurons.diehl_cook_step`` on every lane; sets ``spiked`` (emitted) and
        returns the neurons that crossed (each raises its theta)."""
        from snnctl.engine.kernels.neurons import ONE_SPIKE_BINDSNET, ONE_SPIKE_WINNER

        exc, one_spike = self.exc, self.many.options.one_spike
        v = (self.v - exc["rest"]) * exc["decay"] + exc["rest"]
        v = torch.where(self.refrac <= 0, v + current, v)
        self.refrac = self.refrac - exc["dt"]
        threshold = exc["thresh"] + self.theta if self.learn else self.threshold
        crossed = v >= threshold
        n_crossed = crossed.sum(1)
        if one_spike == ONE_SPIKE_WINNER:
            margin = torch.where(crossed, v - threshold, -torch.inf)
            best = torch.zeros_like(crossed).scatter_(1, margin.argmax(1, keepdim=True), True)
            crossed = torch.where((n_crossed > 1)[:, None], best, crossed)
            n_crossed = crossed.sum(1)
        self.v = torch.where(crossed, exc["reset"], v)
        self.refrac = torch.where(crossed, exc["refrac"], self.refrac)
        spiked = crossed
        if one_spike == ONE_SPIKE_BINDSNET:
            several = n_crossed > 1
            u = uniform(rng, several)
            pick = (u * n_crossed.double()).floor().long()
            order = crossed.cumsum(1, dtype=torch.int32) - 1
            spiked = torch.where(several[:, None], crossed & (order == pick[:, None]), crossed)
        self.spiked = spiked
        self.emitted = self._emitted()
        return crossed

    def _lif_step(self) -> None:
        """``kernels.neurons.lif_step`` of the inhibitory layer, on every neuron: one that
        has had no input stays at rest, as the kernel leaves it."""
        inh = self.inh
        v = (self.inh_v - inh["rest"]) * inh["decay"] + inh["rest"]
        v = torch.where(self.inh_refrac <= 0, v + self.inh_current, v)
        fired = v >= inh["thresh"]
        self.inh_refrac = torch.where(fired, inh["refrac"], self.inh_refrac - inh["dt"])
        self.inh_v = torch.where(fired, inh["reset"], v)
        self.inh_spiked = fired

    def _post_pre(self, now: torch.Tensor, t: int) -> None:
        """``kernels.stdp.post_pre_update`` of a batch of one per lane: the rows of the inputs
        that spike now lose ``nu_pre * x_post``, the columns of the neurons that spike gain
        ``nu_post * x_pre``, and what changed is clipped to [wmin, wmax]: each touched weight
        becomes ``clip(w - depression + potentiation)``, as in the kernel. Only those rows and
        columns are gathered and written back. At the first step the whole matrix is clipped
        instead, after the update (``clamp_columns``: a flagged column that this changes needs
        normalizing; the other columns are within bounds, where clipping changes nothing)."""
        stdp, w = self.stdp, self.weights
        low, high = stdp["wmin"][:, :, None], stdp["wmax"][:, :, None]
        first = t == 0

        def clipped(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
            return values if first else torch.where(where[:, None, None], values.clamp(low, high), values)

        rows, has_rows = scatter_index(now)
        rows = rows[:, :, None].expand(-1, -1, w.shape[2])
        gathered = w.gather(1, rows)
        depressed = torch.where(has_rows[:, None, None], gathered - (stdp["nu_pre"] * self.post_trace)[:, None, :],
                                gathered)
        # every step, spike or not: asking whether any neuron spiked would make the host wait for the device
        w.scatter_(1, rows, depressed)
        columns, has_columns = scatter_index(self.emitted)
        columns = columns[:, None, :].expand(-1, w.shape[1], -1)
        last = self.last_spike[:, :-1]
        seen = last >= 0
        gain = torch.where(seen, self.decay_powers.gather(1, t - last) * stdp["nu_post"], 0.0)[:, :, None]
        gathered = w.gather(2, columns)
        w.scatter_(2, columns, clipped(torch.where(has_columns[:, None, None], gathered + gain, gathered),
                                       has_columns))
        depressed = w.gather(1, rows)
        w.scatter_(1, rows, clipped(depressed, has_rows))
        if first:
            bounded = torch.minimum(torch.maximum(w, low), high)
            changed = (bounded != w).any(1)
            needs_clamp, needs_norm = self.many.needs_clamp, self.many.needs_norm
            clamp = (self.flags & needs_clamp) != 0
            self.flags = torch.where(clamp & changed, self.flags | needs_norm, self.flags) & ~needs_clamp
            w.copy_(bounded)

    def _normalize(self) -> None:
        """``kernels.stdp.normalize_columns`` of the flagged columns and those that spiked."""
        flags = torch.where(self.active, self.flags | self.many.needs_norm, self.flags)
        changed = (flags & self.many.needs_norm) != 0
        w = self.weights
        sums = sequential_sum(w if self.two_layer else w.abs(), 1)
        scales = (1.0 / torch.where(sums != 0, sums, 1.0)) * self.stdp["norm"]
        self.weights = torch.where(changed[:, None, :], w * scales[:, None, :], w)
        self.flags = torch.where(changed, self.many.needs_clamp, flags).to(torch.uint8)

    def write_back(self) -> None:
        many, networks = self.many, self.networks
        if self.all_networks:
            many.weights, many.theta, many.flags = self.weights, self.theta, self.flags
        else:
            many.weights[networks] = self.weights
            many.theta[networks] = self.theta
            many.flags[networks] = self.flags
