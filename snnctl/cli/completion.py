"""Shell completion of values (Typer's ``--install-completion`` completes commands and options):
checkpoint paths and ``--set`` keys."""

from __future__ import annotations

import os
from pathlib import Path

from snnctl import choices
from snnctl import config as cfg

CHECKPOINT_SUFFIX = ".safetensors"
# How many folders below the one typed are searched: a sweep trial's checkpoint,
# logs/TASK/sweep-ID/runs/TRIAL/checkpoint.safetensors, lies four below logs.
MAX_DEPTH = 4


def checkpoints(incomplete: str) -> list[str]:
    """The checkpoints (*.safetensors) whose path starts with ``incomplete``, those in the
    folders it names included (down to :data:`MAX_DEPTH`): whole paths, so that one match is
    a finished word in every shell, and several complete to their common folder."""
    folder, prefix = os.path.split(incomplete)
    try:
        entries = sorted(Path(folder or ".").iterdir())
    except OSError:
        return []
    matches = []
    for entry in entries:
        if entry.name.startswith(prefix) and _shown(entry.name, prefix):
            path = os.path.join(folder, entry.name)
            matches += _checkpoints_in(path, MAX_DEPTH) if entry.is_dir() else [path] * _is_checkpoint(path)
    return matches


def _shown(name: str, prefix: str) -> bool:
    """Hidden files and folders are offered only when the user types their dot."""
    return not name.startswith(".") or prefix.startswith(".")


def _is_checkpoint(path: str) -> bool:
    return path.endswith(CHECKPOINT_SUFFIX) and os.path.isfile(path)


def _checkpoints_in(folder: str, depth: int) -> list[str]:
    """The checkpoints in ``folder`` and its visible subfolders, at most ``depth`` levels down."""
    found = []
    for root, folders, files in os.walk(folder):
        level = root[len(folder):].count(os.sep)
        folders[:] = sorted(name for name in folders if _shown(name, "") and level < depth)
        found += [os.path.join(root, name) for name in sorted(files) if name.endswith(CHECKPOINT_SUFFIX)]
    return found


def set_keys(incomplete: str) -> list[str]:
    """``KEY=`` for each parameter (Config key) that starts with ``incomplete``, for ``--set``.

    Where one key is left, ``KEY=VALUE`` for its values (:func:`values_of`) follow ``KEY=``:
    a lone ``KEY=`` is a finished word to bash, and Typer's bash script lets it add a space
    after the ``=``; with several words bash inserts what they share, ``KEY=``, and no space.
    What zsh and fish pass with its ``=`` (``KEY=VAL``) completes to those values."""
    key, equals, typed = incomplete.partition("=")
    if equals:
        return [f"{key}={value}" for value in values_of(key) if value.startswith(typed)] if key in cfg.KEYS else []
    keys = [key for key in cfg.KEYS if key.startswith(incomplete)]
    if len(keys) != 1:
        return [f"{key}=" for key in keys]
    return [f"{keys[0]}=", *(f"{keys[0]}={value}" for value in values_of(keys[0]))]


def values_of(key: str) -> list[str]:
    """The values offered for a parameter: its choices, true and false, or else its default
    (as YAML writes it: null for none)."""
    if key in choices.CHOICES:
        return list(choices.CHOICES[key])
    if cfg.FIELD_TYPES[key] is bool:
        return ["true", "false"]
    default = getattr(cfg.Config(), key)
    return ["null" if default is None else str(default)]
