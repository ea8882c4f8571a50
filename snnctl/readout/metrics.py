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
  A resample is a row of weights (how often each image was drawn), and the metrics take
  such rows, so that a thousand resamples of 10,000 images cost one sort per class.

Predictions, labels and scores are numpy arrays or CPU tensors. Argument order follows
``snnctl.readout.vote``: what was predicted first, the true labels second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

N_RESAMPLES = 1000
LEVEL = 0.95
# resamples drawn and scored together: [100, n] weights stay a few MB for 10,000 images
RESAMPLES_AT_ONCE = 100


def vote_shares(scores) -> np.ndarray:
    """The vote's class scores [n, classes] as shares of each image's total, the class
    scores its AUC is computed from; an image no neuron voted for gets equal shares."""
    scores = np.asarray(scores, dtype=np.float64)
    total = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / scores.shape[1])
    return np.divide(scores, total, out=uniform, where=total > 0)


def class_recalls(predictions, labels, n_classes: int) -> list[float | None]:
    """Share of each class's images predicted as that class (-1, no prediction, is
    missed); None for a class with no images. The one definition of recall."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return [float((predictions[labels == c] == c).mean()) if (labels == c).any() else None
            for c in range(n_classes)]


def accuracy(predictions, labels, weights: np.ndarray | None = None) -> float | np.ndarray:
    """Share of images predicted right (-1, no prediction, is wrong); NaN for no images,
    of which no share is right or wrong. The one definition every command reports."""
    correct = (np.asarray(predictions) == np.asarray(labels)).astype(np.float64)
    if not len(correct):
        return float("nan") if weights is None else np.full(len(weights), np.nan)
    return _per_resample(weights, len(correct), lambda w: w @ correct / w.sum(axis=1))


def balanced_accuracy(predictions, labels, weights: np.ndarray | None = None) -> float | np.ndarray:
    """Mean recall over the classes present in ``labels``."""
    labels = np.asarray(labels)
    correct = (np.asarray(predictions) == labels).astype(np.float64)
    members = [labels == c for c in np.unique(labels)]

    def mean_recall(w: np.ndarray) -> np.ndarray:
        return np.mean([w[:, m] @ correct[m] / w[:, m].sum(axis=1) for m in members], axis=0)

    return _per_resample(weights, len(labels), mean_recall)


def roc_auc(scores, labels, weights: np.ndarray | None = None) -> float | np.ndarray | None:
    """ROC AUC of class ``scores`` [n, classes]: one-vs-rest macro average over the
    classes present in ``labels`` (as scikit-learn's ``multi_class="ovr"``), or the
    second class's AUC for two classes; None when ``labels`` hold a single class."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    defined = auc_classes(labels, scores.shape[1])

    def macro(w: np.ndarray) -> np.ndarray | None:
        image_weights = np.ascontiguousarray(w.T, dtype=np.float64)  # [n, resamples]: one image's draws together
        areas = [_weighted_auc(scores[:, c], labels == c, image_weights) for c in defined]
        return np.mean(areas, axis=0) if areas else None

    return _per_resample(weights, len(labels), macro)


def auc_classes(labels, n_classes: int) -> list[int]:
    """The classes whose one-vs-rest ROC curve the AUC averages: the second (positive)
    class alone for two classes, every class otherwise; only those with images both of
    the class and not of it in ``labels``."""
    labels = np.asarray(labels)
    classes = [1] if n_classes == 2 else range(n_classes)
    return [c for c in classes if 0 < (labels == c).sum() < len(labels)]


def _weighted_auc(score: np.ndarray, positive: np.ndarray, image_weights: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of each column of ``image_weights`` [n, resamples] (image i counted
    ``image_weights[i, r]`` times): positive-negative pairs ordered right, ties counting half,
    over all pairs. One sort serves every resample (:mod:`snnctl.readout.mann_whitney`)."""
    order = np.argsort(score, kind="stable")
    ranked = score[order]
    group_starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1], True])  # each distinct score's first image
    positive = np.ascontiguousarray(positive)
    try:
        from snnctl.readout.mann_whitney import resampled_auc
    except Exception:  # a broken numba install must not leave a run unscored
        return resampled_auc_numpy(image_weights, order, group_starts, positive)
    return resampled_auc(image_weights, order, group_starts, positive)


def resampled_auc_numpy(image_weights: np.ndarray, order: np.ndarray, group_starts: np.ndarray,
                        positive: np.ndarray) -> np.ndarray:
    """:func:`snnctl.readout.mann_whitney.resampled_auc` in numpy, the same figures (whole
    counts make every sum exact) at ten times its time: [distinct scores, resamples] arrays."""
    weights, positive = image_weights[order], positive[order, None]
    pos = np.add.reduceat(np.where(positive, weights, 0.0), group_starts[:-1], axis=0)
    neg = np.add.reduceat(np.where(positive, 0.0, weights), group_starts[:-1], axis=0)
    below = np.cumsum(neg, axis=0) - neg
    return (pos * (below + neg / 2)).sum(axis=0) / (pos.sum(axis=0) * neg.sum(axis=0))


def _per_resample(weights: np.ndarray | None, n: int,
                  metric: Callable[[np.ndarray], np.ndarray | None]) -> float | np.ndarray | None:
    """``metric`` of each resample's ``weights`` [resamples, n]; without weights, the
    metric of the images themselves as one float."""
    if weights is not None:
        return metric(weights)
    value = metric(np.ones((1, n)))
    return None if value is None else float(value[0])


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


def bootstrap_interval(metric: Callable[..., np.ndarray | None], outputs, labels, *, seed: int,
                       n_resamples: int = N_RESAMPLES, level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile bootstrap interval at ``level`` of ``metric(outputs, labels, weights)``.

    Each of ``n_resamples`` resamples draws, within each class, as many images as the
    class has, with replacement (seeded by ``seed``); ``weights`` [resamples, n] says how
    often each image was drawn, and the metric returns one value per resample (as
    ``accuracy``, ``balanced_accuracy`` and ``roc_auc`` do), or None where undefined.
    """
    outputs, labels = np.asarray(outputs), np.asarray(labels)
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, n_resamples, RESAMPLES_AT_ONCE):
        weights = np.zeros((min(RESAMPLES_AT_ONCE, n_resamples - start), len(labels)))
        for rows in members:
            weights[:, rows] = _draw_counts(rng, len(weights), len(rows))
        value = metric(outputs, labels, weights)
        if value is None:
            return None
        values.append(value)
    tail = (1 - level) / 2
    low, high = np.quantile(np.concatenate(values), [tail, 1 - tail])
    return float(low), float(high)


def _draw_counts(rng: np.random.Generator, n_resamples: int, n: int) -> np.ndarray:
    """How often each of ``n`` images is drawn in ``n`` draws with replacement, for each
    of ``n_resamples`` resamples [n_resamples, n]."""
    picks = rng.integers(0, n, size=(n_resamples, n)) + n * np.arange(n_resamples)[:, None]
    return np.bincount(picks.ravel(), minlength=n_resamples * n).reshape(n_resamples, n)


# The readouts and the baseline as the tables and figures name them.
READOUT_NAMES = {"vote": "vote (all activity)", "linear": "linear readout", "baseline": "pixel baseline"}


@dataclass(frozen=True)
class ScoreReport:
    """The scores of one set of predictions; ``to_dict()`` is what --json prints."""

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

    def to_dict(self) -> dict:
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

    def interval(metric: Callable[..., np.ndarray | None], outputs: np.ndarray) -> tuple[float, float] | None:
        return bootstrap_interval(metric, outputs, labels, seed=seed, n_resamples=n_resamples, level=level)

    return ScoreReport(
        n_images=len(labels),
        accuracy=accuracy(predictions, labels),
        balanced_accuracy=balanced_accuracy(predictions, labels),
        recall=dict(zip(class_names, class_recalls(predictions, labels, len(class_names)))),
        auc=roc_auc(class_scores, labels),
        sensitivity=sensitivity,
        specificity=specificity,
        intervals={
            "accuracy": interval(accuracy, predictions),
            "balanced_accuracy": interval(balanced_accuracy, predictions),
            "auc": interval(roc_auc, class_scores),
        },
        level=level,
        n_resamples=n_resamples,
    )
