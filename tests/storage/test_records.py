"""Round trips of the project's records on SQLite, PostgreSQL and (when reachable) MariaDB/MySQL."""

from __future__ import annotations

import datetime as dt
import math

import optuna
import pytest
from optuna.trial import TrialState

from tuner.errors import (
    StorageError,
    StudyDeletedError,
    StudyExistsError,
    StudyNotFoundError,
)
from tuner.storage import (
    delete_study_records,
    ensure_schema,
    get_study,
    insert_study,
    list_study_records,
    list_workers,
    load_curves,
    make_engine,
    optuna_storage,
    register_worker,
    save_curve,
    stop_worker,
    touch_worker,
    trial_state_counts,
    update_study,
)

SPEC = {"study": {"name": "s", "n_trials": 10}, "search": {"eps0": {"low": 1e-3, "high": 0.1, "log": True}}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "mysql"])
def engine(request):
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param])
    engine = make_engine(url)
    ensure_schema(engine, create_if_empty=True)
    return engine


def test_a_study_record_round_trips(engine):
    insert_study(engine, "s", SPEC, "[study]\nname = 's'\n", "studies/s.toml", init_guess={"scales": [1.5, 0.9]})
    record = get_study(engine, "s")
    assert record.name == "s"
    assert record.spec == SPEC
    assert record.spec_toml == "[study]\nname = 's'\n"
    assert record.source_path == "studies/s.toml"
    assert record.init_guess == {"scales": [1.5, 0.9]}
    assert record.lr_probe is None
    assert record.created_at.tzinfo == dt.UTC
    assert abs(record.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert get_study(engine, "missing") is None


def test_a_second_study_of_the_same_name_is_refused(engine):
    insert_study(engine, "s", SPEC, "", None)
    with pytest.raises(StudyExistsError, match="^study 's' already exists$"):
        insert_study(engine, "s", SPEC, "", None)


def test_update_sets_only_what_it_is_given(engine):
    insert_study(engine, "s", SPEC, "", None, init_guess={"scales": [1.0]})
    update_study(engine, "s", lr_probe={"eps0": 0.01})
    record = get_study(engine, "s")
    assert (record.init_guess, record.lr_probe) == ({"scales": [1.0]}, {"eps0": 0.01})
    update_study(engine, "s", init_guess=None)
    assert get_study(engine, "s").init_guess is None
    with pytest.raises(StudyNotFoundError, match="^no study named 'x'$"):
        update_study(engine, "x", lr_probe={})


def test_curves_round_trip_with_non_finite_values_as_none(engine):
    sid = insert_study(engine, "s", SPEC, "", None)
    rows = [
        {"epoch": 1, "train_loss": 2.5, "val_loss": 2.25, "val_accuracy": 0.125, "lr": 0.1, "seconds": 0.5},
        {"epoch": 2, "train_loss": math.nan, "val_loss": math.inf, "val_accuracy": None, "lr": 0.05, "seconds": 0.25},
    ]
    save_curve(engine, sid, 3, 7, rows)
    save_curve(engine, sid, 1, None, rows[:1])
    curves = load_curves(engine, "s")
    assert [(c["trial_number"], c["epoch"]) for c in curves] == [(1, 1), (3, 1), (3, 2)]
    assert curves[1] == {"trial_number": 3, "trial_id": 7, **rows[0]}
    assert curves[2] == {"trial_number": 3, "trial_id": 7, "epoch": 2, "train_loss": None, "val_loss": None,
                         "val_accuracy": None, "lr": 0.05, "seconds": 0.25}
    assert curves[0]["trial_id"] is None


def test_a_retried_curve_write_replaces_the_trials_rows(engine):
    sid = insert_study(engine, "s", SPEC, "", None)
    save_curve(engine, sid, 0, 1, [{"epoch": e, "train_loss": 1.0} for e in (1, 2, 3)])
    save_curve(engine, sid, 0, 1, [{"epoch": e, "train_loss": 2.0} for e in (1, 2)])
    assert [(c["epoch"], c["train_loss"]) for c in load_curves(engine, "s")] == [(1, 2.0), (2, 2.0)]


def test_a_curve_row_needs_an_epoch(engine):
    with pytest.raises(StorageError, match="^curve row of trial 0 has no 'epoch'"):
        save_curve(engine, insert_study(engine, "s", SPEC, "", None), 0, 1, [{"train_loss": 1.0}])


def test_writes_for_a_deleted_study_are_refused_not_orphaned(engine):
    sid = insert_study(engine, "s", SPEC, "", None)
    worker = register_worker(engine, sid, "h", 1)
    delete_study_records(engine, "s")
    with pytest.raises(StudyDeletedError):
        save_curve(engine, sid, 0, 1, [{"epoch": 1}])
    with pytest.raises(StudyDeletedError):
        register_worker(engine, sid, "h", 2)
    with pytest.raises(StudyDeletedError):
        touch_worker(engine, worker, trials_done=1)
    stop_worker(engine, worker)  # a worker that goes away quietly is fine
    insert_study(engine, "s", SPEC, "", None)  # a new study of the same name starts clean
    assert load_curves(engine, "s") == [] and list_workers(engine, "s") == []


def test_workers_register_touch_and_stop(engine):
    sid, other = insert_study(engine, "s", SPEC, "", None), insert_study(engine, "other", SPEC, "", None)
    first = register_worker(engine, sid, "host-a", 101)
    second = register_worker(engine, sid, "host-b", 202)
    register_worker(engine, other, "host-c", 303)
    touch_worker(engine, first, trials_done=4)
    stop_worker(engine, first)
    stop_worker(engine, second, status="failed", message="5 trials in a row failed")
    a, b = list_workers(engine, "s")
    assert (a.id, a.host, a.pid, a.trials_done, a.status, a.message) == (first, "host-a", 101, 4, "stopped", None)
    assert (b.status, b.message, b.trials_done) == ("failed", "5 trials in a row failed", 0)
    assert a.started_at <= a.last_seen == a.stopped_at
    assert a.stopped_at.tzinfo == dt.UTC
    with pytest.raises(StorageError, match="^worker status must be 'stopped' or 'failed', got 'running'$"):
        stop_worker(engine, first, status="running")


def test_delete_removes_the_study_its_curves_and_workers_only(engine):
    for name in ("s", "t"):
        sid = insert_study(engine, name, SPEC, "", None)
        save_curve(engine, sid, 0, 1, [{"epoch": 1}])
        register_worker(engine, sid, "h", 1)
    delete_study_records(engine, "s")
    assert [r.name for r in list_study_records(engine)] == ["t"]
    assert load_curves(engine, "s") == [] and list_workers(engine, "s") == []
    assert len(load_curves(engine, "t")) == 1 and len(list_workers(engine, "t")) == 1


def test_trial_state_counts_reads_optunas_tables(engine):
    url = engine.url.render_as_string(hide_password=False)
    study = optuna.create_study(study_name="s", storage=optuna_storage(url))
    optuna.create_study(study_name="other", storage=optuna_storage(url)).optimize(lambda t: 0.0, n_trials=2)
    for value in (1.0, 2.0):
        study.tell(study.ask(), value)
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.FAIL)
    study.ask()
    study.enqueue_trial({})
    assert trial_state_counts(engine, "s") == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1, "RUNNING": 1, "WAITING": 1}
    assert trial_state_counts(engine, "missing") == {}
