"""Accuracy of the shipped parameter files: train, label on the training images, test.

    python bench/accuracy.py                        # every configuration below
    python bench/accuracy.py subset 100             # some of them
    python bench/accuracy.py 400 --data-dir ../shared/data

`subset` is `make demo` (parameters/mnist.yaml on the bundled 5,000-image subset); the
others train on full MNIST (IDX files under DATA_DIR/MNIST/raw) and test on its 10,000
test images. Prints one table row per configuration, as it finishes: both votes, the
linear readout and the pixel baseline (fitted on readout_max_train training images) on
the same test images, and the readout's and baseline's fitting seconds within the minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnctl import config as cfg  # noqa: E402
from snnctl import service  # noqa: E402

CONFIGURATIONS = {
    "subset": ("mnist.yaml", None),
    "100": ("mnist-100.yaml", "full"),
    "400": ("mnist-400.yaml", "full"),
    "1600": ("mnist-1600.yaml", "full"),
    "6400": ("mnist-6400.yaml", "full"),
}
COLUMNS = ("configuration", "neurons", "images seen", "all activity", "proportion weighting", "linear readout",
           "pixel baseline", "minutes", "images/s")


def run(name: str, data_dir: Path, extra: list[str]) -> list[str]:
    params, data = CONFIGURATIONS[name]
    overrides = [f"data_dir={data_dir}" if data else f"data_dir={tempfile.mkdtemp()}", *extra]
    config = cfg.load(ROOT / "parameters" / params, overrides)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = service.train(config, out=Path(out) / "run", notice=lambda message: None)
    minutes = (time.perf_counter() - started) / 60
    return [f"{name} ({params})", str(config.n_neurons), str(result.samples_seen),
            f"{result.test_accuracy.all_activity:.2%}", f"{result.test_accuracy.proportion_weighting:.2%}",
            _accuracy(result.scores.linear), _accuracy(result.scores.baseline), f"{minutes:.1f}", f"{result.samples_per_second:.0f}"]


def _accuracy(report) -> str:
    return f"{report.accuracy:.2%}" if report is not None else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS))
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with MNIST/raw IDX files (default ../shared/data)")
    parser.add_argument("--set", action="append", default=[], help="extra KEY=VALUE for every run")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for name in args.names:
        print("| " + " | ".join(run(name, args.data_dir, args.set)) + " |", flush=True)


if __name__ == "__main__":
    main()
