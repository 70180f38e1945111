"""Trials of dead workers: found and failed (then queued again) by the next claim, or by `study cleanup`.

Two kinds: a RUNNING trial whose heartbeat is older than the grace period (Optuna's stale-trial check),
and one that never got a heartbeat at all because its worker died, or lost the database, between claiming
it and its first beat (Optuna's check skips those). Each is failed with its reason and a copy with the same
parameters is queued, so the study still reaches its total of finished trials.
"""

from __future__ import annotations

import optuna
from sqlalchemy.engine import Engine

from tuner.storage.optuna_adapter import fail_stale_trials, fail_unbeaten_trials

UNBEATEN_REASON = "no heartbeat since it was claimed: its worker died or lost the database"


def fail_dead_trials(study: optuna.Study, engine: Engine, grace_period: float) -> None:
    """Fail and re-queue the trials of dead workers (stale or never beaten for `grace_period` s).

    Run it under the study lock, so that a worker claiming at the same moment sees either all or none.
    """
    fail_stale_trials(study)
    fail_unbeaten_trials(study, engine, grace_period, UNBEATEN_REASON)
