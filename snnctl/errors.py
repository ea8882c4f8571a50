"""The two kinds of error a user can cause, mapped to the CLI's exit codes."""


class SnnctlError(Exception):
    """A failure while running (bad data, bad checkpoint): exit code 1."""

    exit_code = 1


class ConfigError(SnnctlError):
    """Bad usage or a bad parameter file: exit code 2."""

    exit_code = 2


class WarningText(str):
    """A notice that warns (an image skipped as unreadable): the CLI shows it as a
    ``warning:`` line, a plain notice as ``notice:``. Passed to any Notice callback."""
