"""One run per directory: a lock file that a run creates atomically when it starts.

``train`` (and so every trial of a sweep and its final run) claims its run directory by
creating ``.snnctl.lock`` with ``os.open(O_CREAT | O_EXCL)``, which exactly one process
can do, writing its pid, host and start time into it; it removes the file when it ends,
also on an error or a signal. A second run into the same directory finds the lock and
stops with one line. A lock whose process is gone (a run killed with ``kill -9``, a
machine that lost power) is stale: it is reported and taken over. Only a process of this
host can be checked: a lock of another host's run (a shared file system) stays until its
run removes it, or a user who knows that run is gone (the error says how).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from snnctl.errors import ConfigError
from snnctl.service.common import Notice

LOCK_NAME = ".snnctl.lock"


def _holder() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _read_holder(path: Path) -> dict | None:
    """The lock's holder; None when the file is gone, {} when it cannot be read (a run that
    is creating it right now, or one killed between creating and filling it: treated as
    live, and the error says to remove it only if no run writes there)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _alive(holder: dict) -> bool:
    """Whether the holder may still run: a process of this host that exists, or any process
    of another host (which cannot be checked from here)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _create(path: Path) -> dict | None:
    """Create the lock holding this process; its entry, or None if the lock exists."""
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    except OSError as exc:
        raise _unwritable(path.parent, exc) from None
    holder = _holder()
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(json.dumps(holder) + "\n")
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise _unwritable(path.parent, exc) from None
    return holder


def _unwritable(run_dir: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"{run_dir}: cannot write in the run directory ({exc.strerror or exc})")


def _take_over_stale(path: Path, holder: dict, notice: Notice) -> None:
    """Move a stale lock aside if it is still the one read (another process may have taken
    it over since), and say so."""
    aside = path.with_name(f"{LOCK_NAME}.stale-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if _read_holder(aside) != holder:  # a live lock created since it was read: put it back
        os.rename(aside, path)
        return
    aside.unlink(missing_ok=True)
    notice(f"{path}: a stale lock of a run that is gone (pid {holder.get('pid')}, started "
           f"{holder.get('started')}); taking the run directory over")


def _in_use(path: Path, holder: dict) -> str:
    """The error for a lock held by a live run, or by a run of another host that this one
    cannot check: how to remove the lock once that run is known to be gone."""
    if not holder:
        return f"{path.parent}: in use by another run (lock file {path}; remove it only if no run writes there)"
    running = f"the run of pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
    if holder.get("host") != socket.gethostname():
        return (f"{path.parent}: in use by {running}, which cannot be checked from this host; if that run is "
                f"gone, remove its lock: rm {shlex.quote(str(path))}")
    return f"{path.parent}: in use by {running} (lock file {path}; remove it only if no run writes there)"


def _acquire(path: Path, notice: Notice) -> dict:
    """Create the lock ``path`` for this process, taking over a stale one; its entry."""
    for _ in range(3):
        mine = _create(path)
        if mine is not None:
            return mine
        holder = _read_holder(path)
        if holder is None:
            continue  # released since: create it again
        if not holder or _alive(holder):
            raise ConfigError(_in_use(path, holder))
        _take_over_stale(path, holder, notice)
    raise ConfigError(f"{path.parent}: in use by another run (lock file {path})")


def holds_nothing(run_dir: Path) -> bool:
    """``run_dir`` holds nothing but its lock: no run has written there yet."""
    return all(entry.name == LOCK_NAME for entry in Path(run_dir).iterdir())


@contextmanager
def claim_directory(run_dir: Path, notice: Notice, *, empty: bool) -> Iterator[Path]:
    """Hold ``run_dir`` (created if missing) for one run until the block ends.

    With ``empty``, the directory must hold nothing else once claimed: the check that
    :func:`snnctl.service.common.new_directory` made earlier is repeated under the lock,
    where no other run can slip in between. Any failure is one ConfigError line (exit 2).
    """
    run_dir = Path(run_dir)
    # made here, deepest first: a run that stops before writing anything leaves none of
    # them behind (log_dir/TASK included, on a first run refused for its data)
    created = [folder for folder in (run_dir, *run_dir.parents) if not folder.exists()]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{run_dir}: cannot create the run directory ({exc.strerror or exc})") from None
    try:
        mine = _acquire(run_dir / LOCK_NAME, notice)
    except BaseException:
        _remove_empty(created)
        raise
    path = run_dir / LOCK_NAME
    try:
        if empty and not holds_nothing(run_dir):
            raise ConfigError(f"{run_dir}: exists and is not an empty directory (use --force, another name, "
                              f"or --resume)")
        yield run_dir
    finally:
        if _read_holder(path) == mine:
            path.unlink(missing_ok=True)
        _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is empty; one that is not stays, with
    every folder above it."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
