"""A finished trial trained again from what its study stored, and checked against its stored curve.

The replay takes the path a worker's trial took, through the same functions: the stored spec, the study's
data split (`load_study_data`), the trial's parameters read back through `suggest` (a frozen trial answers
each suggestion with its stored value, so anchored eps0 and per-layer scales come out as they did), the
training seed (`training_seed`), `prepare_run` and `run_training`, with the BLAS threads the trial recorded
(`tuner.study.blas`). On the same machine and dtype the learning curve is then the stored one bit for bit,
and it is compared exactly: `train_loss`, `val_loss`, `val_accuracy` and `lr` of every stored epoch (not
`seconds`, which is wall-clock time).

A COMPLETE trial is compared epoch by epoch; a PRUNED one over the epochs it ran before it was stopped (the
replay trains the spec's full length); a trial without a stored curve (one run by plain Optuna's
`study.optimize`) cannot be compared, and the replay says so in `note`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.errors import ReplayError, TrialNotFoundError
from tuner.nn.data import Dataset
from tuner.nn.train import EpochRecord, TrainResult
from tuner.storage import StudyHandle, load_curves
from tuner.study.blas import blas_limited, blas_threads
from tuner.study.budget import DataShape, check_training_memory
from tuner.study.data import load_study_data
from tuner.study.objective import TrialRun, prepare_run, run_training, training_seed
from tuner.study.space import TrialConfig, suggest
from tuner.study.spec import StudySpec, spec_from_dict

COMPARED = ("train_loss", "val_loss", "val_accuracy", "lr")
REPLAYABLE = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Difference:
    """The first place where the replay and the stored trial differ."""

    where: str
    stored: Any
    replayed: Any

    def describe(self) -> str:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (self.stored, self.replayed))
        by = f" (difference {self.replayed - self.stored:+.3g})" if numbers else ""
        return f"{self.where}: stored {self.stored!r}, replayed {self.replayed!r}{by}"


@dataclass(frozen=True)
class Replay:
    """A trial trained again: its run (the trained model is `run.model`), how training ended, how many stored
    epochs were compared, the first difference (None: none), a one-line note on what could not be compared,
    and the loss and accuracy on the data's test split (None without one)."""

    study: str
    trial: FrozenTrial
    spec: StudySpec
    data: Dataset
    run: TrialRun
    result: TrainResult
    threads: int | None
    compared: int
    difference: Difference | None
    note: str | None
    test: tuple[float, float | None] | None

    @property
    def verified(self) -> bool:
        """The replay was compared with a stored curve and matched it exactly."""
        return self.compared > 0 and self.difference is None


def pick_trial(handle: StudyHandle, which: int | str) -> FrozenTrial:
    """Trial number `which` of the study, or its best COMPLETE trial for `"best"`; it must have finished."""
    name = handle.name
    if which == "best":
        if not any(t.state == TrialState.COMPLETE for t in handle.study.get_trials(deepcopy=False)):
            raise TrialNotFoundError(f"study '{name}' has no complete trial yet")
        return handle.study.best_trial
    trials = {t.number: t for t in handle.study.get_trials(deepcopy=False)}
    if which not in trials:
        known = f"trials 0 to {max(trials)}" if trials else "no trials"
        raise TrialNotFoundError(f"study '{name}' has no trial {which} ({known})")
    trial = trials[which]
    if trial.state not in REPLAYABLE:
        raise ReplayError(f"trial {which} of study '{name}' is {trial.state.name}: only a COMPLETE or PRUNED "
                          "trial can be trained again")
    return trial


def stored_spec(handle: StudyHandle) -> StudySpec:
    """The spec stored with a study tuner made; a study made with plain Optuna has none (ReplayError)."""
    if handle.record is None:
        raise ReplayError(f"study '{handle.name}' was not made by tuner: it has no spec to train a trial from")
    return spec_from_dict(handle.record.spec)


