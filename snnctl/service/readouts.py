"""The two readouts and the pixel baseline, fitted and scored the same way for every command.

``train``, ``evaluate`` and ``assign`` hand over spike counts (learning off) and get back
what the linear readout reads (:func:`readout_features`), the linear readout
(:func:`fit_linear`), the pixel baseline (:func:`fit_baseline`) and the :class:`Scores`
of each from their outputs on the held-out images (:func:`score_all`): Diehl & Cook's vote,
the linear readout and the baseline side by side, with a plain verdict when the network
is below the baseline or below chance (docs/readout.md). :func:`tested_on` runs both
readouts on held-out images, once for every command.

Both regressions are fitted on at most ``readout_max_train`` training images, a seeded,
class-stratified sample (:func:`fit_rows`, chosen once and handed to both fits): the
pixel baseline on all 60,000 MNIST images costs ten minutes, far more than a 100-neuron
network's training. Where the images have patient groups (``group``, ``group_file``),
both choose their L2 strength on folds that keep a patient's images on one side
(:func:`fit_groups`), as every split of them does. With ``readout_augment`` both are also
fitted on distorted copies of those images (:func:`with_distorted_copies`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from snnctl.config import Config
from snnctl.errors import SnnctlError
from snnctl.readout import PIXELS, LinearReadout, ScoreReport, score, vote_shares
from snnctl.readout import linear as linear_readout
from snnctl.seeds import readout_seed
from snnctl.service.common import Accuracy, Notice, Result
from snnctl.service.common import score as score_votes

if TYPE_CHECKING:
    import torch

    from snnctl.data import Dataset
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
    # the patient groups of those images (None: no groups); their L2 strength was chosen on
    # folds that keep a group on one side
    fit_groups: int | None = None
    # distorted copies of each of those images they were fitted on as well (readout_augment)
    fit_copies: int = 0

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


def fit_groups(dataset: "Dataset", rows: "torch.Tensor") -> list[str] | None:
    """The patient group of each of ``dataset``'s images at ``rows`` (None where the data
    set has no groups): what keeps a patient on one side of the regressions' folds."""
    return [dataset.groups[i] for i in rows.tolist()] if dataset.groups else None


def readout_features(config: Config, weights: "torch.Tensor", images: "torch.Tensor",
                     counts: "torch.Tensor") -> "torch.Tensor":
    """What the linear readout reads for ``images`` [n, inputs] whose spike counts are
    ``counts`` [n, neurons]: the counts, or (``readout_features: drive``) their
    :func:`image_drive`."""
    return counts if config.readout_features == "counts" else image_drive(config, weights, images)


def image_drive(config: Config, weights: "torch.Tensor", images: "torch.Tensor") -> "torch.Tensor":
    """The input drive of ``images`` [n, inputs] (pixels scaled to [0, 1]) through
    ``weights`` [inputs, neurons] above the layer's mean
    (:func:`snnctl.readout.features.input_drive`); with ``patch_size`` or
    ``readout_shift``, each neuron's largest over the windows of the image, or over its
    shifts, and with ``readout_pooling`` ``centre`` or ``centre-mean`` over the windows at
    its centre too, with ``centre-mean`` also the mean over each
    (:func:`snnctl.readout.features.window_drive`)."""
    import torch

    from snnctl import data
    from snnctl.readout.features import input_drive, window_drive

    pixels = (images.flatten(1).float() * data.pixel_scale(images)).numpy()
    fields = weights.cpu().numpy()
    if config.patch_size or config.readout_shift:
        drive = window_drive(pixels, fields, config.input_size, config.readout_shift,
                             config.readout_pooling)
    else:
        drive = input_drive(pixels, fields)
    return torch.from_numpy(drive)


