"""Checks of one value, shared by parameter files (snnctl.config) and search spaces
(snnctl.space), so both give the same error for the same mistake: each returns the value
or raises a :class:`ConfigError` (exit code 2) that names where it was found.
"""

from __future__ import annotations

import difflib
import math
import reprlib
from typing import Any

from snnctl.errors import ConfigError

# Values in messages are shown abridged: within the alias limit, a YAML value can still be a
# list of 10**9 shared items, which a plain repr would try to print in full.
_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 80
_SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxdict = 2, 4, 4


def show(value: Any) -> str:
    """A value as error messages show it, abridged; true, false and null as YAML and
    ``--set`` write them."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return _SHOW.repr(value)


WORKERS_EXPECTED = "auto or an integer >= 1"


def is_worker_count(value: str) -> bool:
    """Whether ``value`` is a ``workers`` setting: ``auto`` or a whole number of threads."""
    return value == "auto" or (value.isdecimal() and value.isascii() and int(value) >= 1)


def yaml_quoted(text: str) -> str:
    """``text`` as a YAML file or ``--set`` gives it, in single quotes (a quote doubled), so
    that a regular expression reads as typed: ``'^(P\\d+)_'``, not Python's ``'^(P\\\\d+)_'``."""
    return "'" + text.replace("'", "''") + "'"


def one_of(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; else a ConfigError naming ``where``."""
    if value not in allowed:
        raise ConfigError(f"{where}: {show(value)} is not one of {', '.join(allowed)}")
    return value


def integer(value: Any, where: str, minimum: int) -> int:
    """``value`` if it is an integer >= ``minimum`` (not a bool); else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: {show(value)} is not an integer >= {minimum}")
    return value


def positive(value: Any, where: str) -> float:
    """``value`` as a float if it is a finite number > 0; else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: {show(value)} is not a number > 0")
    return float(value)


def unknown_key(key: str, source: str, known: tuple[str, ...]) -> ConfigError:
    """The error for a key that is not one of ``known``, with the nearest one as a hint."""
    near = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return ConfigError(f"{source}: unknown key {show(key)}{hint}")
