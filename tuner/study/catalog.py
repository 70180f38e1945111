"""Deleting and cleaning up studies (an Optuna study plus the project's own records), and the
stored spec a worker loads. Creating one is `tuner.study.create`, listing them `tuner.study.listing`.

Deleting a study or cleaning it up cuts off the workers that run it, so both refuse while a worker of the
study looks alive (seen within two of its heartbeats), unless forced; a forced delete makes those workers
stop with one line (they notice that their study is gone) instead of writing into a study of the same
name created later.
"""

from __future__ import annotations

import optuna
from sqlalchemy.engine import Engine

from tuner.errors import StudyBusyError, StudyNotFoundError
from tuner.storage import (
    delete_study_records,
    get_study,
    list_study_records,
    open_storage,
    open_study,
    study_lock,
)
from tuner.storage.optuna_adapter import storage_of
from tuner.storage.records import StudyRecord
from tuner.storage.workers import fail_stale_workers, live_workers
from tuner.study.spec import StudySpec, spec_from_dict
from tuner.study.stale import fail_dead_trials


def _refuse_if_live(engine: Engine, study_name: str, what: str) -> None:
    live = live_workers(engine, study_name)
    if live:
        hosts = ", ".join(sorted({f"{w.host} (pid {w.pid})" for w in live}))
        raise StudyBusyError(
            f"{len(live)} worker(s) of study '{study_name}' look alive ({hosts}); "
            f"stop them first, or add --force to {what} anyway"
        )


def delete_study(storage_url: str, study_name: str, *, force: bool = False) -> None:
    """Delete the Optuna study and every tuner record of it; refused while its workers are alive unless
    `force` (they then stop on their own, noticing that the study is gone)."""
    handle = open_study(storage_url, study_name)
    if not force:
        _refuse_if_live(handle.engine, study_name, "delete it")
    optuna.delete_study(study_name=study_name, storage=storage_of(handle.study))
    delete_study_records(handle.engine, study_name)


def cleanup_study(storage_url: str, study_name: str, *, grace_period: int = 60, force: bool = False) -> list[int]:
    """Fail the trials left RUNNING by dead workers (no heartbeat for `grace_period` s); return their numbers.

    Each failed trial is queued again with the same parameters, as a live worker would have done. Workers
    still `running` in `tuner_workers` but not seen for `grace_period` s are marked `failed`. Refused while
    a worker looks alive, unless `force`: live workers clean up after dead ones at every claim, and a grace
    period shorter than their heartbeat would fail their running trials.
    """
    handle = open_study(storage_url, study_name, heartbeat_interval=max(1, grace_period // 2),
                        grace_period=grace_period)
    engine, study = handle.engine, handle.study
    if not force:
        _refuse_if_live(engine, study_name, "clean it up")
    running = (optuna.trial.TrialState.RUNNING,)
    before = {t.number for t in study.get_trials(deepcopy=False, states=running)}
    with study_lock(engine, study_name):  # a worker claiming at the same moment sees either all or none
        fail_dead_trials(study, engine, grace_period)
    after = {t.number for t in study.get_trials(deepcopy=False, states=running)}
    fail_stale_workers(engine, study_name, grace_period=grace_period,
                       message=f"not seen for {grace_period} s: marked failed by 'tuner study cleanup'")
    return sorted(before - after)


def load_study_record(engine: Engine, study_name: str) -> StudyRecord:
    """The record of a study that exists and is wholly created; a missing study names the ones that exist."""
    record = get_study(engine, study_name)
    if record is None:
        names = sorted(r.name for r in list_study_records(engine) if r.status == "ready")
        known = ", ".join(names) if names else "none"
        raise StudyNotFoundError(f"no study named '{study_name}' (studies: {known})")
    if record.status != "ready":
        raise StudyBusyError(f"study '{study_name}' is still being created, or its creation was interrupted: "
                             "run 'tuner study create' for it again (an interrupted one is repaired)")
    return record


def load_study_spec(engine: Engine, study_name: str) -> StudySpec:
    """The validated spec stored with a study that must exist (see `load_study_record`)."""
    return spec_from_dict(load_study_record(engine, study_name).spec)


def require_study(storage_url: str, study_name: str) -> StudyRecord:
    """The record of a study that must exist; a missing one names the studies that do."""
    return load_study_record(open_storage(storage_url), study_name)
