"""From spike counts to classes: neuron assignment, voting and metrics.

Diehl & Cook (2015), section 2.5: after training, each excitatory neuron is assigned
the class for which it responded most over the labelled training images; an image is
classified by the class whose assigned neurons respond most ("all activity"), or with
each neuron's vote weighted by the share of its response that went to each class
("proportion weighting", BindsNET's ``proportion_weighting``).

The readout ``reduction`` sets how neuron-level outputs are aggregated:

* assignment: a neuron's response to a class is the ``sum``, ``mean`` (BindsNET's
  ``assign_labels``) or ``max`` of its spike counts over that class's images;
* vote: a class's score is the ``sum``, ``mean`` (BindsNET's ``all_activity``) or
  ``max`` of the spike counts of the neurons assigned to it.

``sum`` favours classes with many images (assignment) and classes with many neurons
(vote), which matters for unbalanced data; ``mean`` removes both size effects; ``max``
follows the single strongest response. Neurons that never fired stay unassigned (-1)
and do not vote; an image that makes no assigned neuron fire gets no prediction (-1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from snnctl.readout import metrics

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

UNASSIGNED = -1


@dataclass
class LabelState:
    """Which class each excitatory neuron stands for, and how strongly."""

    assignments: torch.Tensor  # [n_neurons] int64, -1 = unassigned
    proportions: torch.Tensor  # [n_neurons, n_classes], share of each neuron's response
    rates: torch.Tensor  # [n_neurons, n_classes], the reduced response per class

    def named(self) -> dict[str, torch.Tensor]:
        return {"labels.assignments": self.assignments, "labels.proportions": self.proportions,
                "labels.rates": self.rates}

    @classmethod
    def from_named(cls, tensors: dict[str, torch.Tensor]) -> "LabelState":
        return cls(tensors["labels.assignments"].long(), tensors["labels.proportions"].float(),
                   tensors["labels.rates"].float())

    def neurons_per_class(self, n_classes: int) -> list[int]:
        assigned = self.assignments[self.assignments >= 0]
        return torch.bincount(assigned, minlength=n_classes).tolist()


def sparse_counts(counts: torch.Tensor) -> "csr_matrix":
    """Spike counts [n_images, n_neurons] as a sparse matrix (float64): under the winner
    rule a few of a layer's neurons fire for an image (11 of 6,400 on MNIST), so the class
    sums below skip the zeros; on 60,000 images and 6,400 neurons they take a tenth of a
    second instead of ten over the dense counts."""
    from scipy.sparse import csr_matrix

    counts = counts.cpu()
    nonzero = counts.nonzero()
    rows, columns = nonzero[:, 0].numpy(), nonzero[:, 1].numpy()
    values = counts.numpy()[rows, columns].astype(np.float64)
    return csr_matrix((values, (rows, columns)), shape=tuple(counts.shape))


def _reduced(sums: np.ndarray, sizes: np.ndarray, maxima: Callable[[], np.ndarray], reduction: str) -> torch.Tensor:
    """Float32 ``sum``, ``mean`` (the sum over ``sizes`` values, in float32 as torch's mean
    divides) or ``max`` (computed only when asked) of groups of values."""
    if reduction == "sum":
        reduced = sums.astype(np.float32)
    elif reduction == "mean":
        sizes = sizes.astype(np.float32)
        reduced = np.divide(sums.astype(np.float32), sizes, out=np.zeros_like(sums, np.float32), where=sizes > 0)
    else:
        reduced = maxima().astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(reduced))


def reduce_by_class(counts: torch.Tensor, labels: torch.Tensor, n_classes: int, reduction: str) -> torch.Tensor:
    """Each neuron's response to each class: the ``sum``, ``mean`` or ``max`` of its counts
    over the class's images [n_neurons, n_classes]. Counts are whole numbers, so the sums
    are exact in any order."""
    matrix, labels = sparse_counts(counts), labels.numpy()
    classes = np.eye(n_classes)[labels]  # [n_images, n_classes] one-hot

    def maxima() -> np.ndarray:
        per_class = np.zeros((matrix.shape[1], n_classes))
        for label in np.unique(labels):
            per_class[:, label] = matrix[labels == label].max(axis=0).toarray().ravel()
        return per_class

    sizes = np.broadcast_to(classes.sum(axis=0), (matrix.shape[1], n_classes))
    return _reduced(np.asarray(matrix.T @ classes), sizes, maxima, reduction)


def assign(counts: torch.Tensor, labels: torch.Tensor, n_classes: int, reduction: str) -> LabelState:
    """Assign each neuron the class of its largest response (ties: the lowest class)."""
    rates = reduce_by_class(counts, labels, n_classes, reduction)
    total = rates.sum(1, keepdim=True)
    proportions = torch.where(total > 0, rates / total.clamp_min(1e-12), torch.zeros_like(rates))
    assignments = rates.argmax(1)
    assignments[total.squeeze(1) == 0] = UNASSIGNED
    return LabelState(assignments, proportions, rates)


def class_scores(counts: torch.Tensor, state: LabelState, n_classes: int, reduction: str,
                 weighted: bool) -> torch.Tensor:
    """Score of each class for each image [n_images, n_classes], from its assigned neurons:
    the ``sum``, ``mean`` or ``max`` over them of their counts.

    ``weighted``: each neuron's count is multiplied by its proportion for the class
    (proportion weighting); otherwise plain counts (all-activity vote). The products and
    their sums are float64 before the float32 result, so a weighted score can differ from
    BindsNET's float32 sum in its last bit; the plain ones are whole numbers, exact.
    """
    return _class_scores(sparse_counts(counts), state, n_classes, reduction, weighted)


def _class_scores(matrix: "csr_matrix", state: LabelState, n_classes: int, reduction: str,
                  weighted: bool) -> torch.Tensor:
    assigned = np.flatnonzero(state.assignments.numpy() >= 0)
    classes = state.assignments.numpy()[assigned]
    votes = np.zeros((matrix.shape[1], n_classes))  # what a count of each neuron adds to each class
    votes[assigned, classes] = state.proportions.numpy()[assigned, classes] if weighted else 1.0

    def maxima() -> np.ndarray:
        per_class = np.zeros((matrix.shape[0], n_classes))
        for label in np.unique(classes):
            members = votes[:, label] > 0
            per_class[:, label] = matrix[:, members].multiply(votes[members, label]).max(axis=1).toarray().ravel()
        return per_class

    sizes = np.broadcast_to(np.bincount(classes, minlength=n_classes), (matrix.shape[0], n_classes))
    return _reduced(np.asarray(matrix @ votes), sizes, maxima, reduction)


def predict(scores: torch.Tensor) -> torch.Tensor:
    """Highest-scoring class per image; -1 where no class scored (no vote)."""
    predictions = scores.argmax(1)
    predictions[scores.sum(1) == 0] = UNASSIGNED
    return predictions


@dataclass
class Votes:
    all_activity: torch.Tensor  # predictions [n_images]
    proportion_weighting: torch.Tensor
    scores: torch.Tensor  # all-activity scores [n_images, n_classes]


def vote(counts: torch.Tensor, state: LabelState, n_classes: int, reduction: str) -> Votes:
    """Both votes of Diehl & Cook for a batch of spike counts."""
    matrix = sparse_counts(counts)
    plain = _class_scores(matrix, state, n_classes, reduction, weighted=False)
    weighted = _class_scores(matrix, state, n_classes, reduction, weighted=True)
    return Votes(predict(plain), predict(weighted), plain)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """:func:`snnctl.readout.metrics.accuracy` of tensors (NaN for no images)."""
    return metrics.accuracy(predictions.numpy(), labels.numpy())


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """[true class, predicted class] counts; images without a prediction are left out."""
    valid = predictions >= 0
    index = labels[valid] * n_classes + predictions[valid]
    return torch.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass
class ClassMetrics:
    name: str
    support: int
    precision: float | None  # None: no image was predicted as the class
    recall: float | None  # None: no image of the class (as in ScoreReport.recall)


def per_class(predictions: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> list[ClassMetrics]:
    """Precision and recall of each class; the recall is :func:`metrics.class_recalls`'s,
    which counts images without a prediction as missed."""
    recalls = metrics.class_recalls(predictions.numpy(), labels.numpy(), len(class_names))
    rows = []
    for label, (name, recall) in enumerate(zip(class_names, recalls)):
        predicted = predictions == label
        hits = int((predicted & (labels == label)).sum())
        rows.append(ClassMetrics(name, int((labels == label).sum()),
                                 precision=hits / int(predicted.sum()) if predicted.any() else None, recall=recall))
    return rows

