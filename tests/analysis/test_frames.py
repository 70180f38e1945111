"""The analysis frames of a real study on SQLite and PostgreSQL, checked against Optuna's own trials."""

from __future__ import annotations

import math
import statistics

import optuna
import pytest

from tuner.analysis import curves_frame, open_study, optimizer_summary, trials_frame
from tuner.analysis.frames import (
    CURVE_COLUMNS,
    SUMMARY_COLUMNS,
    TRIAL_COLUMNS,
    best_epoch,
    best_trials,
    init_guess_rows,
    init_scale_columns,
    init_scale_guess,
)
from tuner.errors import AnalysisError
from tuner.study.create import create_study
from tuner.study.space import trial_seed
from tuner.study.spec import load_spec
from tuner.study.worker import run_worker

from .conftest import PER_LAYER, SPEC

EPOCHS = 3


def optuna_trials(url: str, name: str) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.number: t for t in optuna.load_study(study_name=name, storage=url).get_trials()}


def test_trials_frame_has_one_row_per_trial_with_state_value_duration_and_every_parameter(storage_url, make_study):
    name = make_study(storage_url, n_trials=5, epochs=EPOCHS)
    frame = trials_frame(open_study(storage_url, name))
    trials = optuna_trials(storage_url, name)

    assert list(frame.columns[: len(TRIAL_COLUMNS)]) == TRIAL_COLUMNS
    for column in ("optimizer", "eps0", "eps_tau_ratio", "eps_tau", "tau_fraction", "init"):
        assert column in frame.columns
    assert init_scale_columns(frame) == ["init_scale_0", "init_scale_1", "init_scale_2"]
    assert frame["number"].tolist() == sorted(trials)
    assert set(frame["optimizer"]) == {"sgd", "momentum"}

    for row in frame.itertuples(index=False):
        t = trials[row.number]
        assert row.state == t.state.name
        assert (math.isnan(row.value) and t.value is None) or row.value == pytest.approx(t.value)
        assert row.duration_s == pytest.approx(t.duration.total_seconds())
        assert row.duration_s > 0
        assert row.diverged == bool(t.user_attrs.get("diverged", False))
        assert row.seed == t.user_attrs["config"]["seed"] == trial_seed(3, row.number)  # replayable alone
        for key, value in t.params.items():  # every searched parameter, under its Optuna name
            expected = pytest.approx(value) if isinstance(value, float) else value
            assert getattr(row, key) == expected, key
        assert row.init == "glorot_uniform"  # fixed values are columns too
        # alpha is only suggested for the optimizers that take it
        assert math.isnan(row.alpha) if row.optimizer == "sgd" else 0.5 <= row.alpha <= 0.9
        assert 0.3 <= row.init_scale_0 <= 3.0


def test_a_shared_init_scale_is_a_column_per_layer_too(sqlite_url, make_study):
    name = make_study(sqlite_url, "shared", n_trials=2, epochs=1, init_scale="1.5")
    frame = trials_frame(open_study(sqlite_url, name))
    assert init_scale_columns(frame) == ["init_scale_0", "init_scale_1", "init_scale_2"]
    assert (frame[["init_scale", "init_scale_0", "init_scale_1", "init_scale_2"]] == 1.5).all().all()


def test_curves_frame_has_one_row_per_trial_and_epoch_matching_the_trial_values(storage_url, make_study):
    name = make_study(storage_url, n_trials=4, epochs=EPOCHS)
    curves = curves_frame(open_study(storage_url, name))
    trials = optuna_trials(storage_url, name)

    assert list(curves.columns) == CURVE_COLUMNS
    assert sorted(curves["trial_number"].unique()) == sorted(trials)
    for number, curve in curves.groupby("trial_number"):
        assert curve["epoch"].tolist() == list(range(1, EPOCHS + 1))
        t = trials[number]
        if t.state == optuna.trial.TrialState.COMPLETE:
            # the objective is the best validation accuracy over the epochs
            assert curve["val_accuracy"].max() == pytest.approx(t.value)
            assert list(t.intermediate_values.values()) == pytest.approx(curve["val_accuracy"].tolist())
    assert (curves["seconds"] >= 0).all() and (curves["lr"] > 0).all()


def test_optimizer_summary_counts_and_best_per_optimizer(sqlite_url, make_study):
    name = make_study(sqlite_url, n_trials=6, epochs=2)
    frame = trials_frame(open_study(sqlite_url, name))
    summary = optimizer_summary(frame, maximize=True)
    trials = optuna_trials(sqlite_url, name)

    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary["trials"].sum() == len(trials)
    for row in summary.itertuples(index=False):
        group = [t for t in trials.values() if t.params["optimizer"] == row.optimizer]
        complete = [t.value for t in group if t.state == optuna.trial.TrialState.COMPLETE]
        assert row.trials == len(group)
        assert row.complete == len(complete)
        assert row.pruned == sum(t.state == optuna.trial.TrialState.PRUNED for t in group)
        assert row.diverged == sum(bool(t.user_attrs.get("diverged")) for t in group)
        assert row.best == pytest.approx(max(complete))
        assert row.median == pytest.approx(statistics.median(complete))
    assert summary["best"].is_monotonic_decreasing


