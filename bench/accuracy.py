"""Accuracy of the shipped parameter files over seeds: train, label on the training images, test.

    python bench/accuracy.py                        # every configuration below, one seed
    python bench/accuracy.py 100 400 --seeds 3      # each row: mean +- sd over 3 seeds
    python bench/accuracy.py 400 --data-dir ../shared/data
    python bench/accuracy.py 100 --seeds 3 --parallel   # the seeds side by side, one process each
    python bench/accuracy.py --quick --seeds 2      # tiny runs on the subset: checks the script works

`subset` is `make demo` (parameters/mnist.yaml on the bundled 5,000-image subset); the
MNIST rows train on full MNIST (IDX files in DATA_DIR or DATA_DIR/MNIST/raw) and test on
its 10,000 test images; the fashion rows on Fashion-MNIST (--fashion-dir, where the Debian
package dataset-fashion-mnist installs it by default). Seed k of a row is the parameter
file's seed + k (k = 0 .. N-1). Prints one table row per configuration, as it finishes:
both votes, the linear readout (on the features the row's readout_features names, e.g.
`--set readout_features=drive`) and the pixel baseline (both fitted on readout_max_train
training images) on the same test images, as mean +- standard deviation over the seeds (and
the vote with proportion weighting of each seed, in seed order, so that a mean at a target
shows whether every seed reaches it); the minutes
of one run (mean) and the wall time of the whole row, and the training rate. Nothing here chooses a
setting: the test images are only scored (settings are chosen by `snnctl sweep` on a
validation split, docs/accuracy.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnctl import config as cfg  # noqa: E402
from snnctl import service  # noqa: E402

# name: (parameter file, which data: None = the bundled subset, "mnist", "fashion")
CONFIGURATIONS = {
    "subset": ("mnist.yaml", None),
    "100": ("mnist-100.yaml", "mnist"),
    "400": ("mnist-400.yaml", "mnist"),
    "1600": ("mnist-1600.yaml", "mnist"),
    "6400": ("mnist-6400.yaml", "mnist"),
    "fashion-400": ("fashion-400.yaml", "fashion"),
    "fashion-1600": ("fashion-1600.yaml", "fashion"),
    "fashion-6400": ("fashion-6400.yaml", "fashion"),
}
# torch threads of every run, in this process and in each --parallel worker (spawned fresh)
TORCH_THREADS = 2
# --quick: the subset row with a tiny network on a few hundred images (seconds a run).
QUICK = ["n_neurons=16", "time=40", "epochs=1", "n_train=200", "n_test=100", "readout_max_train=200", "update_interval=50"]
COLUMNS = ("configuration", "neurons", "seeds", "images seen", "all activity", "proportion weighting",
           "proportion weighting by seed", "linear readout", "pixel baseline", "minutes a run", "minutes in all",
           "images/s")


@dataclass
class Run:
    """What one seed's run of a row measured."""

    samples_seen: int
    all_activity: float
    proportion_weighting: float
    linear: float | None
    baseline: float | None
    minutes: float
    images_per_second: float


def run_once(config: cfg.Config) -> Run:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = service.train(config, out=Path(out) / "run", notice=lambda message: None)
    minutes = (time.perf_counter() - started) / 60
    scores = result.scores
    return Run(result.samples_seen, result.test_accuracy.all_activity, result.test_accuracy.proportion_weighting,
               _accuracy(scores.linear if scores else None), _accuracy(scores.baseline if scores else None),
               minutes, result.samples_per_second)


def _accuracy(report) -> float | None:
    return report.accuracy if report is not None else None


def mean_sd(values: list[float | None], percent: bool = True) -> str:
    """``mean +- sd`` of the seeds' values (sd: the sample standard deviation; one seed: the value)."""
    if any(value is None for value in values):
        return "n/a"
    scale, unit = (100.0, "%") if percent else (1.0, "")
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:.2f}{unit}"
    return f"{mean:.2f} ± {statistics.stdev(values) * scale:.2f}{unit}"


def row(name: str, data_dirs: dict[str | None, Path], seeds: int, extra: list[str], parallel: bool) -> list[str]:
    """Train the row's parameter file once per seed (side by side with ``parallel``); its table row."""
    params, data = CONFIGURATIONS[name]
    data_dir = data_dirs[data] if data else Path(tempfile.mkdtemp())  # an empty folder: the subset
    config = cfg.load(ROOT / "parameters" / params, [f"data_dir={data_dir}", *extra])
    configs = [config.replace(seed=config.seed + k) for k in range(seeds)]
    started = time.perf_counter()
    if parallel:
        with multiprocessing.get_context("spawn").Pool(seeds, torch.set_num_threads, (TORCH_THREADS,)) as pool:
            runs = pool.map(run_once, configs)
    else:
        runs = [run_once(one) for one in configs]
    return [f"{name} ({params})", f"{config.n_neurons:,}", str(seeds), f"{runs[0].samples_seen:,}",
            mean_sd([r.all_activity for r in runs]), mean_sd([r.proportion_weighting for r in runs]),
            " / ".join(f"{r.proportion_weighting * 100:.2f}%" for r in runs),
            f"{mean_sd([r.linear for r in runs])} ({config.readout_features})", mean_sd([r.baseline for r in runs]),
            f"{statistics.fmean(r.minutes for r in runs):.1f}", f"{(time.perf_counter() - started) / 60:.1f}",
            f"{statistics.fmean(r.images_per_second for r in runs):,.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"configurations: {', '.join(CONFIGURATIONS)} (default: every one; with --quick: subset)")
    parser.add_argument("--seeds", type=int, default=1, help="runs per row, on seeds seed, seed+1, ... (default 1)")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with the MNIST IDX files, in it or in its MNIST/raw (default ../shared/data)")
    parser.add_argument("--fashion-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                        help="folder with the Fashion-MNIST IDX files (default: the Debian package's)")
    parser.add_argument("--parallel", action="store_true",
                        help="run a row's seeds side by side, one process each (minutes a run then include the sharing)")
    parser.add_argument("--quick", action="store_true", help="tiny networks on a few hundred subset images")
    parser.add_argument("--set", action="append", default=[], help="extra KEY=VALUE for every run")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    unknown = [name for name in args.names if name not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r} (choose from {', '.join(CONFIGURATIONS)})")
    names = args.names or (["subset"] if args.quick else list(CONFIGURATIONS))
    extra = (QUICK if args.quick else []) + args.set
    torch.set_num_threads(TORCH_THREADS)
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    data_dirs = {"mnist": args.data_dir, "fashion": args.fashion_dir}
    for name in names:
        print("| " + " | ".join(row(name, data_dirs, args.seeds, extra, args.parallel)) + " |", flush=True)


if __name__ == "__main__":
    main()
