"""Work that needs only the training images, run on a spare core while STDP trains.

With ``batch_size: 1`` training presents one image at a time on one core, and the other
cores wait. The pixel baseline is fitted on the training images alone, so ``train``
starts its fit beside the training (:class:`Beside`) and collects it after: the same
readout, fitted while the layer learns instead of after (a baseline on 60,000 MNIST
images takes minutes). Its notices are said when it is collected, in the run's order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from snnctl.service.common import Notice

T = TypeVar("T")


class Beside(Generic[T]):
    """``work(notice)`` on a daemon thread when ``spare_core``, else when collected.

    :meth:`result` waits for it, says the notices it gave, and returns its result or
    raises its error. A daemon thread does not hold the process open after a stop: work
    whose result nobody collects ends with the process."""

    def __init__(self, work: Callable[[Notice], T], spare_core: bool) -> None:
        self._work: Callable[[Notice], T] | None = work
        self._notices: list[str] = []
        self._outcome: T | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if spare_core:
            self._thread = threading.Thread(target=self._run, name="snnctl-beside-training", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        work, self._work = self._work, None
        try:
            self._outcome = work(self._notices.append)
        except BaseException as exc:  # handed to the caller of result(), where it is raised
            self._error = exc

    def result(self, notice: Notice) -> T:
        """The work's result (doing the work now if it has no thread), its notices said first."""
        if self._thread is None:
            if self._work is not None:
                self._run()
        else:
            self._thread.join()
        for line in self._notices:
            notice(line)
        self._notices.clear()
        if self._error is not None:
            raise self._error
        return self._outcome  # type: ignore[return-value]
