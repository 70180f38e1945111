"""The progress a worker reports after each trial, without a count of the study's trials per trial.

The counts are the last claim's (taken under the study lock anyway), moved by this worker's own trials;
the best value is this worker's own, with the study's read again every `PROGRESS_REFRESH_S` seconds so
that the line also follows the other workers' trials.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tuner.storage.optuna_tables import finished_count
from tuner.study.worker.options import Progress
from tuner.study.worker.trial import Outcome

PROGRESS_REFRESH_S = 5.0  # how often the progress line reads the study's best value (others' trials)


class ProgressTracker:
    """Builds a `Progress` after each trial for `on_progress`; `read_best()` reads the study's best value."""

    def __init__(self, on_progress: Callable[[Progress], None], *, maximize: bool,
                 read_best: Callable[[], float | None]) -> None:
        self.on_progress, self.maximize, self.read_best = on_progress, maximize, read_best
        self.counts: dict[str, int] = {}
        self.best: float | None = None
        self._best_read = -float("inf")

    def claimed(self, counts: dict[str, int]) -> None:
        """The study's counts as the last claim saw them."""
        self.counts = dict(counts)

    def trial_done(self, outcome: Outcome, *, total: int, done_here: int) -> None:
        """Move the counts by this trial, refresh the best value, and report."""
        counts = self.counts
        counts[outcome.state.name] = counts.get(outcome.state.name, 0) + 1
        if outcome.value is not None and (self.best is None or self._better(outcome.value, self.best)):
            self.best = outcome.value
        if time.monotonic() - self._best_read >= PROGRESS_REFRESH_S:
            self._best_read = time.monotonic()
            self.best = self.read_best()
        self.on_progress(Progress(total=total, finished=finished_count(counts), running=counts.get("RUNNING", 0),
                                  counts=dict(counts), done_here=done_here, best=self.best,
                                  last_state=outcome.state.name, last_reason=outcome.reason))

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.maximize else value < than
