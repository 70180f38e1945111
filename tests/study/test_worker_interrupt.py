"""A stop signal during training ends the trial at once, but never cuts one of its database writes."""

from __future__ import annotations

import contextlib
import threading

import optuna
import pytest

from tests.conftest import TINY_SPEC
from tuner.study.data import load_study_data
from tuner.study.objective import WorkerStopping, make_objective
from tuner.study.spec import parse_spec
from tuner.study.worker import TrainingInterrupt


def test_a_signal_inside_a_write_only_sets_stop_and_the_trial_ends_after_that_epoch():
    spec = parse_spec(TINY_SPEC.format(name="interrupt", n_trials=1, epochs=50))
    stop = threading.Event()
    interrupt = TrainingInterrupt(stop)
    writes = []

    @contextlib.contextmanager
    def guard_with_a_signal_in_the_third_write():
        with interrupt.writing():
            writes.append(stop.is_set())
            if len(writes) == 3:  # the signal lands in the middle of a database write
                interrupt.interrupt("worker stopped by SIGTERM")
            yield

    objective = make_objective(spec, load_study_data(spec), stop=stop, guard=guard_with_a_signal_in_the_third_write)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    with pytest.raises(WorkerStopping, match="worker stopped during epoch 2"):
        with interrupt.training():
            objective(trial)
    # guarded 1 = suggestions and config, 2 and 3 = the reports of epochs 1 and 2; the report of epoch 2
    # went through although the signal came during it; after it only the one write that stores the reports
    # (stop already set), so the trial ends with both epochs stored
    assert writes == [False, False, False, True]
    assert sorted(study._storage.get_trial(trial._trial_id).intermediate_values) == [1, 2]
    assert interrupt.reason == "worker stopped by SIGTERM"


def test_a_signal_outside_any_write_stops_training_at_once():
    stop = threading.Event()
    interrupt = TrainingInterrupt(stop)
    with pytest.raises(WorkerStopping, match="SIGTERM"):
        with interrupt.training():
            interrupt.interrupt("SIGTERM")
    assert stop.is_set()
    with pytest.raises(WorkerStopping, match="before the trial started training"):
        with interrupt.training():
            pass
