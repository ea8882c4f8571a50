"""Shell completion of values (Typer's ``--install-completion`` completes commands and options):
checkpoint paths and ``--set`` keys."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from snnctl import config as cfg

CHECKPOINT_SUFFIX = ".safetensors"


def checkpoints(incomplete: str) -> list[str]:
    """The checkpoints (*.safetensors) and folders whose path starts with ``incomplete``;
    folders end with a slash so the shell goes on into them."""
    folder, prefix = os.path.split(incomplete)
    try:
        entries = sorted(Path(folder or ".").iterdir())
    except OSError:
        return []
    matches = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        path = os.path.join(folder, entry.name)
        if entry.is_dir():
            matches.append(path + os.sep)
        elif entry.name.endswith(CHECKPOINT_SUFFIX):
            matches.append(path)
    return matches


def set_keys(incomplete: str) -> list[str]:
    """``KEY=`` for each parameter (Config key) that starts with ``incomplete``, for ``--set``."""
    return [f"{field.name}=" for field in dataclasses.fields(cfg.Config) if field.name.startswith(incomplete)]
