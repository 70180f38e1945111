"""A tuner study continued from Python: plain Optuna with tuner's objective, and the worker."""

from __future__ import annotations

import optuna

from tests.conftest import TINY_SPEC
from tuner.study.create import create_study
from tuner.study.optimize import load_objective, run_study
from tuner.study.spec import parse_spec


def test_plain_optuna_takes_the_queued_trials_first_and_trains_like_a_worker(sqlite_url):
    create_study(sqlite_url, parse_spec(TINY_SPEC.format(name="py", n_trials=4, epochs=2)))
    study, objective = load_objective(sqlite_url, "py")
    study.enqueue_trial({"optimizer": "adam", "eps0": 0.01, "init_scale": 1.0})
    study.optimize(objective, n_trials=2)
    first, second = study.get_trials()
    assert first.params["optimizer"] == "adam" and first.params["eps0"] == 0.01  # the queued trial came first
    assert first.state == second.state == optuna.trial.TrialState.COMPLETE
    assert first.user_attrs["config"]["seed"] != second.user_attrs["config"]["seed"]  # seeded per trial
    assert sorted(first.intermediate_values) == [1, 2]  # reported every epoch, as a worker's trial
    assert first.value == max(first.intermediate_values.values())


def test_run_study_finishes_the_total_the_plain_run_left(sqlite_url):
    create_study(sqlite_url, parse_spec(TINY_SPEC.format(name="py", n_trials=4, epochs=2)))
    study, objective = load_objective(sqlite_url, "py")
    study.optimize(objective, n_trials=1)
    report = run_study(sqlite_url, "py", heartbeat_interval=5)
    assert (report.reason, report.trials_run) == ("done", 3)  # the study's total, not this call's count
