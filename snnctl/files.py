"""Files that are never half-written, and versioned JSON documents read in one place.

Every file snnctl writes (checkpoints, status, manifests, figures, exports, sweep state)
goes through :func:`write_atomic`; every JSON document it reads back with a format name
and version (a sweep's state, a run's split manifest) goes through :func:`read_versioned_json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from snnctl.errors import SnnctlError


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never half.

    A failure (a full disk, a folder not writable) is one :class:`SnnctlError` line; the
    previous file at ``path`` is left as it was and no temporary file stays behind.
    """
    path = Path(path)
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _not_saved(path, exc) from None
    try:
        # mkstemp makes the file private (0600); a shared result gets the usual permissions,
        # where the file system has permissions at all
        with contextlib.suppress(OSError):
            os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException as exc:
        Path(temp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _not_saved(path, exc) from None
        raise
    try:
        # the rename itself survives a power loss only once the folder is synced
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise SnnctlError(f"{path}: written, but its folder could not be synced to disk ({exc.strerror or exc})") from None


def _not_saved(path: Path, exc: OSError) -> SnnctlError:
    return SnnctlError(f"{path}: not saved ({exc.strerror or exc}); any previous file there is unchanged")


def _umask() -> int:
    """The process's umask (reading it means setting it: briefly the common 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_versioned_json(path: Path, fmt: str, version: int, what: str) -> dict[str, Any]:
    """The JSON object in ``path`` whose ``format`` is ``fmt`` and whose ``version`` is at
    most ``version`` (this snnctl reads older ones); one :class:`SnnctlError` line naming
    the file and saying what is wrong otherwise. A missing file raises FileNotFoundError,
    which each caller words for its own case."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError(f"expected a JSON object, got {type(document).__name__}")
        if document.get("format") != fmt:
            raise ValueError(f"format {document.get('format')!r}, expected {fmt!r}")
        found = document.get("version", 0)
        if not isinstance(found, int) or found > version:
            raise ValueError(f"version {found!r} is not one this snnctl reads (up to {version})")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SnnctlError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from None
    return document
