"""Finding runs: the checkpoint a command reads when none is given (the newest finished run)."""

from __future__ import annotations

import json
from pathlib import Path

from snnctl.checkpoint import CHECKPOINT_NAME
from snnctl.config import Config
from snnctl.errors import ConfigError
from snnctl.service.common import STATUS_NAME, Notice, quiet


def finished_checkpoints(log_dir: Path) -> list[Path]:
    """The checkpoints of the finished runs under ``log_dir`` (their status.json says
    "finished"), newest first by the time that status was written."""
    found = []
    for status_path in Path(log_dir).rglob(STATUS_NAME):
        try:
            status = json.loads(status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a run being written, or not ours: not a finished run
        if not isinstance(status, dict):
            continue
        # the file the run saved to: checkpoint.safetensors, or the one a resume continued
        named = status.get("checkpoint")
        checkpoint = status_path.parent / (Path(named).name if isinstance(named, str) and named else CHECKPOINT_NAME)
        if status.get("state") == "finished" and checkpoint.is_file():
            found.append((status_path.stat().st_mtime, checkpoint))
    return [checkpoint for _, checkpoint in sorted(found, key=lambda item: item[0], reverse=True)]


def checkpoint_or_latest(checkpoint: Path | None, log_dir: Path | None = None, notice: Notice = quiet) -> Path:
    """``checkpoint`` when given; else the checkpoint of the newest finished run under
    ``log_dir`` (the default ``log_dir`` of the parameters, ./logs), said by ``notice``."""
    if checkpoint is not None:
        return Path(checkpoint)
    log_dir = Path(log_dir if log_dir is not None else Config().log_dir)
    found = finished_checkpoints(log_dir) if log_dir.is_dir() else []
    if not found:
        raise ConfigError(f"no checkpoint given and no finished run under {log_dir.absolute()} (give a checkpoint, "
                          f"or --log-dir where snnctl train wrote its runs)")
    notice(f"using the newest finished run: {found[0]}")
    return found[0]
