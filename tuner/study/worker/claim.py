"""Claiming a trial so that the study's total is exact across every worker on every machine.

Under `study_lock` (a database-wide lock), the claim fails the trials of dead workers, counts the study's
finished (COMPLETE + PRUNED) and RUNNING trials, and asks Optuna for a trial only while
finished + running < total. `study.ask` takes queued (WAITING) trials first: retries of failed ones.

Waiting for the lock re-checks `stop()` every second, so a worker told to stop while another holds the lock
ends at once. A worker paused while it holds the lock loses it (the server ends its session, see
`tuner.storage.locks`); if it resumes and finds that its lock was lost after it asked for a trial, the
count is taken again, and a trial past the total is failed at once instead of overshooting.

`before_ask(study)`, when given, runs under the same lock just before the ask (the equal optimizer share
queues its trial there, `tuner.study.share`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from sqlalchemy.engine import Engine

from tuner.storage import finished_count, study_lock, trial_state_counts
from tuner.storage.locks import LockLostError, LockWaitInterrupted
from tuner.storage.optuna_adapter import ask_quietly
from tuner.storage.retry import is_connection_error
from tuner.study.stale import fail_dead_trials

PAST_TOTAL_REASON = "claimed past the study's total after its claim lock was lost (the worker was paused)"


@dataclass(frozen=True)
class Claim:
    """What a claim found: the trial it got (None when the total is spoken for, or when it was stopped
    while waiting for the lock) and the study's counts."""

    trial: optuna.Trial | None
    counts: dict[str, int]
    stopped: bool = False

    @property
    def finished(self) -> int:
        return finished_count(self.counts)


def _full(counts: dict[str, int], total: int) -> bool:
    return finished_count(counts) + counts.get("RUNNING", 0) >= total


def claim_trial(study: optuna.Study, engine: Engine, total: int, grace_period: float,
                stop: Callable[[], bool] = lambda: False,
                before_ask: Callable[[optuna.Study], object] | None = None) -> Claim:
    """Under the study lock: fail dead workers' trials (when any trial runs), then ask for a trial if the
    total allows one.

    A connection lost while the lock is released after a successful ask does not lose the trial: the
    server drops the lock with the connection, and the trial is kept if the total still allows it.
    """
    claimed: list[optuna.Trial] = []
    counts: dict[str, int] = {}
    try:
        with study_lock(engine, study.study_name, stop=stop) as lock:
            counts = trial_state_counts(engine, study)
            if counts.get("RUNNING", 0):  # only a running trial can be a dead worker's: a lone worker skips this
                fail_dead_trials(study, engine, grace_period)
                counts = trial_state_counts(engine, study)
            if _full(counts, total) or not lock.held():
                return Claim(None, counts)
            if before_ask is not None:
                before_ask(study)
            claimed.append(ask_quietly(study))
    except LockWaitInterrupted:
        return Claim(None, counts, stopped=True)
    except Exception as err:
        if not claimed or not (isinstance(err, LockLostError) or is_connection_error(err)):
            raise
        return _recount(study, engine, claimed[0], total)
    return Claim(claimed[0], counts)


def _recount(study: optuna.Study, engine: Engine, trial: optuna.Trial, total: int) -> Claim:
    """The lock went away after `trial` was asked for: keep it only if the total still allows it."""
    counts = trial_state_counts(engine, study)
    running_before = counts.get("RUNNING", 0) - 1  # the count includes `trial` itself
    if finished_count(counts) + running_before < total:
        return Claim(trial, counts)
    trial.set_user_attr("reason", PAST_TOTAL_REASON)
    study.tell(trial, state=TrialState.FAIL)
    return Claim(None, trial_state_counts(engine, study))
