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

``--neighbours`` prints instead the k-nearest-neighbour classifier with every fitted
image a prototype (cosine similarity on the same unit-length rows; k = 1, 3, 5 and 10, a
tie going to the class of the nearest of the tied images): what a nearest-prototype vote
approaches as its prototypes grow to the whole training set, a ceiling for a layer of
``n_neurons``. With ``--keep N`` its prototypes are N of the fitted images drawn at random
(the file's seed, every class as it comes): how many labelled images a vote needs to be
as good as the layer's vote over ``n_neurons`` prototypes learned without labels.

    python bench/prototypes.py parameters/fashion-6400.yaml --neighbours --keep 6400 --keep 12800
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


NEIGHBOURS = (1, 3, 5, 10)


def neighbour_accuracies(fit: np.ndarray, fit_labels: np.ndarray, held: np.ndarray, held_labels: np.ndarray,
                         n_classes: int, ks: tuple[int, ...] = NEIGHBOURS, chunk: int = 1000) -> dict[int, float]:
    """Accuracy on ``held`` of the majority class of its ``k`` most similar rows of ``fit``
    (cosine: all rows of unit length), for each ``k`` of ``ks``; a tie goes to the class of
    the most similar row among the tied classes."""
    largest = min(max(ks), len(fit))
    correct = dict.fromkeys(ks, 0)
    for start in range(0, len(held), chunk):
        similarity = held[start:start + chunk] @ fit.T
        nearest = np.argpartition(-similarity, largest - 1, axis=1)[:, :largest]
        by_similarity = np.argsort(-np.take_along_axis(similarity, nearest, axis=1), axis=1, kind="stable")
        classes = fit_labels[np.take_along_axis(nearest, by_similarity, axis=1)]  # [chunk, largest], nearest first
        rows = np.arange(len(classes))[:, None]
        for k in ks:
            votes = np.zeros((len(classes), n_classes))
            # one vote each, plus 2**-(rank+1), under 1 in all: a tie goes to the class of the nearer row
            np.add.at(votes, (rows, classes[:, :k]), 1.0 + 0.5 ** np.arange(1, k + 1))
            correct[k] += int((votes.argmax(axis=1) == held_labels[start:start + chunk]).sum())
    return {k: correct[k] / len(held) for k in ks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parameters", type=Path, nargs="+", help="parameter files (n_neurons, task, data, seed)")
    parser.add_argument("--validation", type=int, default=10000, help="training images held out (default 10,000)")
    parser.add_argument("--data-dir", help="the task's data (default: each file's data_dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter of every file, as snnctl train --set")
    parser.add_argument("--keep", type=int, action="append", default=[], metavar="N",
                        help="with --neighbours: N fitted images drawn at random as the prototypes "
                             "(repeat for several N; default: all)")
    parser.add_argument("--neighbours", action="store_true",
                        help="the k-nearest-neighbour classifier on every fitted image instead of k-means")
    args = parser.parse_args()
    if args.keep and not args.neighbours:
        parser.error("--keep draws the prototypes of --neighbours; give --neighbours too")
    if any(kept < 1 for kept in args.keep):
        parser.error(f"--keep {min(args.keep)}: at least one image")
    overrides = args.overrides + ([f"data_dir={args.data_dir}"] if args.data_dir else [])
    reference = (f"{'-NN / '.join(map(str, NEIGHBOURS))}-NN accuracy" if args.neighbours
                 else "k-means accuracy")
    print(f"| parameters | {'neurons' if args.neighbours else 'centroids'} | fitted | validated | {reference} | seconds |")
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
        fit_labels, held_labels = splits.train.labels.numpy(), splits.test.labels.numpy()
        def print_row(fitted: int, shown: str) -> None:
            print(f"| {path} | {config.n_neurons:,} | {fitted:,} | {len(held):,} | {shown} | "
                  f"{time.perf_counter() - started:.0f} |", flush=True)

        if not args.neighbours:
            accuracy = kmeans_accuracy(fit, fit_labels, held, held_labels, config.n_neurons, config.n_classes,
                                       config.seed)
            print_row(len(fit), f"{accuracy:.2%}")
            continue
        for kept in args.keep or [len(fit)]:
            if kept > len(fit):
                sys.exit(f"error: --keep {kept}: between 1 and the {len(fit):,} fitted images of {path}")
            chosen = np.random.default_rng(config.seed).choice(len(fit), kept, replace=False)
            accuracies = neighbour_accuracies(fit[chosen], fit_labels[chosen], held, held_labels, config.n_classes)
            print_row(kept, " / ".join(f"{accuracy:.2%}" for accuracy in accuracies.values()))


if __name__ == "__main__":
    main()
