"""Linear decay of the learning rate (eq. 8.14)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tuner.errors import HyperparameterError
from tuner.optim import OPTIMIZERS, linear_decay, make


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


def test_hand_worked_values():
    # ε0 = 0.1, ε_τ = 0.001, τ = 100: k = 25 -> 0.75·0.1 + 0.25·0.001; k = 99 -> 0.01·0.1 + 0.99·0.001
    assert linear_decay(25, 0.1, 0.001, 100) == pytest.approx(0.07525, rel=1e-12)
    assert linear_decay(99, 0.1, 0.001, 100) == pytest.approx(0.00199, rel=1e-12)
    assert linear_decay(3, 2.0, 0.0, 4) == pytest.approx(0.5, rel=1e-12)  # a floor of 0 is allowed


def closed_form(k, eps0, eps_tau, tau):
    """Eq. 8.14 written out independently of the code under test."""
    return eps_tau if k > tau else (1 - k / tau) * eps0 + (k / tau) * eps_tau


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_rate_follows_the_closed_form_over_a_run(name):
    eps0, eps_tau, steps = 0.2, 0.004, 12
    opt = make(name, eps0=eps0, eps_tau=eps_tau)
    opt.start(np.zeros(3), steps)
    assert opt.tau == steps
    for k in range(steps + 3):  # past τ too, where the rate stays at ε_τ
        assert opt.rate(k) == pytest.approx(closed_form(k, eps0, eps_tau, steps), rel=1e-12)


def test_every_step_applies_the_closed_form_rate():
    """SGD under a unit gradient moves by exactly ε_k at step k: the rate the update really used."""
    eps0, eps_tau, steps = 0.2, 0.004, 12
    params, grad = np.zeros(1), np.zeros(1)

    def closure():
        grad[:] = 1.0
        return 0.0

    opt = make("sgd", eps0=eps0, eps_tau=eps_tau)
    opt.start(params, steps)
    for k in range(steps + 3):
        before = params[0]
        opt.step(params, grad, closure)
        assert before - params[0] == pytest.approx(closed_form(k, eps0, eps_tau, steps), rel=1e-12)


def test_does_not_depend_on_call_order_or_history():
    args = (0.3, 0.01, 9)
    forward = {k: linear_decay(k, *args) for k in range(12)}
    rng = np.random.default_rng(0)
    shuffled = {int(k): linear_decay(int(k), *args) for k in rng.permutation(12)}
    linear_decay(5, 1.0, 0.5, 3)  # a call with other arguments in between changes nothing
    backward = {k: linear_decay(k, *args) for k in reversed(range(12))}
    assert forward == shuffled == backward
    assert forward == pytest.approx({k: closed_form(k, *args) for k in range(12)}, rel=1e-12)


def test_a_run_does_not_change_the_rates_of_the_next():
    params, grad = np.zeros(4), np.zeros(4)
    opt = make("momentum", eps0=0.1, eps_tau=0.002)
    opt.start(params, 10)
    fresh = [opt.rate(k) for k in range(12)]
    for _ in range(7):
        opt.step(params, grad, lambda: 0.0)
    assert [opt.rate(k) for k in range(12)] == fresh
    opt.start(params, 10)
    assert [opt.rate(k) for k in range(12)] == fresh


@pytest.mark.parametrize(
    ("args", "message"),
    [((-1, 0.1, 0.001, 10), "k must be >= 0, got -1"), ((0, 0.1, 0.001, 0), "tau must be an integer >= 1, got 0")],
)
def test_rejects_bad_values(args, message):
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        linear_decay(*args)
