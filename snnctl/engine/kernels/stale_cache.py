"""Keep numba's on-disk cache of the kernels in step with their sources.

numba stamps a cached function with the modification time and size of its own file
only. A kernel that inlines a function from another file (``present`` calls into
``neurons`` and ``stdp``) therefore keeps its stale machine code after an upgrade
that changes only the other file, and would silently simulate the old dynamics. We
stamp the whole package instead: one hash of every kernel source, and the cache is
dropped whenever that hash changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent
# Sources outside the kernels whose values the compiled code freezes: the rule and
# reduction codes (choices.ONE_SPIKE_RULES, REDUCTIONS) and the parameter tuples. Every
# snnctl module a kernel imports from outside the kernels belongs here (a test checks).
FROZEN_SOURCES = (KERNEL_DIR.parents[1] / "choices.py", KERNEL_DIR.parent / "params.py")
STAMP_NAME = "kernel-sources.sha256"


def sources_digest(kernel_dir: Path = KERNEL_DIR, frozen: tuple[Path, ...] = FROZEN_SOURCES) -> str:
    """SHA-256 over the names and bytes of every kernel source file, in name order, and of
    the ``frozen`` sources whose values they compile in."""
    digest = hashlib.sha256()
    for path in [*sorted(kernel_dir.glob("*.py")), *frozen]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def drop_stale_cache(kernel_dir: Path = KERNEL_DIR, frozen: tuple[Path, ...] = FROZEN_SOURCES) -> bool:
    """Remove numba's cached kernels in ``kernel_dir/__pycache__`` if any kernel source or
    ``frozen`` source changed since they were written; return whether anything was dropped. A cache that
    cannot be written is left to numba, which then compiles without one."""
    cache = kernel_dir / "__pycache__"
    stamp = cache / STAMP_NAME
    digest = sources_digest(kernel_dir, frozen)
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    stale = [*cache.glob("*.nbi"), *cache.glob("*.nbc")]
    try:
        for path in stale:
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        return False
    return bool(stale)
