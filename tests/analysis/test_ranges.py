"""Searched ranges read from the trials, and the edges their best trials press against."""

from __future__ import annotations

import math
import warnings

import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tuner.analysis.frames import optimizer_progress, optimizer_summary
from tuner.analysis.ranges import edge_warnings, position, range_edges

LOG = FloatDistribution(0.1, 10.0, log=True)
LINEAR = FloatDistribution(0.0, 1.0)


def study_of(points: list[tuple[float, float, float]], direction: str = "maximize") -> optuna.Study:
    """A study whose complete trials have (lr, alpha, value)."""
    study = optuna.create_study(direction=direction)
    for lr, alpha, value in points:
        study.add_trial(optuna.trial.create_trial(
            params={"lr": lr, "alpha": alpha, "opt": "a", "layers": 2},
            distributions={"lr": LOG, "alpha": LINEAR, "opt": CategoricalDistribution(["a"]),
                           "layers": IntDistribution(1, 4)},
            value=value))
    return study


def test_position_by_hand():
    assert position(1.0, 0.1, 10.0, True) == pytest.approx(0.5)  # the middle of two decades
    assert position(9.0, 0.1, 10.0, True) == pytest.approx(math.log(90) / math.log(100))
    assert position(0.25, 0.0, 1.0, False) == 0.25


def test_the_best_trials_at_the_top_of_a_log_range_press_its_high_edge():
    # 10 trials: the best 3 (the top fifth, at least 3) have lr 9, 8.5, 1.0: 9 and 8.5 lie in the top tenth
    # of the log range (position > 0.9 means lr > 10^(2*0.9-1) = 6.3)
    points = [(9.0, 0.5, 0.99), (8.5, 0.6, 0.98), (1.0, 0.05, 0.97)] + [(0.5, 0.5, 0.5 + i / 100) for i in range(7)]
    edges = range_edges(study_of(points)).set_index("parameter")
    assert list(edges.index) == ["alpha", "layers", "lr"]  # numeric and searched only: not the single choice
    lr = edges.loc["lr"]
    assert (lr["top"], lr["at_high"], lr["at_low"], lr["edge"]) == (3, 2, 0, "high")
    assert lr["best"] == 9.0 and lr["position"] == pytest.approx(position(9.0, 0.1, 10.0, True))
    alpha = edges.loc["alpha"]  # 0.5, 0.6 and 0.05: one at the low edge of three, not pressed
    assert (alpha["at_low"], alpha["at_high"], alpha["edge"]) == (1, 0, "")
    [warning] = edge_warnings(edges.reset_index())
    assert warning.startswith("lr: 2 of the 3 best trials lie at the high edge of 0.1 .. 10")
    assert "high = 100" in warning


def test_minimising_ranks_the_lowest_values_first():
    points = [(0.11, 0.5, 0.01), (0.12, 0.5, 0.02), (5.0, 0.5, 0.03)] + [(1.0, 0.5, 1.0)] * 5
    edges = range_edges(study_of(points, "minimize")).set_index("parameter")
    assert edges.loc["lr", "edge"] == "low" and edges.loc["lr", "best"] == 0.11


def test_a_study_without_complete_trials_has_no_rows():
    assert range_edges(optuna.create_study()).empty


def test_progress_and_the_equal_budget_by_hand():
    trials = pd.DataFrame({
        "number": [0, 1, 2, 3, 4, 5],
        "optimizer": ["a", "b", "a", "a", "b", "a"],
        "state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "COMPLETE", "FAIL"],
        "value": [0.5, 0.7, math.nan, 0.9, 0.6, math.nan],
        "diverged": [False, False, True, False, False, False],
    })
    trials.attrs["maximize"] = True
    progress = optimizer_progress(trials)
    a = progress[progress["optimizer"] == "a"]
    assert list(a["spent"]) == [1, 2, 3] and list(a["number"]) == [0, 2, 3]  # the failed trial spent nothing
    assert list(a["best_so_far"]) == [0.5, 0.5, 0.9]  # a pruned trial keeps the best so far
    summary = optimizer_summary(trials).set_index("optimizer")
    assert summary.attrs["equal_budget"] == 2  # b had 2 finished trials
    assert summary.loc["a", "best_at_equal_budget"] == 0.5 and summary.loc["a", "best"] == 0.9
    assert summary.loc["b", "best_at_equal_budget"] == 0.7
    failed_only = pd.concat([trials, pd.DataFrame({"number": [6], "optimizer": ["c"], "state": ["FAIL"],
                                                   "value": [math.nan], "diverged": [False]})])
    failed_only.attrs["maximize"] = True
    assert optimizer_summary(failed_only).attrs["equal_budget"] == 0  # c has not finished a trial yet


def test_grouped_tpe_keeps_a_widened_range_inside_its_old_bounds():
    # Why a pressed range is widened in a new study and not in place: TPE with group=True (tuner's
    # sampler) keeps the first distribution it saw for a parameter name, so after widening x from 0.1..10
    # to 0.1..100 it still samples below 10, although the optimum (x = 30) lies beyond.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=0, multivariate=True, group=True, n_startup_trials=10)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial, high: float) -> float:
        x = trial.suggest_float("x", 0.1, high, log=True)
        y = trial.suggest_float("y", 0.1, 10.0, log=True)
        return (math.log(x) - math.log(30)) ** 2 + math.log(y) ** 2

    study.optimize(lambda t: objective(t, 10.0), n_trials=20)
    study.optimize(lambda t: objective(t, 100.0), n_trials=20)
    assert max(t.params["x"] for t in study.trials[20:]) <= 10.0
