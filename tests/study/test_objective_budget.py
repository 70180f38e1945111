"""The trial's time budget holds inside an epoch: one huge epoch ends soon after the budget, as a timeout."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest

from tuner.errors import TrialTimeoutError
from tuner.nn.data import Dataset
from tuner.study.objective import make_objective
from tuner.study.spec import parse_spec

SPEC = """
[study]
time_budget = {budget}
[data]
source = "digits"
[model]
hidden = [8]
[train]
epochs = 2
batch_size = 1
[search]
optimizer = "sgd"
eps0 = 0.01
init_scale = 1.0
"""


def huge_epoch(rows: int) -> Dataset:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((rows, 4)), rng.integers(0, 2, rows)
    return Dataset("huge", x, y, x[:10], y[:10], "classification", 2)


def test_a_huge_epoch_ends_soon_after_a_tiny_budget_as_a_timeout():
    rows = 1_000_000  # a million single-row steps: minutes for the epoch
    objective = make_objective(parse_spec(SPEC.format(budget=0.2)), huge_epoch(rows))
    trial = optuna.create_study(direction="maximize").ask()
    started = time.monotonic()
    with pytest.raises(TrialTimeoutError, match=r"time budget of 0.2 s exceeded during epoch 1 \(after \d+ minibatches\)"):
        objective(trial)
    assert time.monotonic() - started < 10


def test_a_run_within_its_budget_completes():
    objective = make_objective(parse_spec(SPEC.format(budget="60")), huge_epoch(200))
    trial = optuna.create_study(direction="maximize").ask()
    assert 0.0 <= objective(trial) <= 1.0
