"""Continuing a tuner study from Python, with tuner's own objective.

    from tuner.study.optimize import run_study, load_objective
    run_study("sqlite:///tuner.db", "digits-mlp", n_trials=80)        # the worker: exact total, heartbeats

    study, objective = load_objective("sqlite:///tuner.db", "digits-mlp")
    study.optimize(objective, n_trials=10)                           # plain Optuna: 10 more, this process

`run_study` is what `tuner worker` runs: the study's total is exact across every worker, trials of dead
workers are retried, curves are stored. `load_objective` gives the study as Optuna sees it (with the spec's
sampler and pruner) and the objective tuner's workers train, for a plain `study.optimize`: Optuna then
counts `n_trials` for this process only, takes the queued trials first (retries of failed trials, the
probes' warm start), and records no curve rows (the objective is given no curve writer); everything else
(parameters, config, reports for pruning, the value) is the same as a worker's trial.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from tuner.storage import open_storage, optuna_storage
from tuner.storage.optuna_adapter import load_study
from tuner.study.catalog import load_study_spec
from tuner.study.data import load_study_data
from tuner.study.objective import make_objective
from tuner.study.space import make_pruner, make_sampler
from tuner.study.worker import WorkerReport, run_worker


def load_objective(storage_url: str, study_name: str) -> tuple[optuna.Study, Callable[[optuna.trial.BaseTrial], float]]:
    """(the Optuna study with the spec's sampler and pruner, tuner's objective for it)."""
    spec = load_study_spec(open_storage(storage_url), study_name)
    study = load_study(optuna_storage(storage_url, create_tables=False), study_name,
                       sampler=make_sampler(spec), pruner=make_pruner(spec))
    return study, make_objective(spec, load_study_data(spec))


def run_study(storage_url: str, study_name: str, **options: float | int | None) -> WorkerReport:
    """Run a worker in this process until the study's total (options: `WorkerOptions`' fields)."""
    return run_worker(storage_url, study_name, **options)
