"""EpochReports: a trial's reports written together and pruned in the process must end every trial of a
study exactly as Optuna's own `report` + `should_prune` per epoch do (one process: nothing else completes
a trial meanwhile), on a real SQLite file."""

from __future__ import annotations

import math

import optuna
import pytest

from tuner.storage.optuna_adapter import EpochReports

EPOCHS = 8


def curve(trial: optuna.Trial, step: int) -> float:
    """A learning curve that depends on the trial's parameters: some trials are worth pruning."""
    x, y = trial.suggest_float("x", -3, 3), trial.suggest_float("y", 0.1, 2.0, log=True)
    return (1 - math.exp(-y * (step + 1))) / (1 + x * x)


def objective(local: bool):
    def run(trial: optuna.Trial) -> float:
        reports = EpochReports(trial, flush_every=3600.0)
        value = math.nan
        try:
            for step in range(EPOCHS):
                value = curve(trial, step)
                if local:
                    prune = reports.report(value, step)
                else:
                    trial.report(value, step)
                    prune = trial.should_prune()
                if prune:
                    raise optuna.TrialPruned()
        finally:
            reports.flush()
        return value

    return run


def run_study(url: str, pruner: optuna.pruners.BasePruner, local: bool) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(storage=url, study_name="s", direction="maximize", pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective(local), n_trials=30)
    return study.trials


@pytest.mark.parametrize("pruner", [
    lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    lambda: optuna.pruners.PercentilePruner(60.0, n_startup_trials=2, n_warmup_steps=1, interval_steps=2),
    lambda: optuna.pruners.NopPruner(),
    lambda: optuna.pruners.SuccessiveHalvingPruner(),  # not decided in the process: Optuna's own path
], ids=["median", "percentile", "nop", "successive-halving"])
def test_the_trials_end_as_with_optunas_report_and_should_prune(tmp_path, pruner):
    ours = run_study(f"sqlite:///{tmp_path / 'ours.db'}", pruner(), local=True)
    theirs = run_study(f"sqlite:///{tmp_path / 'theirs.db'}", pruner(), local=False)
    assert [(t.state, t.value, t.intermediate_values) for t in ours] == [
        (t.state, t.value, t.intermediate_values) for t in theirs]
    if not isinstance(pruner(), optuna.pruners.NopPruner):
        assert any(t.state == optuna.trial.TrialState.PRUNED for t in ours)  # the comparison compared prunes


def test_values_are_stored_by_flush_and_not_before(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'f.db'}", direction="maximize")
    trial = study.ask()
    reports = EpochReports(trial, flush_every=3600.0)
    for step in range(3):
        assert reports.report(0.1 * step, step) is False
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.intermediate_values == {}
    reports.flush()
    assert study._storage.get_trial(trial._trial_id).intermediate_values == {0: 0.0, 1: 0.1, 2: 0.2}
    assert reports.report(9.0, 1) is False  # a step reported twice: the first value stands, as in Optuna
    reports.flush()
    assert study._storage.get_trial(trial._trial_id).intermediate_values[1] == 0.1
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert study.trials[0].value == 0.2  # a pruned trial's value is its last report: flushed before the tell


def test_a_running_trial_is_flushed_every_interval(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'i.db'}", direction="maximize")
    trial = study.ask()
    reports = EpochReports(trial, flush_every=0.0)
    reports.report(0.5, 0)
    assert study._storage.get_trial(trial._trial_id).intermediate_values == {0: 0.5}


def test_non_finite_values_are_stored_as_optuna_stores_them(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'n.db'}", direction="minimize")
    trial = study.ask()
    reports = EpochReports(trial)
    for step, value in enumerate((math.inf, -math.inf, 1.5)):
        reports.report(value, step)
    reports.report(math.nan, 3)
    reports.flush()
    stored = study._storage.get_trial(trial._trial_id).intermediate_values
    assert stored[0] == math.inf and stored[1] == -math.inf and stored[2] == 1.5 and math.isnan(stored[3])
