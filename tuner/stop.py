"""A worker's stop request, caught from the first moment the process runs.

SIGTERM (`docker stop`, `kill`, the `--jobs` supervisor) and SIGINT (Ctrl-C) must stop a worker cleanly,
even when they arrive while Python is still importing the libraries the worker needs: with the default
action, a signal in that second would kill it without a word. `install()` runs before anything heavy is
imported (the `tuner` command calls it first for `tuner worker` and `tuner run`) and records the request
in `requested`; once the worker runs, `forward_to(callback)` hands later signals to the callback (which
stops a running trial at once) and replays a request that came before.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

requested = threading.Event()
_reason: str | None = None
_forward: Callable[[str], None] | None = None


def _handle(signum: int, frame: object) -> None:
    global _reason
    _reason = f"worker stopped by {signal.Signals(signum).name}"
    requested.set()
    if _forward is not None:
        _forward(_reason)


def install() -> None:
    """Catch SIGTERM and SIGINT from now on, as a stop request."""
    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)


def forward_to(callback: Callable[[str], None]) -> None:
    """Call `callback(reason)` on every stop signal from now on, and now if one already came."""
    global _forward
    _forward = callback
    install()
    if _reason is not None:
        callback(_reason)
