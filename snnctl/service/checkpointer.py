"""A training run's saves: :class:`Checkpointer` writes the checkpoint and status.json
every ``checkpoint_every`` samples, at the end, and when a signal asks the run to stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from snnctl import checkpoint as ckpt
from snnctl.config import Config
from snnctl.service.common import Interrupted, StopRequest, write_status
from snnctl.service.intervals import RunningAccuracy

if TYPE_CHECKING:
    from snnctl import engine as engines
    from snnctl.readout import LinearReadout, vote


class Checkpointer:
    """Saves the run (checkpoint and status.json) every ``checkpoint_every`` samples, at the
    end, and when a signal asks it to stop."""

    def __init__(self, config: Config, path: Path, engine: "engines.Engine", class_names: list[str],
                 progress: ckpt.Progress, running: RunningAccuracy, info: dict, stop: StopRequest) -> None:
        self.config, self.engine, self.class_names = config, engine, class_names
        self.progress, self.running, self.info, self.stop = progress, running, info, stop
        self.path, self.run_dir = path, path.parent
        self.next_save = _next_multiple(progress.samples_seen, config.checkpoint_every)

    def save(self, label_state: "vote.LabelState | None", extra: dict | None = None,
             linear: "LinearReadout | None" = None) -> None:
        finished = self.progress.finished
        ckpt.save(ckpt.Checkpoint(self.config, self.engine.sync(), self.class_names, label_state, self.progress,
                                  None if finished else self.running.window(), {**self.info, **(extra or {})},
                                  readout=linear),
                  self.path)
        write_status(self.run_dir, "finished" if finished else "running", self.progress, self.path)

    def save_if_due(self) -> bool:
        """Save when ``checkpoint_every`` more samples were seen; True when it saved."""
        every = self.config.checkpoint_every
        if not every or self.progress.samples_seen < self.next_save:
            return False
        self.next_save = _next_multiple(self.progress.samples_seen, every)
        self.save(self.running.state)
        return True

    def stop_if_asked(self) -> None:
        """After SIGINT/SIGTERM: save where training stands, say so in status.json, stop."""
        if self.stop.signal is not None:
            self.save(self.running.state)
            write_status(self.run_dir, "interrupted", self.progress, self.path)
            raise Interrupted(self.stop.signal, self.path)


def _next_multiple(value: int, step: int) -> int:
    return (value // step + 1) * step if step else 0
