"""The vote's reference: k-means with as many centroids as the layer has neurons.

    python bench/prototypes.py parameters/mnist-100.yaml parameters/mnist-400.yaml --data-dir ../shared/data
    python bench/prototypes.py parameters/fashion-400.yaml --validation 10000
    python bench/prototypes.py parameters/mnist.yaml --set n_train=1000 --validation 200   # the bundled subset

With the ``winner`` rule about one neuron spikes for an image, the one whose learned
field its input drives hardest, and the vote names that neuron's class: the layer is a
nearest-prototype classifier with ``n_neurons`` prototypes learned without labels. The
classic such classifier is k-means (Lloyd 1982; Coates and Ng 2011 for features), so this
script puts the vote beside it on the same images: scikit-learn's ``KMeans`` with
``n_neurons`` centroids on each parameter file's training images less the validation
split its sweeps score on (``snnctl.service.validation``: ``--validation`` images, drawn
with the file's seed, as ``snnctl sweep`` draws them), every image scaled to unit length
first (the drive is a dot product, so a neuron matches the direction of an image, not its
ink); each centroid is labelled with the class most of its images have, and a validation
image gets the label of its nearest centroid. The test images are never read.

Prints one row per parameter file: the centroids, the images fitted and validated, the
validation accuracy, seconds. Compare with the vote of the sweep's trial of the same file
(docs/accuracy.md, "The vote against k-means").
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
from snnctl.errors import ConfigError  # noqa: E402
from snnctl.service.validation import Validation, validation_splits  # noqa: E402


def unit_rows(images: "np.ndarray") -> np.ndarray:
    """Images [n, ...] as float32 rows [n, pixels] of length 1 (a blank image stays zero)."""
    rows = images.reshape(len(images), -1).astype(np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def majority_labels(clusters: np.ndarray, labels: np.ndarray, n_clusters: int, n_classes: int) -> np.ndarray:
    """Each cluster's most frequent class among its members (-1 for a cluster with none)."""
    counts = np.zeros((n_clusters, n_classes), np.int64)
    np.add.at(counts, (clusters, labels), 1)
    return np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)


def kmeans_accuracy(fit: np.ndarray, fit_labels: np.ndarray, held: np.ndarray, held_labels: np.ndarray,
                    n_clusters: int, n_classes: int, seed: int) -> float:
    """Accuracy on ``held`` of k-means with ``n_clusters`` centroids fitted on ``fit``, each
    centroid labelled by its members' majority (all rows already of unit length)."""
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters, n_init=1, random_state=seed).fit(fit)
    named = majority_labels(model.labels_, fit_labels, n_clusters, n_classes)
    return float((named[model.predict(held)] == held_labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parameters", type=Path, nargs="+", help="parameter files (n_neurons, task, data, seed)")
    parser.add_argument("--validation", type=int, default=10000, help="training images held out (default 10,000)")
    parser.add_argument("--data-dir", help="the task's data (default: each file's data_dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter of every file, as snnctl train --set")
    args = parser.parse_args()
    overrides = args.overrides + ([f"data_dir={args.data_dir}"] if args.data_dir else [])
    print("| parameters | centroids | fitted | validated | k-means accuracy | seconds |")
    print("|---|---|---|---|---|---|")
    for path in args.parameters:
        try:
            config = cfg.load(path, overrides)
            if config.patch_size:
                raise ConfigError(f"{path}: patch_size {config.patch_size}: the neurons see windows, "
                                  f"not whole images; this reference is for whole-image fields")
            splits = validation_splits(config, Validation(args.validation, config.seed))
        except ConfigError as error:
            sys.exit(f"error: {error}")
        started = time.perf_counter()
        # the loaders hand the images over encoded (on-off, windowed): the network's input
        fit, held = (unit_rows(split.images.numpy()) for split in (splits.train, splits.test))
        accuracy = kmeans_accuracy(fit, splits.train.labels.numpy(), held, splits.test.labels.numpy(),
                                   config.n_neurons, config.n_classes, config.seed)
        print(f"| {path} | {config.n_neurons:,} | {len(fit):,} | {len(held):,} | {accuracy:.2%} | "
              f"{time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
