"""Ray for work that outgrows one process: sweeps' trials and studies' folds.

The one Ray path of snnctl: :func:`ray_session` starts Ray on this machine's cores or
joins a cluster at ``address``; :func:`run_on_tune` runs a trainable over a parameter
space on Ray Tune, continuing the experiment its directory holds (``--resume``), with
what Ray prints kept in a log file and SIGINT/SIGTERM stopping the work at once. Ray is
imported only inside these functions, so ``snnctl --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

from snnctl.errors import ConfigError, SnnctlError
from snnctl.service.common import stop_on_signals


class RayInterrupted(SnnctlError):
    """Work on Ray stopped before it finished (SIGINT/SIGTERM): exit 128 + signal."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def error_line(error: BaseException) -> str:
    """The original exception of a failed trial, in one line (Ray wraps it with a traceback)."""
    cause = getattr(error, "cause", None) or error
    lines = str(cause).strip().splitlines()
    line = lines[-1] if lines else ""
    return line if isinstance(cause, SnnctlError) else f"{type(cause).__name__}: {line}"


def _check_reachable(address: str) -> None:
    """Fail at once, in one line, when nothing listens at ``address`` (Ray's client
    would retry for half a minute first)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"--address {address}: expected auto, ray://HOST:PORT or HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise SnnctlError(f"--address {address}: cannot reach Ray there ({exc.strerror or exc})") from None


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[str]:
    """Ray for the work: the cluster at ``address`` ("auto": the one running on this
    machine), or Ray started on this machine's cores; yields where, in words. A caller
    that started Ray itself keeps its session."""
    import ray

    if address not in (None, "auto"):
        _check_reachable(address)
    if ray.is_initialized():
        yield _where(address)
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a CLI
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=address or "local", **options)
    except Exception as exc:  # ConnectionError, version mismatch, authentication...
        where = f"--address {address}" if address else "Ray on this machine"
        raise SnnctlError(f"{where}: cannot start or connect to Ray: {error_line(exc)}") from None
    try:
        yield _where(address)
    finally:
        ray.shutdown()


def _where(address: str | None) -> str:
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 0))
    return f"{'this machine' if address is None else address}, {cpus} CPUs"


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """What Ray and Tune print or log while trials run goes to ``path``: stdout stays for
    results (--json), stderr for snnctl's own notices and errors."""
    ray_logger = logging.getLogger("ray")
    handlers, propagate = ray_logger.handlers[:], ray_logger.propagate
    with open(path, "a", encoding="utf-8") as log:
        handler = logging.StreamHandler(log)
        ray_logger.handlers, ray_logger.propagate = [handler], False
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            ray_logger.handlers, ray_logger.propagate = handlers, propagate


@contextlib.contextmanager
def _tune_sigint_handler_off() -> Iterator[None]:
    """Tune's own SIGINT handling off (TUNE_DISABLE_SIGINT_HANDLER): it stops gracefully but
    then returns as if the work were complete. :func:`stop_on_signals` (``interrupt``)
    stops the trials at once instead; Tune saves its state every few seconds, and a
    resumed experiment continues from there."""
    tune_handler = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield
    finally:
        if tune_handler is None:
            del os.environ["TUNE_DISABLE_SIGINT_HANDLER"]
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_handler


def run_on_tune(trainable: Callable[..., None], *, make_tuner: Callable[[Any, str], Any], cpus_per_trial: float,
                directory: Path, name: str, log: Path, what: str, resume_hint: str, gpus_per_trial: float = 0.0) -> Any:
    """Run ``trainable`` (wrapped by ``tune.with_parameters`` already) on Tune with
    ``cpus_per_trial`` CPUs (and ``gpus_per_trial`` GPUs) each, in ``directory/name``: continue the experiment there
    (finished trials stay, unfinished ones start again), else ``make_tuner(trainable,
    storage)`` builds a new one. Returns Tune's ResultGrid. Call inside :func:`ray_session`.
    SIGINT/SIGTERM stop the trials at once with :class:`RayInterrupted`, whose message
    names ``what`` stopped ("sweep") and ``resume_hint``, the command that continues."""
    from ray import tune

    trainable = tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    experiment = directory / name
    with _output_to(log), _tune_sigint_handler_off(), stop_on_signals(interrupt=True) as caught:
        try:
            if tune.Tuner.can_restore(str(experiment)):
                tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True,
                                           resume_errored=False)
            else:
                tuner = make_tuner(trainable, str(directory))
            return tuner.fit()
        except KeyboardInterrupt:
            signum = caught.signal or signal.SIGINT
            raise RayInterrupted(f"{what} interrupted by {signal.Signals(signum).name}; continue with: "
                                 f"{resume_hint}", 128 + signum) from None
