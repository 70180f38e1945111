"""Linear decay of the learning rate (eq. 8.14)."""

from __future__ import annotations

import re

import pytest

from tuner.errors import HyperparameterError
from tuner.nn.schedule import linear_decay


@pytest.mark.parametrize(
    ("k", "expected"),
    [(0, 0.1), (50, 0.5 * 0.1 + 0.5 * 0.001), (100, 0.001), (200, 0.001)],
    ids=["k=0", "k=tau/2", "k=tau", "k=2tau"],
)
def test_decays_linearly_then_stays_at_the_floor(k, expected):
    assert linear_decay(k, 0.1, 0.001, 100) == pytest.approx(expected, rel=1e-12)


def test_is_linear_between_the_ends():
    rates = [linear_decay(k, 1.0, 0.2, 8) for k in range(9)]
    steps = [a - b for a, b in zip(rates, rates[1:])]
    assert steps == pytest.approx([0.1] * 8)


def test_constant_rate_is_eps_tau_equal_to_eps0():
    assert [linear_decay(k, 0.3, 0.3, 10) for k in (0, 3, 10, 11)] == pytest.approx([0.3] * 4)


def test_is_pure():
    assert linear_decay(7, 0.1, 0.01, 20) == linear_decay(7, 0.1, 0.01, 20)


@pytest.mark.parametrize(
    ("args", "message"),
    [((-1, 0.1, 0.001, 10), "k must be >= 0, got -1"), ((0, 0.1, 0.001, 0), "tau must be >= 1, got 0")],
)
def test_rejects_bad_values(args, message):
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        linear_decay(*args)
