"""`list_studies` reads Optuna's tables by SQL: the same directions, counts and best values as Optuna's own."""

from __future__ import annotations

import math

import optuna
import pytest

from tuner.storage import ensure_schema, make_engine
from tuner.study.listing import list_studies


def _add(study: optuna.Study, value: float, state=optuna.trial.TrialState.COMPLETE) -> None:
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions=dist, state=state,
                                              value=value if state == optuna.trial.TrialState.COMPLETE else None))


@pytest.fixture
def url(sqlite_url):
    ensure_schema(make_engine(sqlite_url), create_if_empty=True)
    return sqlite_url


def test_an_empty_database_lists_nothing(url):
    assert list_studies(url) == []


def test_directions_counts_and_best_values_match_optuna(url):
    low = optuna.create_study(study_name="low", storage=url, direction="minimize")
    high = optuna.create_study(study_name="high", storage=url, direction="maximize")
    for study in (low, high):
        for value in (0.3, 0.1, 0.7):
            _add(study, value)
        _add(study, math.nan, optuna.trial.TrialState.FAIL)
    optuna.create_study(study_name="empty", storage=url).enqueue_trial({})
    rows = {s.name: s for s in list_studies(url)}
    assert sorted(rows) == ["empty", "high", "low"]
    assert (rows["low"].direction, rows["low"].best) == ("minimize", low.best_value)
    assert (rows["high"].direction, rows["high"].best) == ("maximize", high.best_value)
    assert rows["low"].counts == {"COMPLETE": 3, "FAIL": 1} and rows["low"].n_trials == 4
    assert (rows["empty"].best, rows["empty"].counts) == (None, {"WAITING": 1})


def test_an_infinite_value_is_the_best_of_its_direction(url):
    study = optuna.create_study(study_name="inf", storage=url, direction="maximize")
    _add(study, 1.0)
    _add(study, math.inf)
    (row,) = list_studies(url)
    assert row.best == math.inf == study.best_value
