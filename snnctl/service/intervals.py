"""What training measures every ``update_interval`` samples: :class:`RunningAccuracy`
(the original's training-time estimate) and :class:`IntervalLog` (its TensorBoard scalars).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snnctl.config import Config
from snnctl.service.common import Accuracy, score

if TYPE_CHECKING:
    import torch

    from snnctl.logs import RunLog
    from snnctl.readout import vote


class RunningAccuracy:
    """The original's training-time estimate: every update_interval samples, score them
    with the assignment made from the previous interval, then reassign from them."""

    def __init__(self, config: Config, window: "tuple[torch.Tensor, torch.Tensor] | None",
                 state: "vote.LabelState | None") -> None:
        self.config = config
        self.counts = [window[0]] if window is not None else []
        self.labels = [window[1]] if window is not None else []
        self.size = sum(len(t) for t in self.labels)  # samples in the window, kept as they come
        self.state = state
        self.latest: Accuracy | None = None

    def add(self, counts: "torch.Tensor", targets: "torch.Tensor") -> Accuracy | None:
        """Add one batch; the interval's accuracy when it completes one (None before the
        first assignment exists)."""
        import torch

        from snnctl.readout import vote

        self.counts.append(counts)
        self.labels.append(targets)
        self.size += len(targets)
        if self.size < self.config.update_interval:
            return None
        window_counts, window_labels = torch.cat(self.counts), torch.cat(self.labels)
        self.counts, self.labels, self.size = [], [], 0
        scored = None
        if self.state is not None:
            scored, _ = score(window_counts, window_labels, self.state, self.config.n_classes, self.config.reduction)
            self.latest = scored
        self.state = vote.assign(window_counts, window_labels, self.config.n_classes, self.config.reduction)
        return scored

    def window(self) -> "tuple[torch.Tensor, torch.Tensor] | None":
        """The samples of the interval in progress (a checkpoint keeps them for resume)."""
        import torch

        if not self.counts:
            return None
        return torch.cat(self.counts), torch.cat(self.labels)


class IntervalLog:
    """TensorBoard scalars of each measured interval: both accuracies, simulation time, speed."""

    def __init__(self, run_log: "RunLog") -> None:
        self.run_log = run_log
        self.simulated = 0.0  # seconds in the engine since the last measurement

    def measured(self, samples_seen: int, accuracy: Accuracy, samples_per_second: float) -> None:
        self.run_log.scalars(samples_seen, {
            "accuracy/all_activity": accuracy.all_activity,
            "accuracy/proportion_weighting": accuracy.proportion_weighting,
            "time/simulation": self.simulated,
            "throughput/samples_per_second": samples_per_second,
        })
        self.simulated = 0.0
