"""The two readouts and the pixel baseline, fitted and scored the same way for every command.

``train``, ``evaluate`` and ``assign`` hand over spike counts (learning off) and get back
the linear readout (:func:`fit_linear`), the pixel baseline (:func:`fit_baseline`) and the
:class:`Scores` of each on the held-out images (:func:`score_all`): Diehl & Cook's vote,
the linear readout and the baseline side by side, with a plain verdict when the network
is below the baseline or below chance (docs/readout.md).

Both regressions are fitted on at most ``readout_max_train`` training images, a seeded,
class-stratified sample (:func:`fit_rows`): the pixel baseline on all 60,000 MNIST
images costs ten minutes, far more than a 100-neuron network's training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from snnctl.config import Config
from snnctl.errors import SnnctlError
from snnctl.readout import COUNTS, PIXELS, LinearReadout, ScoreReport, score, vote_shares
from snnctl.seeds import readout_seed
from snnctl.service.common import Notice, Result

if TYPE_CHECKING:
    import torch

    from snnctl.readout import vote


@dataclass
class Scores(Result):
    """Every readout's scores on one set of images, and the pixel baseline's."""

    readout: str  # the readout the run reports first: "vote" or "linear"
    vote: ScoreReport | None  # all-activity vote; None without a label state
    linear: ScoreReport | None  # None without a linear readout
    baseline: ScoreReport | None  # None with baseline: false
    chance: float  # balanced accuracy of a guess: 1 / classes
    fit_images: int | None  # training images the linear readout and the baseline were fitted on
    verdict: str | None  # when the network is below the baseline or below chance, in words

    @property
    def headline(self) -> ScoreReport | None:
        """The scores of the readout the run uses (``readout``)."""
        return self.linear if self.readout == "linear" else self.vote


def fit_rows(labels: "torch.Tensor", config: Config) -> "torch.Tensor":
    """Which training images the regressions are fitted on: all, or a seeded,
    class-stratified sample of ``readout_max_train``."""
    import torch

    from snnctl import data

    if config.readout_max_train is None or len(labels) <= config.readout_max_train:
        return torch.arange(len(labels))
    _, kept = data.stratified_split(labels, config.readout_max_train, readout_seed(config.seed))
    return torch.sort(kept).values


def fit_linear(counts: "torch.Tensor", labels: "torch.Tensor", config: Config, n_classes: int) -> LinearReadout:
    """The linear readout on the training split's spike counts (transform ``COUNTS``),
    class-weighted when ``balance`` is true."""
    rows = fit_rows(labels, config)
    return LinearReadout.fit(counts[rows].numpy(), labels[rows].numpy(), n_classes, balanced=config.balance,
                             seed=readout_seed(config.seed), transform=COUNTS)


def fit_baseline(images: "torch.Tensor", labels: "torch.Tensor", config: Config, n_classes: int) -> LinearReadout:
    """The pixel baseline: the same regression on the same resized training pixels."""
    rows = fit_rows(labels, config)
    return LinearReadout.fit(images[rows].flatten(1).numpy(), labels[rows].numpy(), n_classes,
                             balanced=config.balance, seed=readout_seed(config.seed), transform=PIXELS)


def fit_or_skip(fit: Callable[[], LinearReadout], required: bool, what: str, notice: Notice) -> LinearReadout | None:
    """``fit()``, or None with a notice where the training images cannot fit it (a class
    with fewer than two images) and the run does not depend on it (``required``)."""
    try:
        return fit()
    except SnnctlError as exc:
        if required:
            raise
        notice(f"no {what}: {exc}")
        return None


def linear_outputs(readout: LinearReadout, counts: "torch.Tensor") -> tuple[np.ndarray, np.ndarray]:
    """The linear readout's predictions [n] and class probabilities [n, classes]."""
    probabilities = readout.predict_proba(counts.numpy())
    return probabilities.argmax(axis=1), probabilities


def vote_outputs(votes: "vote.Votes") -> tuple[np.ndarray, np.ndarray]:
    """The all-activity vote's predictions [n] (-1: none) and class shares [n, classes]."""
    return votes.all_activity.numpy(), vote_shares(votes.scores.numpy())


def score_all(config: Config, class_names: list[str], labels: "torch.Tensor", *,
              votes: "vote.Votes | None", linear: LinearReadout | None, counts: "torch.Tensor",
              baseline: LinearReadout | None = None, images: "torch.Tensor | None" = None,
              fit_images: int | None = None) -> Scores:
    """The :class:`Scores` of the vote, the linear readout and the baseline on the same
    images (``counts`` their spike counts, ``images`` their pixels for the baseline)."""
    targets = labels.numpy()
    seed = readout_seed(config.seed)

    def report(outputs: tuple[np.ndarray, np.ndarray]) -> ScoreReport:
        return score(outputs[0], targets, outputs[1], class_names, seed=seed)

    vote_report = report(vote_outputs(votes)) if votes is not None else None
    linear_report = report(linear_outputs(linear, counts)) if linear is not None else None
    baseline_report = None
    if baseline is not None and images is not None:
        baseline_report = report(linear_outputs(baseline, images.flatten(1)))
    scores = Scores(config.readout, vote_report, linear_report, baseline_report, 1 / len(class_names),
                    fit_images, None)
    scores.verdict = verdict(scores)
    return scores


def verdict(scores: Scores) -> str | None:
    """One plain sentence when the run's readout is below the pixel baseline or below
    chance in balanced accuracy; None when it is above both."""
    network = scores.headline
    if network is None:
        return None
    said = []
    if scores.baseline is not None and network.balanced_accuracy < scores.baseline.balanced_accuracy:
        said.append(f"below the pixel baseline ({network.balanced_accuracy:.1%} against "
                    f"{scores.baseline.balanced_accuracy:.1%} balanced accuracy): the spiking layer adds "
                    f"nothing over the raw pixels")
    if network.balanced_accuracy <= scores.chance:
        said.append(f"no better than chance ({network.balanced_accuracy:.1%} balanced accuracy, chance "
                    f"{scores.chance:.1%})")
    return f"the network ({scores.readout} readout) is " + "; and ".join(said) if said else None
