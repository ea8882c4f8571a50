"""Runs of a study or a sweep trained in lockstep: ``networks_per_device`` of them at once
on ``device`` (:mod:`snnctl.engine.lockstep`, :mod:`snnctl.engine.many`).

Each run is an ordinary training run in a thread of its own: its directory, checkpoint,
labelling, test and files are those it would have alone on the fast engine, and so are
its figures, as every network learns bit for bit what it would alone. Only its STDP
presentations are stepped together with the other runs of its group; with learning off
(labels, test) each run presents on its own copy of its network on the same device.
Runs are grouped in order, ``networks_per_device`` at a time; a group's runs share a
network shape (the runs of a study or of a trial's folds do).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

from snnctl.config import Config
from snnctl.engine.lockstep import LockstepGroup, Seat, check_lockstep, seated
from snnctl.service.common import Notice, quiet

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def in_lockstep(config: Config) -> bool:
    """Whether the runs of a study or sweep of ``config`` train in lockstep."""
    return config.networks_per_device is not None


def run_config(config: Config) -> Config:
    """The parameters each run of a lockstep group keeps: those of a run on the fast engine
    (its checkpoint evaluates on the CPU, as the run alone would)."""
    return config.replace(device="cpu", engine="auto")


def group_device(config: Config) -> "torch.device":
    """Where the groups run: ``device``, ``auto`` being CUDA where present, as for the
    other torch engine (``cuda`` where there is none: a ConfigError)."""
    from snnctl.engine.policy import resolve_device

    return resolve_device(config, "bindsnet")


def gpus_per_run(config: Config) -> float:
    """GPUs a sweep's trial reserves on Ray (which hides the others from it): the one its
    lockstep groups run on, where they run on CUDA."""
    return 1.0 if in_lockstep(config) and group_device(config).type == "cuda" else 0.0


def check(config: Config, source: str) -> None:
    """Refuse, before anything is written, what cannot run in lockstep (one ConfigError line)."""
    check_lockstep(config, source)
    group_device(config)


def run_in_lockstep(config: Config, runs: Sequence[Callable[[], T]], source: str, notice: Notice = quiet) -> list[T]:
    """Call each of ``runs`` (each trains one network through ``engine.make_engine``) in a
    thread of its own, ``config.networks_per_device`` at a time in one lockstep group on
    ``config``'s device; their results in order. The first error of a run is raised once
    every run of its group has ended. ``notice`` hears each group start."""
    check(config, source)
    device = group_device(config)
    width = config.networks_per_device or 1
    results: list = [None] * len(runs)
    errors: list[BaseException] = []
    for start in range(0, len(runs), width):
        group = LockstepGroup(min(width, len(runs) - start), device)
        notice(f"{source}: runs {start + 1} to {start + group.expected} of {len(runs)} in lockstep on {device}")

        def member(position: int, seat: Seat) -> None:
            with seated(seat):
                try:
                    results[position] = runs[position]()
                except BaseException as exc:  # reported below, after the group has ended
                    errors.append(exc)

        threads = [threading.Thread(target=member, args=(k, group.seat()), name=f"lockstep-{k}", daemon=True)
                   for k in range(start, min(start + width, len(runs)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
    return results
