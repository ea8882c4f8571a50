"""Assignment, voting and metrics against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from snnctl.readout import metrics, vote

# Four images (three of class 0, one of class 1) and three neurons.
#   neuron 0: class 0 -> 1, 1, 1 (sum 3, mean 1, max 1); class 1 -> 2 (sum 2, mean 2, max 2)
#   neuron 1: class 0 -> 4, 0, 0 (sum 4, mean 4/3, max 4); class 1 -> 3 (sum 3, mean 3, max 3)
#   neuron 2: never fires
COUNTS = torch.tensor([[1, 4, 0], [1, 0, 0], [1, 0, 0], [2, 3, 0]])
TARGETS = torch.tensor([0, 0, 0, 1])


@pytest.mark.parametrize("reduction, expected", [
    ("sum", [0, 0, -1]),   # 3 > 2 and 4 > 3
    ("mean", [1, 1, -1]),  # 1 < 2 and 4/3 < 3
    ("max", [1, 0, -1]),   # 1 < 2 but 4 > 3
])
def test_each_reduction_assigns_as_worked_out_by_hand(reduction, expected):
    state = vote.assign(COUNTS, TARGETS, 2, reduction)
    assert state.assignments.tolist() == expected


def test_rates_and_proportions_by_hand():
    state = vote.assign(COUNTS, TARGETS, 2, "sum")
    assert state.rates.tolist() == [[3, 2], [4, 3], [0, 0]]
    assert torch.allclose(state.proportions, torch.tensor([[0.6, 0.4], [4 / 7, 3 / 7], [0.0, 0.0]]))
    mean = vote.assign(COUNTS, TARGETS, 2, "mean")
    assert torch.allclose(mean.rates[1], torch.tensor([4 / 3, 3.0]))


def _state(assignments: list[int], n_classes: int = 2) -> vote.LabelState:
    n = len(assignments)
    proportions = torch.zeros(n, n_classes)
    for neuron, label in enumerate(assignments):
        if label >= 0:
            proportions[neuron, label] = 1.0
    return vote.LabelState(torch.tensor(assignments), proportions, proportions.clone())


@pytest.mark.parametrize("counts, reduction, predicted", [
    ([2, 2, 3], "sum", 0),   # class 0: 2 + 2 = 4 > 3
    ([2, 2, 3], "mean", 1),  # class 0: 2 < 3
    ([4, 0, 3], "mean", 1),  # class 0: (4 + 0) / 2 = 2 < 3
    ([4, 0, 3], "max", 0),   # class 0: 4 > 3
])
def test_vote_reduction_by_hand(counts, reduction, predicted):
    votes = vote.vote(torch.tensor([counts]), _state([0, 0, 1]), 2, reduction)
    assert votes.all_activity.tolist() == [predicted]


def test_unassigned_neurons_do_not_vote():
    # neuron 2 is unassigned: its 9 spikes must not count for any class
    votes = vote.vote(torch.tensor([[1, 0, 9]]), _state([0, 1, -1]), 2, "sum")
    assert votes.scores.tolist() == [[1.0, 0.0]]
    assert votes.all_activity.tolist() == [0]


def test_an_image_that_makes_no_assigned_neuron_fire_gets_no_prediction():
    votes = vote.vote(torch.tensor([[0, 0, 5]]), _state([0, 1, -1]), 2, "sum")
    assert votes.all_activity.tolist() == [-1]
    assert votes.proportion_weighting.tolist() == [-1]


def test_proportion_weighting_uses_each_neurons_share():
    state = vote.LabelState(torch.tensor([0, 1]), torch.tensor([[0.5, 0.5], [0.1, 0.9]]), torch.zeros(2, 2))
    votes = vote.vote(torch.tensor([[4, 3]]), state, 2, "sum")
    # all activity: class 0 = 4, class 1 = 3; weighted: class 0 = 4 * 0.5 = 2, class 1 = 3 * 0.9 = 2.7
    assert votes.all_activity.tolist() == [0]
    assert votes.proportion_weighting.tolist() == [1]


def _sparse_layer(n_images: int = 3000, n_neurons: int = 400, n_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts as a large layer under the winner rule makes them: a few neurons per image."""
    generator = torch.Generator().manual_seed(5)
    counts = torch.zeros(n_images, n_neurons, dtype=torch.int32)
    rows = torch.arange(n_images).repeat_interleave(6)
    columns = torch.randint(0, n_neurons, (len(rows),), generator=generator)
    counts[rows, columns] = torch.randint(1, 4, (len(rows),), generator=generator, dtype=torch.int32)
    return counts, torch.randint(0, n_classes, (n_images,), generator=generator)


