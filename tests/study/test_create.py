"""Creating a study: reuse of the same search, a total that grows, a different search refused by name."""

from __future__ import annotations

import pytest

from tuner.errors import StudyExistsError
from tuner.storage import get_study, make_engine
from tuner.study.listing import list_studies
from tuner.study.create import create_study, differing_keys
from tuner.study.spec import parse_spec

SPEC = """
[study]
name = "grow"
n_trials = {n_trials}
[data]
source = "synthetic_classification"
[model]
hidden = [{hidden}]
[train]
epochs = {epochs}
"""


def spec(n_trials: int = 30, hidden: int = 8, epochs: int = 2):
    return parse_spec(SPEC.format(n_trials=n_trials, hidden=hidden, epochs=epochs))


def test_the_same_spec_is_reused_and_an_edited_total_grows_the_study(sqlite_url):
    assert create_study(sqlite_url, spec()) == ("grow", True)
    assert create_study(sqlite_url, spec(), load_if_exists=True) == ("grow", False)
    assert create_study(sqlite_url, spec(n_trials=35), load_if_exists=True) == ("grow", False)
    record = get_study(make_engine(sqlite_url), "grow")
    assert record.total == 35 and record.spec["study"]["n_trials"] == 35
    (summary,) = list_studies(sqlite_url)
    assert summary.n_trials == 35  # `study list` shows "finished / 35", not the old total


def test_a_different_search_is_refused_naming_the_keys_and_the_way_out(sqlite_url):
    create_study(sqlite_url, spec())
    with pytest.raises(StudyExistsError) as caught:
        create_study(sqlite_url, spec(n_trials=40, hidden=16, epochs=3), load_if_exists=True)
    assert str(caught.value) == (
        "study 'grow' already exists with a different spec (model.hidden, train.epochs); a study cannot change "
        "its search: pick another --name (only n_trials may change: 'tuner worker grow --n-trials N')"
    )
    assert get_study(make_engine(sqlite_url), "grow").total == 30  # nothing changed


def test_differing_keys_walks_nested_tables():
    a = {"study": {"n_trials": 1, "seed": 0}, "model": {"hidden": [8]}, "only_a": 1}
    b = {"study": {"n_trials": 2, "seed": 0}, "model": {"hidden": [8, 8]}}
    assert differing_keys(a, b) == ["model.hidden", "only_a", "study.n_trials"]
