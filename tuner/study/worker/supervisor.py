"""Several worker processes on one machine (`tuner worker --jobs J`): started, watched and stopped together.

Each child is a single-process `tuner worker` with `cores / J` BLAS threads (its `--threads`, and the
BLAS libraries' variables for the libraries' own start-up), so that J workers do not oversubscribe the
machine. The storage URL reaches the children by environment, not argv: argv is
visible to every user in `ps`. `stop()` forwards a stop (SIGTERM) to every live child; each fails and
re-queues its running trial and exits on its own. The children die with the supervisor: each asks the
kernel for a SIGTERM when its parent dies (Linux's PR_SET_PDEATHSIG, `follow_supervisor`), so killing
the supervisor, even with SIGKILL, orphans no worker. A child that died of a signal makes the supervisor
exit non-zero (128 + the signal, as a shell reports it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from tuner.storage import (
    ENV_VAR,
    finished_count,
    open_storage,
    optuna_storage,
    trial_state_counts,
)
from tuner.storage.optuna_adapter import best_value, load_study
from tuner.storage.optuna_tables import failed_trials
from tuner.study.worker.loop import Progress

BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
SUPERVISOR_VAR = "TUNER_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def follow_supervisor(on_orphaned: Callable[[], None]) -> None:
    """In a child of `Supervisor`: receive SIGTERM when the supervisor dies; call `on_orphaned()` if it
    already has. Without Linux's prctl, the child only notices at its next stop check."""
    parent = os.environ.get(SUPERVISOR_VAR)
    if parent is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if str(os.getppid()) != parent:  # the supervisor died before the request was in place
        on_orphaned()


def exit_code(codes: Sequence[int]) -> int:
    """One exit code for the children's: 0 when all succeeded; a signal's death counts as 128 + signal."""
    return max((128 - code if code < 0 else code for code in codes), default=0)


class Supervisor:
    """`jobs` worker processes of study `name`; `worker_args` are passed to each `tuner worker`."""

    def __init__(self, url: str, name: str, jobs: int, worker_args: Sequence[str] = ()) -> None:
        self.url, self.name, self.jobs = url, name, jobs
        self.worker_args = list(worker_args)
        self.children: list[subprocess.Popen] = []
        self.stopping = threading.Event()

    def start(self) -> None:
        env = dict(os.environ)
        env[ENV_VAR] = self.url
        threads = str(max(1, (os.cpu_count() or 1) // self.jobs))
        env.update({var: threads for var in BLAS_THREAD_VARS})
        env[SUPERVISOR_VAR] = str(os.getpid())
        args = [sys.executable, "-m", "tuner", "worker", self.name, "--jobs", "1", "--quiet", *self.worker_args]
        self.children = [subprocess.Popen(args, env=env) for _ in range(self.jobs)]

    def stop(self) -> None:
        """Ask every live child to stop (SIGTERM)."""
        self.stopping.set()
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def running(self) -> bool:
        return any(child.poll() is None for child in self.children)

    def watch(self, total: int, on_progress: Callable[[Progress], None], interval: float = 0.5) -> int:
        """Report the study's progress whenever its finished count changes, and each trial that fails from
        now on with its reason, until every child has exited; return one exit code for them all."""
        engine = open_storage(self.url)
        study = load_study(optuna_storage(self.url, create_tables=False), self.name)
        last, reported = None, set(failed_trials(engine, self.name))
        while self.running():
            counts = trial_state_counts(engine, self.name)
            finished = finished_count(counts)
            progress = Progress(total=total, finished=finished, running=counts.get("RUNNING", 0), counts=counts,
                                done_here=finished, best=best_value(study))
            new = {}
            if counts.get("FAIL", 0) > len(reported):
                new = {n: r for n, r in failed_trials(engine, self.name).items() if n not in reported}
            for number, reason in sorted(new.items()):  # each line shows the counts too
                reported.add(number)
                on_progress(replace(progress, last_state="FAIL", last_reason=reason))
            if finished != last and not new:
                on_progress(progress)
            last = finished
            time.sleep(interval)
        return exit_code([child.wait() for child in self.children])
