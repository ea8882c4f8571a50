"""Cost and accuracy of the linear readout: one fit on counts, one scoring, the MNIST pixel baseline.

    python bench/readout.py                          # all three
    python bench/readout.py --data-dir DIR           # MNIST IDX files under DIR/MNIST/raw
    python bench/readout.py counts                   # only the 10,000 x 400 counts fit

`counts`: one fit (C chosen by cross-validation) on 10,000 x 400 Poisson counts of 10
classes, each class driving its own 40 neurons harder. `score`: the ScoreReport, with
1,000 bootstrap resamples, of 10,000 images of 10 classes. `pixels`: the pixel baseline
(standardized pixels, logistic regression) fitted on MNIST's 60,000 training images and
scored on its 10,000 test images; `--max-train N` fits it, as `snnctl train` does, on a
seeded, class-stratified sample of N of them (readout_max_train, default 10,000; 0: all).
Prints wall and CPU seconds: on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnctl import config as cfg  # noqa: E402
from snnctl import data  # noqa: E402
from snnctl.readout import LinearReadout, metrics  # noqa: E402
from snnctl.service import readouts  # noqa: E402


class Timer:
    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU"


def poisson_counts(n: int, n_neurons: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    rates = rng.gamma(1.0, 1.0, (n_classes, n_neurons))
    rates[np.arange(n_classes).repeat(n_neurons // n_classes), np.arange(n_neurons)] += 3
    return rng.poisson(rates[labels]), labels


def counts() -> None:
    features, labels = poisson_counts(10_000, 400, 10, seed=0)
    with Timer() as timer:
        readout = LinearReadout.fit(features, labels, 10, balanced=False, seed=0)
    print(f"counts 10,000 x 400: fit {timer}, C = {readout.C}")


def score() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 10_000)
    scores = rng.random((10_000, 10)) + 0.3 * np.eye(10)[labels]
    with Timer() as timer:
        metrics.score(scores.argmax(1), labels, scores / scores.sum(1, keepdims=True), list("0123456789"), seed=0)
    print(f"score 10,000 images x 10 classes, 1,000 resamples: {timer}")


def pixels(data_dir: Path, max_train: int) -> None:
    config = cfg.Config(data_dir=str(data_dir), readout_max_train=max_train or None)
    splits = data.load_splits(config, lambda notice: print(notice, file=sys.stderr))
    test = splits.test
    train = splits.train.subset(readouts.fit_rows(splits.train.labels, config))
    with Timer() as timer:  # as train and evaluate fit it
        baseline = readouts.fit_baseline(train.images, train.labels, config, len(train.class_names))
    predictions, probabilities = readouts.linear_outputs(baseline, test.images)
    report = metrics.score(predictions, test.labels.numpy(), probabilities, test.class_names, seed=0)
    low, high = report.intervals["accuracy"]
    print(f"pixel baseline, {len(train.labels)} training images ({splits.origin}): fit {timer}, C = {baseline.C}; "
          f"test accuracy {report.accuracy:.4f} [{low:.4f}, {high:.4f}], balanced {report.balanced_accuracy:.4f}, "
          f"AUC {report.auc:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help="counts, score or pixels (default: all three)")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with MNIST/raw IDX files (default ../shared/data)")
    parser.add_argument("--max-train", type=int, default=cfg.Config().readout_max_train,
                        help="pixels: fit on at most this many training images (0: all 60,000)")
    args = parser.parse_args()
    parts = {"counts": counts, "score": score, "pixels": lambda: pixels(args.data_dir, args.max_train)}
    unknown = set(args.parts) - set(parts)
    if unknown:
        parser.error(f"unknown part {', '.join(sorted(unknown))}; choose from {', '.join(parts)}")
    for name in args.parts or parts:
        parts[name]()


if __name__ == "__main__":
    main()
