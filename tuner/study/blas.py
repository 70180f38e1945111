"""The BLAS threads of this process: recorded with each trial, and set again when the trial is replayed.

A matrix product split among more threads adds its partial sums in another order, so the same run with 1
and with 2 BLAS threads ends in different bits (measured: a 64-128-10 net on digits, 5 epochs of Adam).
Each trial therefore records the thread count it ran with (`blas_threads` in its `config` attribute), and
the replay runs with the same count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from threadpoolctl import ThreadpoolController

_controller: ThreadpoolController | None = None


def _blas() -> ThreadpoolController:
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()  # scans the loaded libraries once; the counts are read live
    return _controller.select(user_api="blas")


def blas_threads() -> int | None:
    """The threads BLAS uses now (the largest count if several BLAS libraries are loaded); None without BLAS."""
    counts = [int(lib["num_threads"]) for lib in _blas().info()]
    return max(counts) if counts else None


@contextlib.contextmanager
def blas_limited(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` BLAS threads (None: as they are), and restore them afterwards."""
    if threads is None:
        yield
        return
    with _blas().limit(limits=threads, user_api="blas"):
        yield
