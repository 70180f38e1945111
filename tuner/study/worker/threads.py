"""How many BLAS threads a worker uses: never more than its share of the host's cores.

NumPy's BLAS starts one thread per core in every process. Two workers started separately on one machine
then run 2 x cores threads that fight for the cores: epochs took 6x longer, and trials failed on their
time budget. So by default a worker takes a share of the host's cores: the cores divided by the live
workers of this database on this host (their rows in `tuner_workers` record the host), itself included,
at least one. The share is taken again at each heartbeat interval, so that workers started later, or gone,
are accounted for; `--threads N` fixes it. The limit is applied with threadpoolctl, which changes the
BLAS thread count of a running process.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import Engine
from threadpoolctl import ThreadpoolController

from tuner.storage.workers import live_workers_on_host

_controller: ThreadpoolController | None = None


def host_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_share(engine: Engine, host: str, worker_id: int | None = None) -> int:
    """This worker's share of the host's cores: cores // (live workers on the host, itself included)."""
    others = [w for w in live_workers_on_host(engine, host) if w.id != worker_id]
    return max(1, host_cores() // (len(others) + 1))


def set_blas_threads(threads: int) -> None:
    """Limit every BLAS library loaded in this process to `threads` threads."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    _controller.limit(limits=threads, user_api="blas")


def load_note() -> str:
    """A note for a trial that ran out of time on a busy host: the load average against the cores."""
    cores = host_cores()
    try:
        load = os.getloadavg()[0]
    except OSError:
        return ""
    if load <= cores:
        return ""
    return f"; the host was overloaded (load {load:.1f} on {cores} cores): the time budget may be too tight for it"
