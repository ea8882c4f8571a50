"""The one output path of the command line: every command's result, error and progress.

Results go to stdout (a rich table, or one JSON document with --json); progress,
notices and warnings to stderr. A :class:`SnnctlError` is one ``error:`` line and its
exit code (1 a failure while running, 2 bad usage or parameters, 128 + signal when
interrupted), never a traceback unless ``--debug``.
"""

from __future__ import annotations

import json
import signal
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from snnctl.errors import SnnctlError, WarningText

# Typer raises click's usage errors; newer Typer bundles its own click, so the classes are
# taken from typer.BadParameter's ancestry rather than imported from click.
_USAGE_ERRORS = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError, ClickException = _USAGE_ERRORS["UsageError"], _USAGE_ERRORS["ClickException"]

# Off a terminal (`| tee run.log`, a CI log) Rich would assume 80 columns and fold long
# table cells; paths are copied from there, so tables take the width they need.
out = Console() if sys.stdout is not None and sys.stdout.isatty() else Console(width=10_000)
err = Console(stderr=True)
state = {"debug": False}

Result = TypeVar("Result")
# What a command shows of its result without --json: tables, or plain lines (paths).
Rendering = Sequence["RenderableType | str"]


def error(message: str) -> None:
    """One ``error:`` line on stderr."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def failed(message: str, code: int, as_json: bool) -> None:
    """An error as every command reports it: one ``error:`` line on stderr and, with
    ``as_json``, ``{"error": ..., "exit_code": ...}`` on stdout, so that a script reading
    stdout always gets a document."""
    error(message)
    if as_json:
        sys.stdout.write(json.dumps({"error": message, "exit_code": code}) + "\n")


def asks_for_json(argv: Sequence[str]) -> bool:
    """Whether a command line has the --json flag (before a ``--``), read from its words:
    a usage error stops click before it has parsed the flag."""
    words = list(argv)
    return "--json" in (words[:words.index("--")] if "--" in words else words)


def notice(message: str) -> None:
    """One ``notice:`` line on stderr (the service layer's Notice callback); a
    :class:`snnctl.errors.WarningText` is a ``warning:`` line."""
    label = "[magenta]warning:[/magenta]" if isinstance(message, WarningText) else "[yellow]notice:[/yellow]"
    err.print(f"{label} {escape(message)}", highlight=False, soft_wrap=True)


class UntypedFlags:
    """Help without a type after a flag: Typer 0.29 shows each option's type, and a flag's,
    ``--json <bool>``, reads as if the flag took a value."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(UntypedFlags, TyperCommand):
    """Every snnctl command (``app.command(cls=Command)``)."""


class CommandGroup(UntypedFlags, TyperGroup):
    """``snnctl``: a usage error (unknown option, bad value) is one ``error:`` line and exit 2,
    as every other snnctl error, instead of click's usage panel; with --json also its JSON
    document."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        # click's main(args=None, ...): the words it parses, sys.argv's when not given
        argv = kwargs.get("args", args[0] if args else None)
        words = list(sys.argv[1:] if argv is None else argv)
        as_json = asks_for_json(words)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command: its help, already rendered
                sys.stdout.write(exc.format_message())
                sys.exit(exc.exit_code)
            path, command = self._command_of(words)
            if exc.ctx is not None:
                path = exc.ctx.command_path
            message = _missing_value(exc, command, words) or exc.format_message().replace("Value error, ", "")
            failed(f"{path}: {message.rstrip('.')} (see {path} --help)", exc.exit_code, as_json)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            failed(exc.format_message(), exc.exit_code, as_json)
            sys.exit(exc.exit_code)
        except typer.Abort:
            failed("aborted", 1, as_json)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def _command_of(self, words: list[str]) -> tuple[str, Any]:
        """The command a command line's words name and its path (``snnctl visualize roc``):
        a usage error that click raises while parsing options has no context to say it."""
        names, command = [self.name or "snnctl"], self
        for word in words:
            found = getattr(command, "commands", {}).get(word)
            if found is not None:
                names.append(word)
                command = found
        return " ".join(names), command


def _missing_value(exc: Exception, command: Any, words: list[str]) -> str | None:
    """For an option given last with no value, which its metavar names (``--set``:
    KEY=VALUE): a line that says so; None for any other usage error."""
    option = getattr(exc, "option_name", None)
    if option is None or not words or words[-1] != option:
        return None
    wanted = [param.metavar for param in getattr(command, "params", []) if option in param.opts and param.metavar]
    return f"{option} needs a value: {wanted[0]}" if wanted else None


@contextmanager
def reported(as_json: bool = False) -> Iterator[None]:
    """A user error becomes one line on stderr and its exit code, never a traceback; with
    ``as_json`` also its JSON document on stdout (:func:`failed`)."""
    try:
        yield
    except (SnnctlError, KeyboardInterrupt) as exc:
        if state["debug"]:
            raise
        # Ctrl-C outside training (loading data, or while a stopped run unwinds)
        message, code = (str(exc), exc.exit_code) if isinstance(exc, SnnctlError) else ("interrupted by SIGINT", 130)
        if code > 128:
            # the process is ending (a stopped run is saved); more Ctrl-C would only break
            # the interpreter's exit handlers with tracebacks
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
        failed(message, code, as_json)
        raise typer.Exit(code) from None


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[Any], None]]:
    """A rich progress bar on a terminal (stderr); a no-op callback elsewhere."""
    if not (enabled and err.is_terminal):
        yield lambda update: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[rate]:.0f} img/s"), TextColumn("{task.fields[accuracy]}"), TimeRemainingColumn()]
    with Progress(*columns, console=err, transient=True) as progress:
        tasks: dict[str, int] = {}

        def update(event) -> None:
            if event.phase not in tasks:
                tasks[event.phase] = progress.add_task(event.phase, total=event.total, rate=0.0, accuracy="")
            accuracy = f"acc {event.running_accuracy:.1%}" if event.running_accuracy is not None else ""
            progress.update(tasks[event.phase], completed=event.done, rate=event.samples_per_second, accuracy=accuracy)

        yield update


def run(call: Callable[[Callable[[Any], None]], Result], show: Callable[[Result], Rendering],
        as_json: bool) -> Result:
    """Every command's runner: ``call(on_progress)`` (one service function), its errors as
    one line, then ``--json``'s one document or what ``show`` makes of the result."""
    with reported(as_json), progress_bar(not as_json) as on_progress:
        result = call(on_progress)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return result
    for item in show(result):
        if isinstance(item, str):
            sys.stdout.write(item + "\n")
        else:
            out.print(item)
    return result


def key_values(title: str, rows: list[tuple[str, object]]) -> Table:
    """A two-column table: one result field per row."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # paths are copied by users: never cut them short
    for key, value in rows:
        table.add_row(key, escape(str(value)))
    return table


def accuracy_rows(prefix: str, accuracy) -> list[tuple[str, object]]:
    """Rows of an :class:`snnctl.service.Accuracy`: both votes."""
    return [(f"{prefix} (all activity)", f"{accuracy.all_activity:.2%}"),
            (f"{prefix} (proportion weighting)", f"{accuracy.proportion_weighting:.2%}")]


def examples(*commands: str, note: str = "") -> str:
    """A command's --help epilog: its examples, then an optional note."""
    text = "Examples:\n\n" + "\n\n".join(f"  {command}" for command in commands)
    return text + (f"\n\n{note}" if note else "")
