"""Every spec in studies/ runs a real (tiny) trial end to end on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tuner.storage import load_curves, make_engine
from tuner.study.create import create_study
from tuner.study.spec import load_spec, spec_from_dict
from tuner.study.worker import run_worker

STUDIES = sorted((Path(__file__).parents[2] / "studies").glob("*.toml"))


def test_there_are_example_specs():
    assert {p.name for p in STUDIES} >= {"digits-mlp.toml", "mnist1d-mlp.toml", "deep-tanh.toml"}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_each_spec_runs_one_tiny_trial(path, sqlite_url):
    shrunk = load_spec(path).to_dict()
    shrunk["train"]["epochs"] = 1
    shrunk["study"]["time_budget"] = None
    spec = spec_from_dict(shrunk)
    name, created = create_study(sqlite_url, spec)
    assert created

    report = run_worker(sqlite_url, name, n_trials=1)

    assert report.trials_run >= 1
    (trial,) = [t for t in optuna.load_study(study_name=name, storage=sqlite_url).get_trials() if t.state.is_finished()][:1]
    curve = [r for r in load_curves(make_engine(sqlite_url), name) if r["trial_number"] == trial.number]
    assert [r["epoch"] for r in curve] == [1]
    assert set(trial.user_attrs["config"]) >= {"optimizer", "eps0", "init"}
