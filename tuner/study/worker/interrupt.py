"""Stopping a worker from a signal handler: training is cut at once, a database write never is."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from tuner.study.objective import WorkerStopping


class TrainingInterrupt:
    """Lets a signal handler interrupt training at once, but never a database write.

    The handler calls `interrupt(reason)`: inside a `training()` block it raises `WorkerStopping` right away
    (as Ctrl-C's KeyboardInterrupt would); elsewhere, and inside a `writing()` block, it only sets `stop`,
    which the loop and the objective check.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.reason: str | None = None  # the signal's, once one came
        self._in_training = False

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        self._in_training = True
        try:
            if self.stop.is_set():
                raise WorkerStopping("worker stopped before the trial started training")
            yield
        finally:
            self._in_training = False

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """A database write inside training (the curve, a report): a signal during it only sets `stop`."""
        was_training, self._in_training = self._in_training, False
        try:
            yield
        finally:
            self._in_training = was_training and not self.stop.is_set()

    def interrupt(self, reason: str) -> None:
        self.reason = reason
        self.stop.set()
        if self._in_training:
            self._in_training = False
            raise WorkerStopping(reason)

    def stop_reason(self, err: WorkerStopping) -> str:
        """Why the trial stopped: the signal's reason, with where the trial noticed it when that differs."""
        said = self.reason
        return str(err) if said is None or str(err).startswith(said) else f"{said} ({err})"
