"""The one YAML reader of parameter files, ``--set`` values and search-space files:
``yaml.safe_load`` bounded in size, depth and alias expansion, refusing a key given twice,
with errors that name the file, line and column (:class:`ConfigError`, exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from snnctl.errors import ConfigError
from snnctl.validators import show

MAX_YAML_BYTES = 1 << 20
MAX_YAML_ALIASES = 100
# Parameter files nest three levels deep; PyYAML's scanner slows down with the square of
# the depth (a 1 MB file of "[" would take hours) and its composer recurses once per level.
MAX_YAML_DEPTH = 32


def _check_structure(text: str, source: str) -> None:
    """Refuse YAML whose aliases could expand without bound (a 'billion laughs' file) or
    that nests deeper than a parameter file does, stopping as soon as it sees either."""
    aliases = depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise ConfigError(f"{source}: more than {MAX_YAML_ALIASES} YAML aliases, not a parameter file")
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"{source}: nested more than {MAX_YAML_DEPTH} levels deep, not a parameter file")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _yaml_error(exc: yaml.YAMLError, source: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).partition("\n")[0]
    return ConfigError(f"{source}:{where}: not valid YAML: {problem}")


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that names one key twice; PyYAML alone would keep the last value."""

    def __init__(self, key: Any, first: yaml.Mark, second: yaml.Mark) -> None:
        super().__init__(None, None, f"key {show(key)} appears twice", second)
        self.key = key
        if first.line == second.line:  # a flow mapping: {a: 1, a: 2}
            self.where = f"line {first.line + 1}, columns {first.column + 1} and {second.column + 1}"
        else:
            self.where = f"lines {first.line + 1} and {second.line + 1}"


class StrictSafeLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader (no Python tags) that refuses a key given twice in one mapping:
    a parameter file with ``task: MNIST`` and later ``task: MAMMO`` would otherwise run
    whichever came last without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                # Merge keys (<<) may be overridden by the mapping's own keys, as YAML allows;
                # only the keys written in this mapping are compared.
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: SafeConstructor refuses it with its own error
                if first is not None:
                    raise DuplicateKeyError(key, first, key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` with bounded size, depth and alias expansion, errors with line numbers.

    The one YAML reader for parameter files, ``--set`` values and search-space files: safe
    (no Python tags) and strict (a key given twice in one mapping is an error)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_YAML_BYTES} bytes, not a parameter file")
    try:
        _check_structure(text, source)
        # StrictSafeLoader is a SafeLoader: this is yaml.safe_load plus the duplicate check.
        return yaml.load(text, Loader=StrictSafeLoader)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{source}: key {show(exc.key)} appears twice ({exc.where})") from None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from exc
    except ValueError as exc:
        # PyYAML converts scalars with int() and date(): 5,000 digits, a 13th month
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None


def read_yaml_file(path: str | Path, what: str) -> Any:
    """The YAML document in ``path`` (:func:`parse_yaml`); ``what`` names the kind of file
    in the error when it is missing ("parameter file", "search-space file")."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    return parse_yaml(text, source)


def yaml_number(value: Any) -> Any:
    """YAML 1.1 reads 5e-5 (no dot) as a string: the number it means, where a number is
    expected; any other value as it is."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
