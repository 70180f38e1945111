"""A running trial's heartbeat: a thread that writes it every few seconds while the trial trains.

Optuna's ask/tell gets no heartbeat of its own (only `study.optimize` runs one), so the worker beats for
its trial. A failed beat (the database restarting) is not fatal: the next one retries, and the grace period
covers the gap; each failure is logged on `tuner.study.worker.heartbeat` (`tuner -v` shows it).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def heartbeat(beat: Callable[[], None], interval: float, name: str) -> Iterator[None]:
    """Call `beat()` every `interval` seconds in a thread while the block runs.

    The caller records the first beat (with its retries) before entering.
    """
    done = threading.Event()

    def run() -> None:
        while not done.wait(interval):
            try:
                beat()
            except Exception as err:  # noqa: BLE001 - the next beat retries; the grace period covers the gap
                log.info("%s: heartbeat failed, the next one retries: %s: %s", name, type(err).__name__, err)

    thread = threading.Thread(target=run, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
