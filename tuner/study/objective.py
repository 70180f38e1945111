"""The objective: one trial = one training run built from the trial's parameters.

The training seed is derived from (study seed, trial number), or fixed by `train.seed`, so any trial can be
replayed alone: `prepare_run` and `run_training` build and train a trial's run, for the objective and for
the replay (`tuner.study.replay`) alike. Every epoch's validation metric is reported for pruning, decided
in the process and written in one transaction (`EpochReports`); the whole learning curve is written to the project's
`tuner_curves` table when the trial ends, however it ends. A run that diverges is labelled (user
attributes `diverged` and `reason`) and ends PRUNED, so the sampler learns the region is bad and analysis
can count it.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import optuna

from tuner.errors import TrialTimeoutError, TunerError
from tuner.nn.data import Dataset
from tuner.nn.mlp import MLP
from tuner.nn.train import EpochRecord, TrainResult, train
from tuner.optim import Optimizer
from tuner.optim import make as make_optimizer
from tuner.storage.optuna_adapter import EpochReports
from tuner.study.blas import blas_threads
from tuner.study.space import TrialConfig, suggest, trial_seed
from tuner.study.spec import StudySpec


class WorkerStopping(TunerError):
    """The worker was asked to stop (SIGTERM or Ctrl-C) while a trial was running."""


def layer_sizes(spec: StudySpec, data: Dataset) -> list[int]:
    """Input size from the data, the spec's hidden sizes, output size from the data."""
    return [data.n_features, *spec.model.hidden, data.n_outputs]


def metric_of(spec: StudySpec, record: EpochRecord) -> float:
    """The value the study optimises, read off one epoch's record (NaN where the record has none)."""
    value = getattr(record, spec.study.objective)
    return math.nan if value is None else float(value)


def build_model(spec: StudySpec, data: Dataset, config: TrialConfig, rng: np.random.Generator) -> MLP:
    """The network a trial trains, initialised from the trial's scheme and per-layer scales."""
    return MLP(
        layer_sizes(spec, data),
        spec.model.activation,
        loss="cross_entropy" if data.is_classification else "mse",
        init=config.init,
        init_scale=list(config.init_scales),
        bias=spec.model.bias,
        bias_value=spec.model.bias_value,
        class_frequencies=data.class_frequencies,
        batchnorm=spec.model.batchnorm,
        dtype=np.dtype(spec.train.dtype),
        rng=rng,
    )


def total_steps(spec: StudySpec, data: Dataset) -> int:
    """Iterations of a full run: epochs x minibatches per epoch."""
    return spec.train.epochs * math.ceil(len(data.x_train) / spec.train.batch_size)


def build_optimizer(spec: StudySpec, data: Dataset, config: TrialConfig) -> Optimizer:
    """The trial's optimizer; τ is `tau_fraction` of the run's iterations (eq. 8.14)."""
    hparams = dict(config.hparams)
    tau_fraction = hparams.pop("tau_fraction", 1.0)
    tau = max(1, round(tau_fraction * total_steps(spec, data)))
    return make_optimizer(config.optimizer, tau=tau, clip_norm=spec.train.clip_norm, **hparams)


def training_seed(spec: StudySpec, trial_number: int) -> int:
    """The trial's training seed: `train.seed` when the spec fixes it, else from (study seed, trial number)."""
    return spec.train.seed if spec.train.seed is not None else trial_seed(spec.study.seed, trial_number)


def config_record(config: TrialConfig, seed: int) -> dict[str, Any]:
    """The trial's `config` user attribute: every value, the training seed and the BLAS threads it runs with."""
    return {**config.params, "seed": seed, "blas_threads": blas_threads()}


@dataclass(frozen=True)
class TrialRun:
    """One trial's run, ready to train: its configuration and seed, the network, the optimizer, the
    generator that shuffles the minibatches (it initialised the network first)."""

    config: TrialConfig
    seed: int
    model: MLP
    optimizer: Optimizer
    rng: np.random.Generator


def prepare_run(spec: StudySpec, data: Dataset, config: TrialConfig, seed: int) -> TrialRun:
    """The run of a trial with `config` and training seed `seed`: what the objective and the replay train."""
    rng = np.random.default_rng(seed)
    model = build_model(spec, data, config, rng)
    return TrialRun(config, seed, model, build_optimizer(spec, data, config), rng)


