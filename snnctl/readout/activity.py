"""How a trained layer spiked on a set of images: how many neurons never fired, and how
many fired in lockstep, each one's counts a copy of the layer's mean.

A silent layer (nearly every neuron without a spike) has had next to nothing for STDP to
learn from, which learns from spikes, and gives the vote nothing to read. It happens when
the input is too weak: 16-bit files holding 12-bit values at the study file's intensity
(docs/mammo.md, Formats). A readout of the input drive still scores, as the layer before
learning would, so the run says it (:func:`describe`).

A layer in lockstep has learned one feature, not one per neuron, and both readouts read
that one. It happens with ``one_spike: off`` and strong input: every neuron crosses its
threshold at the same step, before the inhibition (one step later) can single one out;
the thresholds then rise alike and STDP moves every neuron's weights the same way. Seen
on synthetic mammogram patches with ON/OFF input at 256 Hz: 400 neurons, one pattern of
counts, readouts level with the pixel baseline. The scores cannot show it, so the run
says it (:func:`describe`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Counts that follow the layer's mean this closely are one feature, whatever their scale.
LOCKSTEP_CORRELATION = 0.99
# Enough images to tell neurons apart; bounds the cost at 6,400 neurons and 60,000 images.
MAX_IMAGES = 2000
# A layer with this share of its firing neurons in lockstep is said to be in lockstep.
LOCKSTEP_SHARE = 0.5
# A layer with this share of its neurons silent on a set of images is said to be silent.
SILENT_SHARE = 0.9


@dataclass(frozen=True)
class LayerActivity:
    """The spike counts of a layer's neurons over a set of images, summarized."""

    neurons: int
    images: int  # the images looked at (at most MAX_IMAGES, evenly spaced)
    silent: int  # neurons that never fired on them
    in_lockstep: int  # neurons that fired, with counts correlated >= LOCKSTEP_CORRELATION with the layer's mean

    @property
    def active(self) -> int:
        return self.neurons - self.silent

    @property
    def silent_share(self) -> float:
        """The share of the layer's neurons that never fired (0 for a layer of none)."""
        return self.silent / self.neurons if self.neurons else 0.0

    @property
    def lockstep_share(self) -> float:
        """The share of the neurons that fired which fired in lockstep (0 when none fired)."""
        return self.in_lockstep / self.active if self.active else 0.0


def mostly_in_lockstep(lockstep_share: float) -> bool:
    """Whether a layer with this :attr:`LayerActivity.lockstep_share` is to be called in
    lockstep (a run's notice, a study's verdict)."""
    return lockstep_share >= LOCKSTEP_SHARE


def mostly_silent(silent_share: float) -> bool:
    """Whether a layer with this :attr:`LayerActivity.silent_share` is to be called silent
    (a run's notice, a study's verdict)."""
    return silent_share >= SILENT_SHARE


def layer_activity(counts: np.ndarray) -> LayerActivity:
    """Silent neurons and neurons in lockstep in ``counts`` [images, neurons]: a neuron is
    in lockstep when its counts correlate (Pearson) at LOCKSTEP_CORRELATION or more with
    the mean count of the neurons that fired, or equal it image for image (a constant
    mean has no correlation). Fewer than three neurons that fired are never in lockstep."""
    counts = np.asarray(counts)
    if len(counts) > MAX_IMAGES:
        counts = counts[np.linspace(0, len(counts) - 1, MAX_IMAGES).astype(np.int64)]
    fired = counts.sum(axis=0) > 0
    active = counts[:, fired].astype(np.float64)
    if active.shape[1] < 3:  # the mean of two neurons follows each of them whenever they fire together
        return LayerActivity(counts.shape[1], len(counts), int((~fired).sum()), 0)
    mean = active.mean(axis=1)
    centred, mean_centred = active - active.mean(axis=0), mean - mean.mean()
    norms = np.linalg.norm(centred, axis=0) * np.linalg.norm(mean_centred)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = (centred * mean_centred[:, None]).sum(axis=0) / norms
    alike = (correlation >= LOCKSTEP_CORRELATION) | (active == mean[:, None]).all(axis=0)
    return LayerActivity(counts.shape[1], len(counts), int((~fired).sum()), int(alike.sum()))


def describe(activity: LayerActivity, images: str) -> str | None:
    """One plain sentence when the layer was silent on ``images`` (:func:`mostly_silent`)
    or at least half of the neurons that fired on them did so in lockstep
    (:func:`mostly_in_lockstep`); None otherwise."""
    if mostly_silent(activity.silent_share):
        return (f"{activity.silent} of the {activity.neurons} neurons never fired on {images}: STDP, which learns "
                f"from spikes, had next to nothing to learn from, and the vote has nothing to read; stronger input "
                f"(intensity) makes the layer fire")
    if not mostly_in_lockstep(activity.lockstep_share):
        return None
    return (f"{activity.in_lockstep} of the {activity.active} neurons that fired on {images} fired in lockstep "
            f"(their counts follow the layer's mean at a correlation of {LOCKSTEP_CORRELATION} or more): the layer "
            f"learned about one feature, not {activity.active}, and its readouts read that one; neurons compete "
            f"with one_spike: winner, or with weaker input (intensity)")