def fit_linear(features: "torch.Tensor", labels: "torch.Tensor", config: Config, n_classes: int,
               groups: list[str] | None = None) -> LinearReadout:
    """The linear readout on the training images' ``features`` (:func:`readout_features`
    of the rows :func:`fit_rows` chose, ``labels`` and ``groups`` theirs), with the
    transform of its kind, class-weighted when ``balance`` is true."""
    from snnctl.readout.features import TRANSFORMS

    return LinearReadout.fit(features.numpy(), labels.numpy(), n_classes, balanced=config.balance,
                             seed=readout_seed(config.seed), transform=TRANSFORMS[config.readout_features],
                             workers=_fit_workers(config), groups=groups)


def fit_baseline(images: "torch.Tensor", labels: "torch.Tensor", config: Config, n_classes: int,
                 groups: list[str] | None = None) -> LinearReadout:
    """The pixel baseline: the same regression on the same resized training pixels (the
    rows :func:`fit_rows` chose, ``labels`` and ``groups`` theirs), fitted once for every
    run, ``evaluate`` and ``assign`` on those rows (:mod:`snnctl.readout.fit_cache`)."""
    from snnctl.readout.fit_cache import cached_fit

    return cached_fit("pixel-baseline", images.flatten(1).numpy(), labels.numpy(), n_classes, balanced=config.balance,
                      seed=readout_seed(config.seed), transform=PIXELS, workers=_fit_workers(config), groups=groups)


def _fit_workers(config: Config) -> int:
    """Threads for a regression's cross-validation folds: the run's ``workers``."""
    from snnctl.engine.base import worker_count

    return worker_count(config)


# What a distorted copy finds where it reads past the image's edge: a digit lies on a black
# page; the tissue of a mammogram patch goes on (zeros there made dark corners that the
# drive of a layer of windows reads, docs/readout.md, *Distorted copies*).
OUTSIDE_THE_IMAGE = {"MNIST": "zeros", "FASHION": "zeros", "MAMMO": "reflection"}


def with_distorted_copies(config: Config, images: "torch.Tensor", labels: "torch.Tensor",
                          groups: list[str] | None) -> tuple["torch.Tensor", "torch.Tensor", list[str] | None]:
    """The training images a regression is fitted on, their labels and groups; with
    ``readout_augment: N``, followed by N seeded, distorted copies of each
    (:func:`snnctl.data.distortions.distorted_copies`) with its label and group. Without
    patient groups each image and its copies are a group, so that the folds that choose
    the L2 strength never score a copy of an image they were fitted on."""
    import torch

    from snnctl.data.distortions import distorted_copies
    from snnctl.seeds import distortion_seed

    copies = config.readout_augment
    if not copies:
        return images, labels, groups
    distorted = distorted_copies(images, config.input_size, copies, distortion_seed(config.seed),
                                 OUTSIDE_THE_IMAGE[config.task])
    own = groups if groups is not None else [str(row) for row in range(len(images))]
    return torch.cat([images, distorted]), labels.repeat(copies + 1), own * (copies + 1)


def fit_network_readout(config: Config, weights: "torch.Tensor", images: "torch.Tensor", counts: "torch.Tensor",
                        labels: "torch.Tensor", n_classes: int, notice: Notice,
                        groups: list[str] | None = None) -> LinearReadout | None:
    """A trained layer's linear readout, fitted on the training images ``images`` (the rows
    :func:`fit_rows` chose; ``counts`` their spike counts, ``labels`` their classes,
    ``groups`` their patients; with their distorted copies, :func:`with_distorted_copies`)
    as ``readout_features`` says; None with a notice where they cannot fit it, unless the
    run reads out linearly (:func:`fit_or_skip`)."""
    def fit() -> LinearReadout:
        if not config.readout_augment:
            return fit_linear(readout_features(config, weights, images, counts), labels, config, n_classes, groups)
        fit_images, fit_labels, fit_groups = with_distorted_copies(config, images, labels, groups)
        return fit_linear(image_drive(config, weights, fit_images), fit_labels, config, n_classes, fit_groups)

    return fit_or_skip(fit, config.readout == "linear", "linear readout", notice, groups is not None)


