"""A training run's saves: :class:`Checkpointer` writes status.json ("running") when the
run starts, and the checkpoint and status.json every ``checkpoint_every`` samples, at the
end, and when a signal asks the run to stop.

The periodic saves are written on a thread of their own while training goes on: a copy
of the learned tensors is taken at the save's image, and serializing and writing a
6,400-neuron checkpoint (348 MB) no longer holds up the presentations. Saves stay in
order, one at a time: every other save, and leaving the run, waits for the one in flight,
so status.json never says "running" after the run has said "failed" or "finished", and a
periodic save that failed (a full disk) is the run's error at the latest there.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from snnctl import checkpoint as ckpt
from snnctl import network as net
from snnctl.config import Config
from snnctl.service.averaging import WeightAverage
from snnctl.service.common import Interrupted, StopRequest, write_status
from snnctl.service.intervals import RunningAccuracy

if TYPE_CHECKING:
    from snnctl import engine as engines
    from snnctl.readout import LinearReadout, vote


class Checkpointer:
    """Saves the run (checkpoint and status.json) every ``checkpoint_every`` samples (in the
    background), at the end, and when a signal asks it to stop. A context manager: leaving
    it waits for the save in flight."""

    def __init__(self, config: Config, path: Path, engine: "engines.Engine", class_names: list[str],
                 progress: ckpt.Progress, running: RunningAccuracy, info: dict, stop: StopRequest,
                 average: WeightAverage | None = None) -> None:
        self.config, self.engine, self.class_names = config, engine, class_names
        self.progress, self.running, self.info, self.stop = progress, running, info, stop
        self.average = average
        self.path, self.run_dir = path, path.parent
        self.next_save = _next_multiple(progress.samples_seen, config.checkpoint_every)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snnctl-checkpoint")
        self._in_flight: Future | None = None

    def __enter__(self) -> "Checkpointer":
        # a script that polls status.json sees the run from its first image, not from its
        # first periodic save (never, with checkpoint_every: 0)
        write_status(self.run_dir, "running", replace(self.progress, finished=False), self.path)
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        try:
            self.wait()
        except Exception:
            if exc_type is None:
                raise  # else the error that ended the run is the one to report
        finally:
            self._writer.shutdown()

    def wait(self) -> None:
        """Wait for the save in flight; its error (a full disk), if it failed."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def save(self, label_state: "vote.LabelState | None", extra: dict | None = None,
             linear: "LinearReadout | None" = None) -> None:
        """Save now, after the save in flight."""
        self.wait()
        self._write(self._checkpoint(label_state, self.engine.sync(), self.progress, extra, linear))

    def save_if_due(self) -> bool:
        """Start a save in the background when ``checkpoint_every`` more samples were seen,
        of the run as it is now; True when it did."""
        every = self.config.checkpoint_every
        if not every or self.progress.samples_seen < self.next_save:
            return False
        self.next_save = _next_multiple(self.progress.samples_seen, every)
        self.wait()
        tensors = self.engine.sync()
        # the learned tensors change with the next image; the fixed connections do not
        learned = net.NetworkTensors(tensors.weights.clone(), tensors.theta.clone(), tensors.lateral)
        self._in_flight = self._writer.submit(self._write, self._checkpoint(self.running.state, learned,
                                                                            replace(self.progress)))
        return True

    def _checkpoint(self, label_state: "vote.LabelState | None", tensors: net.NetworkTensors,
                    progress: ckpt.Progress, extra: dict | None = None,
                    linear: "LinearReadout | None" = None) -> ckpt.Checkpoint:
        # a copy: the sum grows with the next snapshot, while a periodic save is written
        weights_sum = None if self.average is None or self.average.total is None else self.average.total.clone()
        return ckpt.Checkpoint(self.config, tensors, self.class_names, label_state, progress,
                               None if progress.finished else self.running.window(), {**self.info, **(extra or {})},
                               readout=linear, weights_sum=weights_sum)

    def _write(self, checkpoint: ckpt.Checkpoint) -> None:
        ckpt.save(checkpoint, self.path)
        write_status(self.run_dir, "finished" if checkpoint.progress.finished else "running", checkpoint.progress,
                     self.path)

    def stop_if_asked(self) -> None:
        """After SIGINT/SIGTERM: save where training stands, say so in status.json, stop."""
        if self.stop.signal is not None:
            self.save(self.running.state)
            write_status(self.run_dir, "interrupted", self.progress, self.path)
            raise Interrupted(self.stop.signal, self.path)


def _next_multiple(value: int, step: int) -> int:
    return (value // step + 1) * step if step else 0