def _reduce(values: torch.Tensor, dim: int, reduction: str) -> torch.Tensor:
    return {"sum": values.sum, "mean": values.mean, "max": values.amax}[reduction](dim)


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_sparse_sums_equal_the_dense_definition(reduction):
    counts, labels = _sparse_layer()
    dense = counts.float()
    rates = torch.stack([_reduce(dense[labels == label], 0, reduction) for label in range(10)], 1)
    state = vote.assign(counts, labels, 10, reduction)
    assert torch.equal(state.rates, rates)  # whole counts: exact in any order
    for weighted in (False, True):
        expected = torch.zeros(len(counts), 10)
        for label in range(10):
            members = state.assignments == label
            if not members.any():  # a class no neuron stands for scores 0
                continue
            votes = dense[:, members] * (state.proportions[members, label] if weighted else 1)
            expected[:, label] = _reduce(votes, 1, reduction)
        scores = vote.class_scores(counts, state, 10, reduction, weighted)
        assert torch.allclose(scores, expected, rtol=1e-6, atol=0)
        assert torch.equal(vote.predict(scores), vote.predict(expected))


def test_the_mean_vote_is_bindsnets_all_activity_and_proportion_weighting():
    from bindsnet.evaluation import all_activity, proportion_weighting

    counts, labels = _sparse_layer(n_images=1000, n_neurons=100)
    state = vote.assign(counts, labels, 10, "mean")
    spikes = counts[:, None, :]  # BindsNET sums [images, time, neurons] over time
    votes = vote.vote(counts, state, 10, "mean")
    for ours, theirs, weighted in ((votes.all_activity, all_activity(spikes, state.assignments, 10), False),
                                   (votes.proportion_weighting,
                                    proportion_weighting(spikes, state.assignments, state.proportions, 10), True)):
        scores = vote.class_scores(counts, state, 10, "mean", weighted)
        top_two = scores.topk(2, dim=1).values
        decided = top_two[:, 0] > top_two[:, 1] * (1 + 1e-5)  # BindsNET breaks ties by its sort's order
        assert decided.sum() > 500
        assert torch.equal(ours[decided], theirs[decided])


def test_metrics_by_hand():
    predictions = torch.tensor([0, 0, 1, 1, -1, 1])
    targets = torch.tensor([0, 0, 0, 1, 1, 1])
    assert vote.accuracy(predictions, targets) == pytest.approx(4 / 6)
    # recall: class 0 = 2/3, class 1 = 2/3 (the unvoted image counts as missed)
    assert metrics.balanced_accuracy(predictions.numpy(), targets.numpy()) == pytest.approx(2 / 3)
    assert vote.confusion_matrix(predictions, targets, 2).tolist() == [[2, 1], [0, 2]]
    per_class = vote.per_class(predictions, targets, ["benign", "malignant"])
    assert [(m.name, m.support) for m in per_class] == [("benign", 3), ("malignant", 3)]
    assert per_class[0].precision == pytest.approx(1.0)
    assert per_class[1].precision == pytest.approx(2 / 3)
    assert per_class[1].recall == pytest.approx(2 / 3)
