"""Training runs in lockstep: runs that each train their own network, in their own threads,
whose STDP presentations one :class:`~snnctl.engine.many.ManyNetworks` steps together.

Each run sees an ordinary :class:`~snnctl.engine.base.Engine` (:class:`LockstepMember`)
from :func:`snnctl.engine.make_engine`: a thread given a :class:`Seat` in a
:class:`LockstepGroup` (:func:`seated`) gets, at its first ``make_engine``, its member of
the group. A learning call hands its images to the group and waits: once every member
still learning has handed some in, one of the waiting threads presents them image by
image, all networks at once, until the shortest hand-in is done. Each network learns
exactly what it would alone on the fast engine, so the runs' results are theirs. With
learning off (labelling, testing) a member runs on its own copy of its network, on the
group's device.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from snnctl import network as net
from snnctl.config import Config
from snnctl.engine.base import Engine, Presentation
from snnctl.errors import ConfigError, SnnctlError


def check_lockstep(config: Config, source: str) -> None:
    """What a lockstep run needs: one image at a time (batch 1, the point of running many
    networks at once), Poisson input (the fast engine's events), one potentiation rate
    for every neuron and the weights it learned (no averaging)."""
    if config.batch_size != 1:
        raise ConfigError(f"{source}: networks_per_device: networks learn one image at a time in lockstep; "
                          f"batch_size is {config.batch_size} (set batch_size: 1)")
    if config.encoder != "PoissonEncoder":
        raise ConfigError(f"{source}: networks_per_device: only the PoissonEncoder runs in lockstep, not "
                          f"{config.encoder!r}")
    if config.nu_post_theta is not None:
        raise ConfigError(f"{source}: networks_per_device: nu_post_theta runs on the fast engine only, not in "
                          f"lockstep (set networks_per_device: null)")
    if config.average_weights is not None:
        raise ConfigError(f"{source}: networks_per_device: average_weights is not run in lockstep (set "
                          f"networks_per_device: null, or average_weights: null)")


@dataclass
class _HandIn:
    """Images a member hands in to learn, one at a time, and where they stand."""

    images: torch.Tensor
    seeds: Sequence[int]
    counts: torch.Tensor
    done: int = 0


@dataclass
class Seat:
    """A thread's place in a group: becomes member ``index`` at its first ``make_engine``."""

    group: "LockstepGroup"
    index: int | None = None
    left: bool = False


class LockstepGroup:
    """Up to ``size`` networks of one shape learning in lockstep on ``device``."""

    def __init__(self, size: int, device: torch.device | str) -> None:
        self.expected = size
        self.device = torch.device(device)
        self.lock = threading.Condition()
        self.joining: list[tuple[Config, net.NetworkTensors]] = []
        self.many = None  # ManyNetworks, once every seat has joined or gone
        self.learning: set[int] = set()
        self.pending: dict[int, _HandIn] = {}

    def seat(self) -> Seat:
        return Seat(self)

    def join(self, seat: Seat, config: Config, tensors: net.NetworkTensors) -> "LockstepMember":
        """``seat``'s member for ``config``, once every seat has joined (or gone)."""
        with self.lock:
            seat.index = len(self.joining)
            self.joining.append((config, tensors))
            self.learning.add(seat.index)
            self._build_when_complete()
            while self.many is None:
                self.lock.wait()
            if isinstance(self.many, BaseException):
                raise SnnctlError(f"lockstep group: could not start ({self.many})")
        return LockstepMember(seat, config)

    def leave(self, seat: Seat) -> None:
        """The seat's thread learns no more (labelling, or gone, joined or not)."""
        with self.lock:
            if seat.left:
                return
            seat.left = True
            if seat.index is None:
                self.expected -= 1
                self._build_when_complete()
            else:  # what it had handed in and not learned (it failed) is dropped
                self.learning.discard(seat.index)
                self.pending.pop(seat.index, None)
            self.lock.notify_all()

    def _build_when_complete(self) -> None:
        if self.many is not None or len(self.joining) < self.expected or not self.joining:
            return
        from snnctl.engine.many import ManyNetworks

        try:
            self.many = ManyNetworks([c for c, _ in self.joining], [t for _, t in self.joining], self.device)
        except (ValueError, RuntimeError) as exc:
            self.many = exc
        self.lock.notify_all()

    def learn(self, index: int, images: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        """Member ``index`` learns ``images``, one per seed, in lockstep with the others."""
        hand_in = _HandIn(images, seeds, torch.zeros(len(images), self.many.weights.shape[2], dtype=torch.int32))
        with self.lock:
            self.pending[index] = hand_in
            while hand_in.done < len(images):
                if set(self.pending) >= self.learning:
                    self._run_round()
                else:
                    self.lock.wait()
        return hand_in.counts

    def _run_round(self) -> None:
        """Present the pending images image by image, every pending network at once,
        until the shortest hand-in is done; wake its member."""
        members = sorted(self.pending)
        length = min(len(h.images) - h.done for h in self.pending.values())
        for _ in range(length):
            batch = torch.stack([self.pending[k].images[self.pending[k].done] for k in members])
            seeds = [int(self.pending[k].seeds[self.pending[k].done]) for k in members]
            counts = self.many.learn(batch, seeds, members)
            for row, k in enumerate(members):
                hand_in = self.pending[k]
                hand_in.counts[hand_in.done] = counts[row]
                hand_in.done += 1
        for k in members:
            if self.pending[k].done == len(self.pending[k].images):
                del self.pending[k]
        self.lock.notify_all()

    def set_learning_rates(self, index: int, nu_pre: float, nu_post: float) -> None:
        with self.lock:
            self.many.set_learning_rates(index, nu_pre, nu_post)

    def tensors(self, index: int) -> net.NetworkTensors:
        with self.lock:
            return self.many.tensors(index)


class LockstepMember(Engine):
    """One run's engine in a :class:`LockstepGroup`: learning goes through the group, one
    image at a time; with learning off the run leaves the group and presents on its own
    copy of its network (exact sums: the fast engine's counts)."""

    def __init__(self, seat: Seat, config: Config) -> None:
        super().__init__(config, seat.group.tensors(seat.index), seat.group.device)
        self.seat, self.group, self.index = seat, seat.group, seat.index
        self.alone = None  # ManyNetworks of this network only, once it no longer learns

    def set_learning_rates(self, nu_pre: float, nu_post: float) -> None:
        self.group.set_learning_rates(self.index, nu_pre, nu_post)

    def present_sequence(self, images: torch.Tensor, learn: bool, seeds: Sequence[int]) -> torch.Tensor:
        if learn:
            if self.alone is not None:
                raise SnnctlError("lockstep: a run learned again after its network left the group")
            return self.group.learn(self.index, images, seeds)
        return self._inference().infer(0, images, seeds)

    def _present_images(self, images: torch.Tensor, hz_per_unit: float, learn: bool, seed: int,
                        record: bool) -> Presentation:
        raise SnnctlError("lockstep: runs present images through present_sequence only")

    def present_spikes(self, spikes: torch.Tensor, learn: bool, seed: int = 0, record: bool = False) -> Presentation:
        raise SnnctlError("lockstep: runs take images (Poisson input), not given spike trains")

    def _inference(self):
        if self.alone is None:
            from snnctl.engine.many import ManyNetworks

            self.group.leave(self.seat)
            self.alone = ManyNetworks([self.config], [self.group.tensors(self.index)], self.device)
        return self.alone

    def sync(self) -> net.NetworkTensors:
        self.tensors = self.group.tensors(self.index) if self.alone is None else self.alone.tensors(0)
        return self.tensors


_SEAT: contextvars.ContextVar[Seat | None] = contextvars.ContextVar("snnctl_lockstep_seat", default=None)


@contextmanager
def seated(seat: Seat) -> Iterator[None]:
    """This thread's runs take ``seat`` (its first ``make_engine`` joins the group); leaves
    the group when done, so that the others never wait for it."""
    token = _SEAT.set(seat)
    try:
        yield
    finally:
        seat.group.leave(seat)
        _SEAT.reset(token)


def member_engine(config: Config, tensors: net.NetworkTensors) -> Engine | None:
    """This thread's member of its lockstep group, the first time it asks for an engine
    (None outside a group, and afterwards: a later command of the thread, such as an
    evaluation, gets an ordinary engine)."""
    seat = _SEAT.get()
    if seat is None or seat.index is not None or seat.left:
        return None
    return seat.group.join(seat, config, tensors)
