"""Polyak-Ruppert averaging of the input weights (Ruppert 1988; Polyak & Juditsky 1992).

With ``average_weights: f`` the input weights a run keeps are not those after its last
image but the mean of its weights over the last fraction ``f`` of its final epoch, taken
after every ``AVERAGE_EVERY``-th image of that stretch and after its last image. Online
STDP with a winner-take-all moves each neuron's weights toward the few images it wins
last; the mean over many of them is a steadier prototype, as the average of the iterates
of stochastic approximation is (docs/accuracy.md, *Averaged weights*). The thresholds are
not averaged: they count each neuron's wins over the whole run.

The snapshots fall on fixed places of the epoch, so a run presented in chunks, image by
image, or interrupted and resumed anywhere averages the same weights: a checkpoint made
inside the stretch keeps their running sum (``train.weights_sum``, float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from snnctl.config import Config

if TYPE_CHECKING:
    import torch

    from snnctl.data import Dataset

# Images between two snapshots of the weights.
AVERAGE_EVERY = 100


@dataclass
class WeightAverage:
    """The running sum of the weights at the snapshot places of the final epoch: after
    image ``first + k * every`` for k = 1, 2, ... and after its last image, ``end``."""

    first: int  # the stretch averaged is the epoch's images after this position
    end: int  # the epoch's length
    every: int = AVERAGE_EVERY
    total: "torch.Tensor | None" = None  # float64 [inputs, neurons]; None before the first snapshot

    @classmethod
    def of(cls, config: Config, train_set: "Dataset", total: "torch.Tensor | None" = None,
           epoch: int = 0) -> "WeightAverage | None":
        """The averaging of ``config`` over an epoch of ``train_set`` (None without
        ``average_weights``). A run resumed in ``epoch`` continues a checkpoint's ``total``
        when that is its final epoch; a run given more epochs on resume averages over its
        new final epoch instead."""
        if config.average_weights is None:
            return None
        from snnctl.data import images_per_epoch

        epoch_length = images_per_epoch(train_set, config)
        stretch = min(max(1, round(config.average_weights * epoch_length)), epoch_length)
        return cls(epoch_length - stretch, epoch_length, AVERAGE_EVERY, total if epoch == config.epochs - 1 else None)

    def places_through(self, position: int) -> int:
        """How many snapshot places lie at or before ``position`` of the final epoch."""
        if position <= self.first:
            return 0
        inside = min(position, self.end) - self.first
        last_off_the_grid = position >= self.end and (self.end - self.first) % self.every != 0
        return inside // self.every + int(last_off_the_grid)

    def next_place(self, position: int) -> int:
        """The first snapshot place after ``position``: where an image-by-image run would
        take the next snapshot, so a chunk of images must end there."""
        if position < self.first:
            return min(self.first + self.every, self.end)
        return min(self.first + ((position - self.first) // self.every + 1) * self.every, self.end)

    def add(self, read_weights: "Callable[[], torch.Tensor]", before: int, after: int) -> None:
        """The weights after the images (``before``, ``after``] of the final epoch, once for
        each snapshot place among them (one at batch size 1, where chunks end at places).
        They are read only where a place lies among them: the BindsNET engine copies its
        whole network to give them."""
        import torch

        times = self.places_through(after) - self.places_through(before)
        if times:
            snapshot = read_weights().to(torch.float64) * times
            self.total = snapshot if self.total is None else self.total.add_(snapshot)

    def mean(self) -> "torch.Tensor":
        """The averaged weights (float32), once the epoch is done."""
        import torch

        return (self.total / self.places_through(self.end)).to(torch.float32)
