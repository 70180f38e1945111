"""The live progress of `tuner run` and `tuner worker`: trials done of the total, the best value, the time
spent and an estimate of the time left, and the reason of each trial that fails, as it fails.

On a terminal it is a rich progress bar on stderr; elsewhere (logs, CI) one line per update. The time left
is the trials still to finish divided by the study's rate since this command started (every worker's
trials count, so with ten workers the estimate is ten times shorter); none before the first finishes.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tuner.cli._common import stderr
from tuner.text import fmt, printable

if TYPE_CHECKING:
    from tuner.study.worker.options import Progress as WorkerProgress


def clock(seconds: float | None) -> str:
    """A duration as h:mm:ss (m:ss under an hour); '-' for none."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def time_left(total: int, finished: int, start_finished: int, elapsed: float) -> float | None:
    """Seconds until `total` at the rate of the trials finished since the start; None before the first."""
    done = finished - start_finished
    if done <= 0 or elapsed <= 0:
        return None
    return max(0, total - finished) * elapsed / done


class TrialProgress:
    """Trials done / total, best so far, elapsed and left, failure reasons; silent with `quiet`."""

    def __init__(self, total: int, label: str, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self._progress: Progress | None = None
        self._task = None
        self._label = printable(label)
        self._total = total
        self._started = time.monotonic()
        self._start_finished: int | None = None

    def __enter__(self) -> TrialProgress:
        self._started = time.monotonic()
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("best {task.fields[best]}", markup=False),
                TextColumn("{task.fields[states]}", markup=False),
                TextColumn("elapsed", markup=False),
                TimeElapsedColumn(),  # ticks between trials; the estimate moves when one finishes
                TextColumn("left ~{task.fields[left]}", markup=False),
                console=stderr,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=self._total, best="-", states="", left="-")
        return self

    def update(self, p: WorkerProgress) -> None:
        """Show the worker's `Progress`; a trial that failed here is reported with its reason on its own line."""
        if self.quiet:
            return
        if self._start_finished is None:  # the study's count before this command's first trial
            self._start_finished = p.finished - (1 if p.last_state in ("COMPLETE", "PRUNED") else 0)
        elapsed = time.monotonic() - self._started
        left = time_left(p.total, p.finished, self._start_finished, elapsed)
        states = " ".join(f"{k.lower()} {v}" for k, v in sorted(p.counts.items()) if v)
        times = f"elapsed {clock(elapsed)}, left ~{clock(left)}"
        if p.last_state == "FAIL":
            stderr.print(f"{self._label}: a trial failed: {printable(p.last_reason or 'no reason recorded')}")
        if self._progress is not None:
            self._progress.update(self._task, total=p.total, completed=min(p.finished, p.total), best=fmt(p.best),
                                  states=states, left=clock(left))
        else:
            stderr.print(f"{self._label}: {p.finished}/{p.total} trials, best {fmt(p.best)} ({states}), {times}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
