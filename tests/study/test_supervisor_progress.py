"""`tuner worker --jobs J` reports each trial that fails with its reason, read from the study's records."""

from __future__ import annotations

import optuna

from tuner.storage import ensure_schema, make_engine
from tuner.storage.optuna_tables import failed_trials
from tuner.study.worker.supervisor import Supervisor


def _fail(study: optuna.Study, reason: str | None) -> None:
    trial = study.ask()
    if reason is not None:
        trial.set_user_attr("reason", reason)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)


def test_failed_trials_are_read_with_their_reasons(sqlite_url):
    ensure_schema(make_engine(sqlite_url), create_if_empty=True)
    study = optuna.create_study(study_name="s", storage=sqlite_url)
    _fail(study, "diverged: loss is nan")
    _fail(study, None)
    study.tell(study.ask(), 1.0)
    assert failed_trials(make_engine(sqlite_url), "s") == {0: "diverged: loss is nan", 1: None}
    assert failed_trials(make_engine(sqlite_url), "other") == {}


def test_watch_reports_only_the_failures_after_it_started(sqlite_url, monkeypatch):
    ensure_schema(make_engine(sqlite_url), create_if_empty=True)
    study = optuna.create_study(study_name="s", storage=sqlite_url)
    _fail(study, "before the watch")
    steps = iter([lambda: _fail(study, "out of memory"), lambda: study.tell(study.ask(), 0.5), None])

    def running() -> bool:
        step = next(steps)
        if step is not None:
            step()
        return step is not None

    supervisor = Supervisor(sqlite_url, "s", 2)
    monkeypatch.setattr(supervisor, "running", running)
    seen = []
    assert supervisor.watch(10, seen.append, interval=0) == 0
    assert [(p.last_state, p.last_reason, p.finished) for p in seen] == [("FAIL", "out of memory", 0), (None, None, 1)]