def test_frames_of_a_study_without_trials_are_empty_with_their_columns(sqlite_url, make_study):
    name = make_study(sqlite_url, "empty", run=False)
    assert trials_frame(open_study(sqlite_url, name)).empty
    assert list(curves_frame(open_study(sqlite_url, name)).columns) == CURVE_COLUMNS
    assert optimizer_summary(trials_frame(open_study(sqlite_url, name))).empty


GUESS = {
    "multipliers": [1.2, 0.8, 2.0],
    "iterations": [1, 2, 1],
    "converged": [True, True, False],
    "target": 1.0,
    "tol": 0.01,
    "before": [{"layer": i, "fan_in": 4, "fan_out": 3, "activation": "tanh", "pre_std": 0.5} for i in range(3)],
    "after": [{"layer": i, "fan_in": 4, "fan_out": 3, "activation": "tanh", "pre_std": 1.0} for i in range(3)],
}


def test_init_scale_guess_reads_the_stored_multipliers():
    assert init_scale_guess(GUESS) == [1.2, 0.8, 2.0]
    assert init_scale_guess([1, 2.5]) == [1.0, 2.5]
    assert init_scale_guess(None) is None
    assert init_scale_guess({"iterations": [1]}) is None
    assert init_scale_guess({"multipliers": ["x"]}) is None


def test_init_guess_rows_has_a_row_per_layer():
    rows = init_guess_rows(GUESS)
    assert rows[1] == {"layer": 1, "fan_in": 4, "fan_out": 3, "activation": "tanh", "multiplier": 0.8,
                       "iterations": 2, "converged": True, "pre_std_before": 0.5, "pre_std_after": 1.0}
    assert init_guess_rows([0.5]) == [{"layer": 0, "multiplier": 0.5}]
    assert init_guess_rows(None) == []


def test_best_epoch_is_the_earliest_epoch_of_the_best_finite_value():
    values = {1: 0.5, 2: 0.3, 3: 0.3, 4: math.nan}
    assert best_epoch(values, maximize=False) == 2
    assert best_epoch(values, maximize=True) == 1
    assert best_epoch({}, maximize=True) is None
    assert best_epoch({1: math.nan}, maximize=False) is None


def test_trials_frame_has_each_trials_best_epoch_and_its_start_and_end_times(sqlite_url, make_study):
    name = make_study(sqlite_url, n_trials=4, epochs=EPOCHS)
    frame = trials_frame(open_study(sqlite_url, name))
    curves = curves_frame(open_study(sqlite_url, name))
    trials = optuna_trials(sqlite_url, name)
    for row in frame.itertuples(index=False):
        t = trials[row.number]
        assert (row.datetime_start, row.datetime_complete) == (t.datetime_start, t.datetime_complete)
        assert row.duration_s == pytest.approx((row.datetime_complete - row.datetime_start).total_seconds())
        if t.state == optuna.trial.TrialState.COMPLETE:  # the epoch the trial's value comes from
            curve = curves[curves["trial_number"] == row.number]
            epochs = curve[curve["val_accuracy"] == curve["val_accuracy"].max()]["epoch"]
            assert row.best_epoch == epochs.min()
            assert t.intermediate_values[row.best_epoch] == pytest.approx(row.value)
    assert str(frame["best_epoch"].dtype) == "Int64"


@pytest.fixture
def loss_study(sqlite_url, tmp_path):
    """A `val_loss` study (minimised) of six trials."""
    path = tmp_path / "loss.toml"
    path.write_text(SPEC.format(name="loss", n_trials=6, epochs=2, init_scale=PER_LAYER)
                    .replace('objective = "val_accuracy"', 'objective = "val_loss"'))
    create_study(sqlite_url, load_spec(path))
    assert run_worker(sqlite_url, "loss", heartbeat_interval=5, poll_interval=0.1).reason == "done"
    return open_study(sqlite_url, "loss")


def test_optimizer_summary_of_a_minimize_study_ranks_the_lowest_loss_best(loss_study):
    frame = trials_frame(loss_study)
    summary = optimizer_summary(frame)  # as in README: the direction comes from the study
    assert summary.attrs["maximize"] is False
    for row in summary.itertuples(index=False):
        complete = frame[(frame["optimizer"] == row.optimizer) & (frame["state"] == "COMPLETE")]["value"]
        assert row.best == pytest.approx(complete.min()) and row.best < complete.max()
    assert summary["best"].is_monotonic_increasing
    assert best_trials(frame, 1)["value"].iloc[0] == frame["value"].min()
    for row in frame[frame["state"] == "COMPLETE"].itertuples(index=False):
        assert row.best_epoch in (1, 2)


def test_a_frame_without_its_direction_takes_the_studys_or_refuses_to_guess(loss_study):
    frame = trials_frame(loss_study)
    bare = frame.copy()
    bare.attrs.clear()  # as a frame read back from an export
    with pytest.raises(AnalysisError, match="pass study="):
        optimizer_summary(bare)
    from_study = optimizer_summary(bare, study=loss_study)
    assert from_study["best"].tolist() == optimizer_summary(frame)["best"].tolist()
    assert from_study["best"].is_monotonic_increasing
