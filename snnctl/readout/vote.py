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

from dataclasses import dataclass

import torch

from snnctl.readout import metrics

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


def reduce(values: torch.Tensor, dim: int, reduction: str) -> torch.Tensor:
    """``values`` reduced over ``dim`` by ``reduction`` (config.REDUCTIONS: sum, mean, max)."""
    if reduction == "sum":
        return values.sum(dim)
    if reduction == "mean":
        return values.mean(dim)
    return values.amax(dim)


def reduce_by_class(counts: torch.Tensor, labels: torch.Tensor, n_classes: int, reduction: str) -> torch.Tensor:
    """Each neuron's response to each class: [n_neurons, n_classes]."""
    counts = counts.float()
    rates = torch.zeros(counts.shape[1], n_classes)
    for label in range(n_classes):
        members = counts[labels == label]
        if len(members) == 0:
            continue
        rates[:, label] = reduce(members, 0, reduction)
    return rates


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
    """Score of each class for each image [n_images, n_classes], from its assigned neurons.

    ``weighted``: each neuron's count is multiplied by its proportion for the class
    (proportion weighting); otherwise plain counts (all-activity vote).
    """
    counts = counts.float()
    scores = torch.zeros(counts.shape[0], n_classes)
    for label in range(n_classes):
        members = state.assignments == label
        if not members.any():
            continue
        votes = counts[:, members]
        if weighted:
            votes = votes * state.proportions[members, label]
        scores[:, label] = reduce(votes, 1, reduction)
    return scores


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
    plain = class_scores(counts, state, n_classes, reduction, weighted=False)
    weighted = class_scores(counts, state, n_classes, reduction, weighted=True)
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