def fit_pixel_baseline(config: Config, images: "torch.Tensor", labels: "torch.Tensor", n_classes: int,
                       notice: Notice, groups: list[str] | None = None) -> LinearReadout | None:
    """The pixel baseline on the training images ``images`` (the rows :func:`fit_rows`
    chose, ``groups`` their patients); None with ``baseline: false``, or with a notice
    where they cannot fit it."""
    if not config.baseline:
        return None
    fit_images, fit_labels, fit_groups = with_distorted_copies(config, images, labels, groups)
    return fit_or_skip(lambda: fit_baseline(fit_images, fit_labels, config, n_classes, fit_groups), False,
                       "pixel baseline", notice, groups is not None)


def fit_or_skip(fit: Callable[[], LinearReadout], required: bool, what: str, notice: Notice,
                grouped: bool = False) -> LinearReadout | None:
    """``fit()``, or None with a notice where the training images cannot fit it (a class
    with fewer than two images) and the run does not depend on it (``required``). A fit
    whose solver stopped at its cap says so in a notice, and so does one whose images
    had groups (``grouped``) that its folds could not keep apart."""
    try:
        readout = fit()
    except SnnctlError as exc:
        if required:
            raise
        notice(f"no {what}: {exc}")
        return None
    if not readout.converged:
        notice(f"the {what}'s fit stopped at {linear_readout.MAX_ITER} solver iterations before it converged "
               f"(C = {readout.C:g}); its weights are those of the last iteration")
    if grouped and not readout.grouped:
        notice(f"the {what}'s L2 strength was chosen on folds of single images, not of whole groups: a class "
               f"has training images of one group only")
    return readout


Outputs = tuple[np.ndarray, np.ndarray]  # predictions [n] (-1: none) and class scores [n, classes]


def linear_outputs(readout: LinearReadout, features: "torch.Tensor") -> Outputs:
    """A linear readout's predictions [n] and class probabilities [n, classes]."""
    probabilities = readout.predict_proba(features.flatten(1).numpy())
    return probabilities.argmax(axis=1), probabilities


def network_outputs(readout: LinearReadout | None, config: Config, weights: "torch.Tensor", images: "torch.Tensor",
                    counts: "torch.Tensor") -> Outputs | None:
    """A trained layer's linear readout on ``images`` (``counts`` their spike counts): its
    outputs on their ``readout_features``, as it was fitted; None without a readout."""
    if readout is None:
        return None
    return linear_outputs(readout, readout_features(config, weights, images, counts))


def vote_outputs(votes: "vote.Votes") -> Outputs:
    """The all-activity vote's predictions [n] (-1: none) and class shares [n, classes]."""
    return votes.all_activity.numpy(), vote_shares(votes.scores.numpy())


@dataclass
class Tested:
    """A trained layer's readouts on a set of images, learning off, from their spike counts:
    both votes of its labelled neurons (Diehl & Cook 2015) and its linear readout."""

    config: Config  # whose ``readout`` the predictions follow
    class_names: list[str]
    images: "torch.Tensor"
    labels: "torch.Tensor"
    accuracy: Accuracy  # both votes'
    votes: "vote.Votes"
    linear: Outputs | None  # the linear readout's; None without one

    def predictions(self) -> "torch.Tensor":
        """The class of each image by the run's readout (``config.readout``; -1: no vote)."""
        import torch

        return torch.from_numpy(self.linear[0]) if self.config.readout == "linear" else self.votes.all_activity

    def outputs_with(self, baseline: LinearReadout | None) -> dict[str, Outputs | None]:
        """The outputs of the vote, the linear readout and the pixel ``baseline`` on these
        images, by ``readout.READOUT_NAMES`` key (None: not there)."""
        return {"vote": vote_outputs(self.votes), "linear": self.linear,
                "baseline": None if baseline is None else linear_outputs(baseline, self.images)}

    def scores_with(self, baseline: LinearReadout | None, fit_images: int | None,
                    fit_groups: list[str] | None = None) -> Scores:
        """The :class:`Scores` of both readouts and the pixel ``baseline`` on these images
        (``fit_images`` training images fitted them, of the patients ``fit_groups``)."""
        return score_all(self.config, self.class_names, self.labels, **self.outputs_with(baseline),
                         fit_images=fit_images, fit_groups=len(set(fit_groups)) if fit_groups else None)