def replay_trial(handle: StudyHandle, trial: FrozenTrial, *, threads: int | None = None,
                 on_epoch: Callable[[EpochRecord], None] | None = None) -> Replay:
    """Train `trial` again as its worker did (see the module docstring) and compare it with what is stored.

    `threads`: the BLAS threads to train with; default: those the trial recorded, else as they are.
    """
    spec = stored_spec(handle)
    data = load_study_data(spec)
    check_training_memory(spec, DataShape.of(data))  # as a worker does: a network this machine cannot hold
    stored_config = trial.user_attrs.get("config")
    stored_config = stored_config if isinstance(stored_config, dict) else None
    config = trial_config(spec, trial)
    run = prepare_run(spec, data, config, training_seed(spec, trial.number))
    if threads is None and stored_config is not None:
        recorded = stored_config.get("blas_threads")
        threads = recorded if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 1 else None
    with blas_limited(threads):
        used = blas_threads()
        result = run_training(spec, data, run, on_epoch)
        if result.diverged:
            raise ReplayError(f"the replay of trial {trial.number} diverged: {result.reason}")
        test = run.model.evaluate(data.x_test, data.y_test) if data.x_test is not None else None
    stored_curve = load_curves(handle.engine, handle.name, trial.number)
    difference = _config_difference(stored_config, run) or _curve_difference(trial, stored_curve, result.history)
    compared = min(len(stored_curve), len(result.history))
    note = _note(trial, stored_config, stored_curve, len(result.history))
    return Replay(handle.name, trial, spec, data, run, result, used, compared, difference, note, test)


def trial_config(spec: StudySpec, trial: FrozenTrial) -> TrialConfig:
    """The trial's configuration, read back through `suggest` from its stored parameters."""
    try:
        return suggest(copy.deepcopy(trial), spec)
    except ValueError as err:  # a parameter the spec asks for that the trial does not have, or of another kind
        raise ReplayError(f"trial {trial.number}'s parameters do not fit its study's spec: {err}") from None


def _config_difference(stored: dict | None, run: TrialRun) -> Difference | None:
    if stored is None:
        return None
    replayed = {**run.config.params, "seed": run.seed}
    for key in sorted((set(stored) | set(replayed)) - {"blas_threads"}):
        if stored.get(key) != replayed.get(key):
            return Difference(f"config {key}", stored.get(key), replayed.get(key))
    return None


def _finite(value: float | None) -> float | None:
    """A value as the curve table stores it: a float, NULL (None) for NaN and infinities."""
    return None if value is None or not math.isfinite(value) else float(value)


def _curve_difference(trial: FrozenTrial, stored: list[dict], replayed: list[EpochRecord]) -> Difference | None:
    for row, record in zip(stored, replayed, strict=False):
        if row["epoch"] != record.epoch:
            return Difference("epoch number", row["epoch"], record.epoch)
        for metric in COMPARED:
            if row[metric] != _finite(getattr(record, metric)):
                return Difference(f"epoch {record.epoch}, {metric}", row[metric], _finite(getattr(record, metric)))
    if stored and trial.state == TrialState.COMPLETE and len(stored) != len(replayed):
        return Difference("epochs in the curve", len(stored), len(replayed))
    return None


def _note(trial: FrozenTrial, stored_config: dict | None, stored: list[dict], epochs: int) -> str | None:
    """What could not be compared, in one line (None: everything could)."""
    n = trial.number
    if not stored:
        made = "" if stored_config is not None else ", nor a tuner config (made with plain Optuna?)"
        return f"trial {n} has no stored curve{made}: the replay cannot be verified"
    if trial.state == TrialState.PRUNED and len(stored) < epochs:
        return (f"trial {n} was PRUNED after epoch {len(stored)}: epochs 1 to {len(stored)} compared, "
                f"{len(stored) + 1} to {epochs} are new training")
    return None


def replay_meta(replay: Replay) -> dict[str, Any]:
    """What a model file records of the replay it holds: the trial, its configuration, the checks."""
    final = replay.result.final
    trial = replay.trial
    test = None
    if replay.test is not None:
        test = {"loss": _finite(replay.test[0]), "accuracy": replay.test[1]}
    return {
        "study": replay.study, "trial": trial.number, "state": trial.state.name,
        "value": _finite(trial.value) if trial.value is not None else None,
        "params": replay.run.config.params, "seed": replay.run.seed, "blas_threads": replay.threads,
        "epochs": len(replay.result.history), "verified": replay.verified, "compared_epochs": replay.compared,
        "difference": replay.difference.describe() if replay.difference is not None else None,
        "final": {k: _finite(v) for k, v in asdict(final).items() if k not in ("epoch", "seconds")} if final else None,
        "test": test, "optuna": optuna.__version__, "spec": replay.spec.to_dict(),
    }