def run_training(spec: StudySpec, data: Dataset, run: TrialRun,
                 on_epoch: Callable[[EpochRecord], bool | None] | None = None,
                 should_stop: Callable[[int, int], str | None] | None = None) -> TrainResult:
    """Train `run` for the spec's epochs and batch size (`on_epoch`, `should_stop` as `tuner.nn.train.train`
    takes them)."""
    return train(run.model, run.optimizer, data, spec.train.epochs, spec.train.batch_size, run.rng, on_epoch,
                 should_stop)


CurveWriter = Callable[[optuna.trial.BaseTrial, list[dict]], None]
Guard = Callable[[], contextlib.AbstractContextManager]


class _EpochWatch:
    """The `on_epoch` of one trial: reports each epoch for pruning, and ends the run on a prune, a stop
    or the time budget. It keeps the epochs' records for the curve. `check_time` is the run's
    `should_stop`: the same budget, checked inside an epoch too, so one long epoch cannot overrun it."""

    def __init__(self, spec: StudySpec, trial: optuna.trial.BaseTrial, guard: Guard,
                 stop: threading.Event | None) -> None:
        self.spec, self.trial, self.guard, self.stop = spec, trial, guard, stop
        self.reports = EpochReports(trial)
        self.records: list[EpochRecord] = []
        self.started = time.monotonic()

    def __call__(self, record: EpochRecord) -> None:
        self.records.append(record)
        value = metric_of(self.spec, record)
        if math.isfinite(value):
            with self.guard():
                prune = self.reports.report(value, record.epoch)
            if prune:
                raise optuna.TrialPruned(f"pruned at epoch {record.epoch} with {value:.6g}")
        if self.stop is not None and self.stop.is_set():
            raise WorkerStopping(f"worker stopped during epoch {record.epoch}")
        if record.epoch < self.spec.train.epochs:
            self._check_budget(f"after {record.epoch} epochs")

    def check_time(self, epoch: int, batch: int) -> None:
        """TrialTimeoutError when the budget is spent in the middle of an epoch."""
        self._check_budget(f"during epoch {epoch} (after {batch} minibatches)")

    def _check_budget(self, where: str) -> None:
        budget, elapsed = self.spec.study.time_budget, time.monotonic() - self.started
        if budget is not None and elapsed > budget:
            raise TrialTimeoutError(f"time budget of {budget:g} s exceeded {where} ({elapsed:.1f} s)")


def _value(spec: StudySpec, trial: optuna.trial.BaseTrial, result: TrainResult, guard: Guard) -> float:
    """The trial's value: its best epoch's metric. A diverged run is labelled and pruned."""
    if result.diverged:  # absent means False: one write fewer for every healthy trial
        with guard():
            trial.set_user_attr("diverged", True)
            trial.set_user_attr("reason", f"diverged: {result.reason}")
        raise optuna.TrialPruned(f"diverged: {result.reason}")
    finite = [v for v in (metric_of(spec, r) for r in result.history) if math.isfinite(v)]
    if not finite:
        raise optuna.TrialPruned("no finite validation metric")
    return max(finite) if spec.study.direction == "maximize" else min(finite)


def make_objective(
    spec: StudySpec,
    data: Dataset,
    *,
    write_curve: CurveWriter | None = None,
    stop: threading.Event | None = None,
    guard: Guard = contextlib.nullcontext,
) -> Callable[[optuna.trial.BaseTrial], float]:
    """Return `objective(trial) -> value` for `spec` trained on `data`.

    `write_curve(trial, rows)` stores the per-epoch curve (the worker passes the storage's
    writer); `stop` is set by the worker's signal handler and ends the running trial at the next epoch.
    Every database write of the trial (suggestions, attributes, reports) runs inside `guard()`: the worker
    passes a guard under which a signal only sets `stop`, so no write is cut in half.
    """

    def objective(trial: optuna.trial.BaseTrial) -> float:
        seed = training_seed(spec, trial.number)
        with guard():
            config = suggest(trial, spec)
            # One attribute holds the whole record: each set_user_attr is a database write.
            trial.set_user_attr("config", config_record(config, seed))
        run = prepare_run(spec, data, config, seed)
        watch = _EpochWatch(spec, trial, guard, stop)
        try:
            result = run_training(spec, data, run, watch,
                                  should_stop=watch.check_time if spec.study.time_budget is not None else None)
        finally:
            with guard():
                watch.reports.flush()  # before the trial is told: a pruned trial's value is its last report
            if write_curve is not None and watch.records:
                write_curve(trial, [asdict(r) for r in watch.records])
        return _value(spec, trial, result, guard)

    return objective
