"""The claim: the study's total is exact, counted under the lock, and dead workers' trials are retried."""

from __future__ import annotations

import datetime as dt

import optuna
from optuna.trial import TrialState
from sqlalchemy import text

from tuner.storage import ensure_schema, make_engine, optuna_storage
from tuner.study.stale import UNBEATEN_REASON
from tuner.study.worker.claim import claim_trial


def new_study(url: str, grace_period: int = 60) -> tuple[optuna.Study, object]:
    engine = make_engine(url)
    ensure_schema(engine, create_if_empty=True)
    storage = optuna_storage(url, heartbeat_interval=1, grace_period=grace_period)
    study = optuna.create_study(study_name="claims", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    return study, engine


def test_claims_stop_at_the_total_counting_running_trials(sqlite_url):
    study, engine = new_study(sqlite_url)
    trials = [claim_trial(study, engine, total=3, grace_period=60).trial for _ in range(3)]
    assert all(t is not None for t in trials)
    full = claim_trial(study, engine, total=3, grace_period=60)
    assert full.trial is None and full.counts == {"RUNNING": 3} and full.finished == 0

    study.tell(trials[0], 0.5)
    study.tell(trials[1], state=TrialState.PRUNED)
    still_full = claim_trial(study, engine, total=3, grace_period=60)
    assert still_full.trial is None and still_full.finished == 2  # the third may yet finish

    study.tell(trials[2], state=TrialState.FAIL)  # a failure does not count: one more trial is needed
    again = claim_trial(study, engine, total=3, grace_period=60)
    assert again.trial is not None and again.trial.number == 3


def test_a_claimed_trial_that_never_beat_is_failed_and_its_copy_claimed_next(sqlite_url):
    study, engine = new_study(sqlite_url, grace_period=5)
    orphan = claim_trial(study, engine, total=2, grace_period=5).trial
    orphan.suggest_float("x", 0.0, 1.0)
    # its worker died before the first heartbeat; its start lies beyond the grace period
    old = dt.datetime.now() - dt.timedelta(seconds=30)
    with engine.begin() as connection:
        connection.execute(text("UPDATE trials SET datetime_start = :old WHERE number = :n"),
                           {"old": old, "n": orphan.number})
    copy = claim_trial(study, engine, total=2, grace_period=5).trial
    frozen = {t.number: t for t in study.get_trials()}
    assert frozen[orphan.number].state == TrialState.FAIL
    assert frozen[orphan.number].user_attrs["reason"] == UNBEATEN_REASON
    assert copy.params == orphan.params  # the queued copy, same parameters, is taken first


def test_a_young_unbeaten_trial_is_left_alone(sqlite_url):
    study, engine = new_study(sqlite_url, grace_period=60)
    first = claim_trial(study, engine, total=5, grace_period=60).trial
    claim_trial(study, engine, total=5, grace_period=60)
    assert study.get_trials()[first.number].state == TrialState.RUNNING
