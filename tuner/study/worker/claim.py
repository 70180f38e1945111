"""Claiming a trial so that the study's total is exact across every worker on every machine.

Under `study_lock` (a database-wide lock), the claim fails the trials of dead workers, counts the study's
finished (COMPLETE + PRUNED) and RUNNING trials, and asks Optuna for a trial only while
finished + running < total. `study.ask` takes queued (WAITING) trials first: retries of failed ones.
`before_ask(study)`, when given, runs under the same lock just before the ask (the equal optimizer share
queues its trial there, `tuner.study.share`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna
from sqlalchemy.engine import Engine

from tuner.storage import finished_count, study_lock, trial_state_counts
from tuner.storage.optuna_adapter import ask_quietly
from tuner.storage.retry import is_connection_error
from tuner.study.stale import fail_dead_trials


@dataclass(frozen=True)
class Claim:
    """What a claim found: the trial it got (None when the total is spoken for) and the study's counts."""

    trial: optuna.Trial | None
    counts: dict[str, int]

    @property
    def finished(self) -> int:
        return finished_count(self.counts)


def claim_trial(study: optuna.Study, engine: Engine, total: int, grace_period: float,
                before_ask: Callable[[optuna.Study], object] | None = None) -> Claim:
    """Under the study lock: fail dead workers' trials, then ask for a trial if the total allows one.

    A connection lost while the lock is released after a successful ask does not lose the trial: the
    server drops the lock with the connection, and the trial is returned.
    """
    claimed: list[optuna.Trial] = []
    counts: dict[str, int] = {}
    try:
        with study_lock(engine, study.study_name):
            fail_dead_trials(study, engine, grace_period)
            counts = trial_state_counts(engine, study.study_name)
            if finished_count(counts) + counts.get("RUNNING", 0) >= total:
                return Claim(None, counts)
            if before_ask is not None:
                before_ask(study)
            claimed.append(ask_quietly(study))
    except Exception as err:
        if not (claimed and is_connection_error(err)):
            raise
    return Claim(claimed[0], counts)
