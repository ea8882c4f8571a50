"""Scores fit for small, unbalanced test sets, with their uncertainty.

Every command that classifies images reports the same ``ScoreReport`` (``score``):

* accuracy, balanced accuracy (the mean of the per-class recalls, Brodersen et al. 2010)
  and each class's recall; an image without a prediction (-1, no neuron voted) is wrong;
* ROC AUC: the probability that a random image of a class gets a higher score for that
  class than a random image of another class (Mann-Whitney U / (n_pos n_neg), ties
  count half); one-vs-rest and averaged over the classes (macro) for more than two
  classes, the positive (second) class's score for two (Hanley & McNeil 1982);
* for two classes, sensitivity (recall of the positive, second class) and specificity
  (recall of the negative, first class);
* a percentile bootstrap interval (Efron & Tibshirani 1993) of accuracy, balanced
  accuracy and AUC: the test images are resampled with replacement within each class,
  so every resample keeps the test split's class sizes and a rare class never vanishes.

Predictions, labels and scores are numpy arrays or CPU tensors. Argument order follows
``snnctl.labels``: what was predicted first, the true labels second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

N_RESAMPLES = 1000
LEVEL = 0.95


def vote_shares(scores) -> np.ndarray:
    """The vote's class scores [n, classes] as shares of each image's total, the class
    scores its AUC is computed from; an image no neuron voted for gets equal shares."""
    scores = np.asarray(scores, dtype=np.float64)
    total = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / scores.shape[1])
    return np.divide(scores, total, out=uniform, where=total > 0)


def class_recalls(predictions, labels, n_classes: int) -> list[float | None]:
    """Share of each class's images predicted as that class; None for a class with no images."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return [float((predictions[labels == c] == c).mean()) if (labels == c).any() else None
            for c in range(n_classes)]


def accuracy(predictions, labels) -> float:
    return float((np.asarray(predictions) == np.asarray(labels)).mean())


def balanced_accuracy(predictions, labels) -> float:
    """Mean recall over the classes present in ``labels``."""
    labels = np.asarray(labels)
    recalls = class_recalls(predictions, labels, int(labels.max()) + 1)
    return float(np.mean([r for r in recalls if r is not None]))


def sensitivity_specificity(predictions, labels, positive: int = 1) -> tuple[float, float]:
    """Recall of the ``positive`` class and recall of all other images (as not positive
    and not without a prediction) -- TP / (TP + FN) and TN / (TN + FP) for two classes."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    actual = labels == positive
    if actual.all() or not actual.any():
        raise ValueError("sensitivity and specificity need images of both classes")
    sensitivity = (predictions[actual] == positive).mean()
    specificity = ((predictions[~actual] != positive) & (predictions[~actual] >= 0)).mean()
    return float(sensitivity), float(specificity)


def roc_auc(scores, labels) -> float | None:
    """ROC AUC of class ``scores`` [n, classes]: one-vs-rest macro average over the
    classes present in ``labels`` (as scikit-learn's ``multi_class="ovr"``), or the
    second class's AUC for two classes; None when ``labels`` hold a single class."""
    from scipy.stats import rankdata

    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    classes = [1] if scores.shape[1] == 2 else range(scores.shape[1])
    areas = []
    for c in classes:
        positive = labels == c
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(scores[:, c])
        areas.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(areas)) if areas else None


def bootstrap_interval(metric: Callable[[np.ndarray, np.ndarray], float | None], outputs, labels, *,
                       seed: int, n_resamples: int = N_RESAMPLES,
                       level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``metric(outputs, labels)`` at ``level``.

    Each of ``n_resamples`` resamples draws, within each class, as many images as the
    class has, with replacement (seeded by ``seed``). Resamples where the metric is
    undefined (None) are left out; None when all are.
    """
    outputs, labels = np.asarray(outputs), np.asarray(labels)
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        rows = np.concatenate([rng.choice(m, size=len(m)) for m in members])
        value = metric(outputs[rows], labels[rows])
        if value is not None:
            values.append(value)
    if not values:
        return None
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class ScoreReport:
    """The scores of one set of predictions; ``as_dict()`` is what --json prints."""

    n_images: int
    accuracy: float
    balanced_accuracy: float
    recall: dict[str, float | None]  # class name -> recall; None: no image of the class
    auc: float | None  # None: a single class in the test images
    sensitivity: float | None  # two classes only
    specificity: float | None
    intervals: dict[str, tuple[float, float] | None]  # accuracy, balanced_accuracy, auc
    level: float
    n_resamples: int

    def as_dict(self) -> dict:
        return asdict(self)


def score(predictions, labels, class_scores, class_names: Sequence[str], *, seed: int,
          n_resamples: int = N_RESAMPLES, level: float = LEVEL) -> ScoreReport:
    """All scores of ``predictions`` [n] (-1: none) against ``labels`` [n], with the
    AUC from ``class_scores`` [n, classes] (the linear readout's probabilities, or
    ``vote_shares`` of the vote's scores) and bootstrap intervals seeded by ``seed``."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    class_scores = np.asarray(class_scores, dtype=np.float64)
    if not len(labels):
        raise ValueError("no images to score")
    two_classes = len(class_names) == 2 and len(np.unique(labels)) == 2
    sensitivity, specificity = sensitivity_specificity(predictions, labels) if two_classes else (None, None)
    # every interval resamples the same images: one row index serves predictions and scores
    rows = np.arange(len(labels))

    def interval(metric: Callable[[np.ndarray, np.ndarray], float | None]) -> tuple[float, float] | None:
        return bootstrap_interval(metric, rows, labels,
                                  seed=seed, n_resamples=n_resamples, level=level)

    return ScoreReport(
        n_images=len(labels),
        accuracy=accuracy(predictions, labels),
        balanced_accuracy=balanced_accuracy(predictions, labels),
        recall=dict(zip(class_names, class_recalls(predictions, labels, len(class_names)))),
        auc=roc_auc(class_scores, labels),
        sensitivity=sensitivity,
        specificity=specificity,
        intervals={
            "accuracy": interval(lambda rows, truth: accuracy(predictions[rows], truth)),
            "balanced_accuracy": interval(lambda rows, truth: balanced_accuracy(predictions[rows], truth)),
            "auc": interval(lambda rows, truth: roc_auc(class_scores[rows], truth)),
        },
        level=level,
        n_resamples=n_resamples,
    )
