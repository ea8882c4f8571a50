"""A per-user cache of tensors that are slow to make: one safetensors file per name under
``$SNNCTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/snnctl``, else ``~/.cache/snnctl``.

Each file carries its key as string metadata (what it was made from: versions, file sizes
and times); a file whose key differs, or that does not read, is made again and replaced.
The cache only saves time: a missing, read-only or corrupt cache never fails a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from snnctl.errors import SnnctlError
from snnctl.files import write_atomic

if TYPE_CHECKING:
    import torch

CACHE_DIR_VARIABLE = "SNNCTL_CACHE_DIR"
Tensors = dict[str, "torch.Tensor"]


def cache_dir() -> Path | None:
    """The cache folder: ``$SNNCTL_CACHE_DIR``, else the XDG base directory's
    ``$XDG_CACHE_HOME/snnctl`` (an absolute path, as the specification requires), else
    ``~/.cache/snnctl``; None when there is no home to put it in."""
    chosen = os.environ.get(CACHE_DIR_VARIABLE)
    if chosen:
        return Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "snnctl"
    try:
        return Path.home() / ".cache" / "snnctl"
    except RuntimeError:  # no HOME and no password entry
        return None


def cached(name: str, key: dict[str, str], make: Callable[[], Tensors]) -> Tensors:
    """The tensors cached as ``name`` when they were made with this ``key``; otherwise
    ``make()``'s, saved for the next call where the cache folder can take them."""
    folder = cache_dir()
    if folder is None:
        return make()
    path = folder / f"{name}.safetensors"
    tensors = read_tensors(path, key)
    if tensors is None:
        tensors = make()
        _write(path, tensors, key)
    return tensors


def read_tensors(path: Path, key: dict[str, str], *, header_only: bool = False) -> Tensors | None:
    """The tensors of the safetensors file ``path`` when its metadata is exactly ``key``
    (with ``header_only``, none: {} says the key matches, only the header was read);
    None when the file is missing, does not read, or was made with another key."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as reader:
            if (reader.metadata() or {}) != key:
                return None
            return {} if header_only else {name: reader.get_tensor(name) for name in reader.keys()}
    except (SafetensorError, OSError, RuntimeError, ValueError):
        return None


def _write(path: Path, tensors: Tensors, key: dict[str, str]) -> None:
    from safetensors.torch import save

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, save(tensors, metadata=key))
    except (OSError, SnnctlError):
        pass  # a cache folder that takes no files costs the next run the time to make them again
