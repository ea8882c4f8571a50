"""Accuracy of an exported NIR graph run by the NIR tools themselves (Norse, snnTorch)
beside snnctl, on the same Poisson input spikes, learning off, the exported assignments voting.

    python bench/nir_check.py CKPT [--n 1000] [--batch 100]

Each consumer gets the graph that ``snnctl export --format nir`` writes with its preset
(docs/export.md): Norse the defaults, snnTorch ``NIR_PRESETS["snntorch"]``. Every image is
presented as snnctl's evaluation presents it: Diehl & Cook's rule presents an image that
makes fewer than ``min_spikes`` spikes again, brighter. Prints one row per simulator.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnctl import checkpoint as ckpt  # noqa: E402
from snnctl import data, export, seeds  # noqa: E402
from snnctl.readout import vote  # noqa: E402
from snnctl import engine as engines  # noqa: E402
from snnctl.config import Config  # noqa: E402

Step = Callable[[torch.Tensor], torch.Tensor]  # one time step: input spikes [batch, n_in] -> output spikes


def norse_runner(graph) -> Callable[[], Step]:
    """``norse.torch.from_nir`` with its defaults; a fresh state per presentation."""
    import norse.torch

    model = norse.torch.from_nir(graph)

    def start() -> Step:
        state = None

        def step(x: torch.Tensor) -> torch.Tensor:
            nonlocal state
            y, state = model(x, state)
            return y
        return step
    return start


def snntorch_runner(graph) -> Callable[[], Step]:
    """``snntorch.import_nir.import_from_nir``; its neurons keep their state inside, reset per presentation."""
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight scaling for every layer
        model = import_from_nir(graph)

    def start() -> Step:
        snntorch.utils.reset(model)
        state = None

        def step(x: torch.Tensor) -> torch.Tensor:
            nonlocal state
            y, state = model(x) if state is None else model(x, state)
            return y
        return step
    return start


CONSUMERS = {"norse": (norse_runner, "norse"), "snntorch": (snntorch_runner, "snntorch")}


def poisson(config: Config, images: torch.Tensor, seed: int, intensity: float | None) -> torch.Tensor:
    """Input spikes [steps, batch, n_inputs] of ``images`` as snnctl's engines rate them."""
    return engines.encode(config, images.float() * engines.rate_per_unit(config, images, intensity), seed)


@dataclass
class Counts:
    counts: torch.Tensor  # [batch, n]: what ``present_with_retries`` reads of a presentation


@dataclass
class GraphEngine:
    """A consumer's model behind the engine interface that ``engines.present_with_retries`` uses."""

    config: Config
    start: Callable[[], Step]

    def present(self, images: torch.Tensor, learn: bool, seed: int, intensity: float | None = None):
        spikes = poisson(self.config, images, seed, intensity).float()
        step = self.start()
        with torch.no_grad():
            counts = sum(step(x) for x in spikes)
        return Counts(counts.to(torch.int32))


@dataclass
class SnnctlEngine:
    """snnctl's engine fed the same Poisson spikes as the consumers."""

    config: Config
    engine: engines.Engine

    def present(self, images: torch.Tensor, learn: bool, seed: int, intensity: float | None = None):
        spikes = poisson(self.config, images, seed, intensity)
        return Counts(self.engine.present_spikes(spikes, learn=False, record=True).spikes.sum(0))


def accuracy(stored: ckpt.Checkpoint, engine: GraphEngine | SnnctlEngine | engines.Engine, images: torch.Tensor, targets: torch.Tensor, batch: int) -> tuple[float, float]:
    """All-activity accuracy of the exported assignments, and excitatory spikes per image."""
    config = stored.config
    counts = torch.cat([
        engines.present_with_retries(engine, config, images[start:start + batch], False,
                                      seeds.presentation_seed(config.seed, "test", start))
        for start in range(0, len(images), batch)])
    votes = vote.vote(counts, stored.labels, len(stored.class_names), config.reduction)
    return vote.accuracy(votes.all_activity, targets), float(counts.sum(1).float().mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--n", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--batch", type=int, default=100, help="images presented at once")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    stored = ckpt.load(args.checkpoint)
    config = stored.config.replace(one_spike="off")
    stored.config = config
    test = data.load_splits(config, lambda message: None).test
    test = data.limit(test, args.n, seeds.subset_seed(config.seed, "test"))  # the images `evaluate --n` takes
    engine = engines.make_engine(config, stored.tensors.clone())
    # snnctl's engine drawing its own Poisson spikes, image by image: `snnctl evaluate --n N`
    simulators = {"snnctl evaluate": (engine, config.batch_size),
               "snnctl": (SnnctlEngine(config, engine), args.batch)}
    for name, (runner, preset) in CONSUMERS.items():
        simulators[name] = (GraphEngine(config, runner(export.nir_graph(stored, export.NIR_PRESETS[preset]))), args.batch)
    print(f"{args.checkpoint}: {len(test)} test images, Poisson input, learning off, one_spike off")
    print(f"{'simulator':<16} {'accuracy':>9} {'spikes/image':>13}")
    for name, (simulator, batch) in simulators.items():
        value, rate = accuracy(stored, simulator, test.images, test.labels, batch)
        print(f"{name:<16} {100 * value:8.1f}% {rate:13.1f}", flush=True)


if __name__ == "__main__":
    main()