def tested_on(config: Config, class_names: list[str], state: "vote.LabelState", readout: LinearReadout | None,
              weights: "torch.Tensor", images: "torch.Tensor", counts: "torch.Tensor",
              labels: "torch.Tensor") -> Tested:
    """The votes of the neurons labelled by ``state`` and the linear ``readout`` (None:
    none) on ``images``, whose spike counts are ``counts`` and classes ``labels``."""
    accuracy, votes = score_votes(counts, labels, state, len(class_names), config.reduction)
    return Tested(config, class_names, images, labels, accuracy, votes,
                  network_outputs(readout, config, weights, images, counts))


def score_all(config: Config, class_names: list[str], labels: "torch.Tensor", *, vote: Outputs | None,
              linear: Outputs | None, baseline: Outputs | None = None, fit_images: int | None = None,
              fit_groups: int | None = None) -> Scores:
    """The :class:`Scores` of the vote, the linear readout and the baseline from their
    outputs on the same images (None: that one is not there)."""
    targets = labels.numpy()
    seed = readout_seed(config.seed)

    def report(outputs: Outputs | None) -> ScoreReport | None:
        return None if outputs is None else score(outputs[0], targets, outputs[1], class_names, seed=seed)

    scores = Scores(config.readout, report(vote), report(linear), report(baseline), 1 / len(class_names),
                    fit_images, None, fit_groups, config.readout_augment if fit_images is not None else 0)
    scores.verdict = verdict(scores)
    return scores


def verdict(scores: Scores) -> str | None:
    """One plain sentence when the run's readout is below the pixel baseline in balanced
    accuracy, or not above chance (1 / classes) by more than its bootstrap interval's
    width; None when it is above both. When the other readout of the same layer does
    better (above the baseline, or clearly above chance), the sentence names it."""
    network = scores.headline
    if network is None:
        return None
    said = []
    # the layer may still carry more than this readout shows: the other readout of it says so
    other, name = (scores.vote, "vote") if scores.readout == "linear" else (scores.linear, "linear")
    named = False
    baseline = scores.baseline
    if baseline is not None and network.balanced_accuracy < baseline.balanced_accuracy:
        below = (f"below the pixel baseline ({network.balanced_accuracy:.1%} against "
                 f"{baseline.balanced_accuracy:.1%} balanced accuracy)")
        named = other is not None and other.balanced_accuracy > baseline.balanced_accuracy
        if named:
            said.append(f"{below}; the same layer's {name} readout reaches {other.balanced_accuracy:.1%} "
                        f"(--readout {name})")
        else:
            said.append(f"{below}: the spiking layer adds nothing over the raw pixels")
    at_chance = _against_chance(network, scores.chance)
    said.extend(at_chance)
    if at_chance and not named and other is not None and not _against_chance(other, scores.chance):
        said[-1] += (f"; the same layer's {name} readout is clearly above chance, {other.balanced_accuracy:.1%} "
                     f"(--readout {name})")
    return f"the network ({scores.readout} readout) is " + "; and ".join(said) if said else None


def _against_chance(network: ScoreReport, chance: float) -> list[str]:
    """What to say of a readout whose balanced accuracy is not above ``chance`` or whose
    bootstrap interval reaches down to it: on a small test set (82 images, a standard
    error of about 0.06) a figure a few points above chance is still a guess."""
    if network.balanced_accuracy <= chance:
        return [f"no better than chance ({network.balanced_accuracy:.1%} balanced accuracy, chance {chance:.1%})"]
    interval = network.intervals.get("balanced_accuracy")
    if interval is not None and interval[0] <= chance:
        return [f"not distinguishable from chance ({network.balanced_accuracy:.1%} balanced accuracy; its "
                f"{network.level:.0%} interval, {interval[0]:.1%} to {interval[1]:.1%}, includes chance, "
                f"{chance:.1%})"]
    return []
