"""The declarative hyperparameter domains: one table, the bounds of ALGORITHMS.md, one message shape."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tuner.errors import HyperparameterError
from tuner.optim import DOMAINS, HYPERPARAMETERS, Domain
from tuner.optim.domains import check_count


def test_the_table_covers_every_real_hyperparameter_and_nothing_else():
    takes = {h for names in HYPERPARAMETERS.values() for h in names}
    assert set(DOMAINS) == takes | {"eps0", "eps_tau", "clip_norm"}


@pytest.mark.parametrize(
    ("name", "described", "inside", "outside"),
    [
        ("eps0", "> 0", [1e-12, 0.5, 10.0], [0.0, -1e-12]),
        ("eps_tau", ">= 0", [0.0, 0.5], [-1e-12]),
        ("alpha", "in [0, 1)", [0.0, 0.9, 1 - 1e-12], [1.0, -1e-12, 1.2]),
        ("rho", "in [0, 1)", [0.0, 0.99], [1.0]),
        ("rho1", "in [0, 1)", [0.0, 0.9], [1.0]),
        ("rho2", "in [0, 1)", [0.0, 0.999], [1.0]),
        ("delta", "> 0", [1e-8], [0.0]),
        ("clip_norm", "> 0", [1.0], [0.0]),
    ],
)
def test_domains_of_algorithms_md(name, described, inside, outside):
    domain = DOMAINS[name]
    assert domain.describe() == described
    assert all(domain.contains(v) for v in inside)
    assert not any(domain.contains(v) for v in outside)
    assert not any(domain.contains(v) for v in (float("nan"), float("inf"), -float("inf")))


def test_a_validator_can_read_the_bounds():
    alpha = DOMAINS["alpha"]
    assert (alpha.low, alpha.high, alpha.low_closed, alpha.high_closed) == (0.0, 1.0, True, False)
    assert (DOMAINS["eps0"].low, DOMAINS["eps0"].high, DOMAINS["eps0"].low_closed) == (0.0, None, False)


@pytest.mark.parametrize(
    ("domain", "described"),
    [
        (Domain(0.0, 1.0, high_closed=True), "in (0, 1]"),
        (Domain(0, 1, low_closed=True, high_closed=True), "in [0, 1]"),
        (Domain(1e-8), "> 1e-08"),
        (Domain(high=1.0), "< 1"),
        (Domain(high=2.5, high_closed=True), "<= 2.5"),
        (Domain(), "any finite number"),
    ],
)
def test_describe_states_the_closed_ends(domain, described):
    assert domain.describe() == described


def test_contains_honours_each_end():
    half_open = Domain(0.0, 1.0, high_closed=True)
    assert not half_open.contains(0.0) and half_open.contains(1.0)
    assert Domain().contains(-1e300) and not Domain().contains(10**400)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.2, "alpha must be in [0, 1), got 1.2"),
        (1, "alpha must be in [0, 1), got 1"),
        (-0.1, "alpha must be in [0, 1), got -0.1"),
        (float("nan"), "alpha must be a finite number in [0, 1), got nan"),
        (float("-inf"), "alpha must be a finite number in [0, 1), got -inf"),
        (10**400, f"alpha must be a finite number in [0, 1), got {10**400!r}"),
        (True, "alpha must be a finite number in [0, 1), got True"),
        ("0.9", "alpha must be a finite number in [0, 1), got '0.9'"),
        (None, "alpha must be a finite number in [0, 1), got None"),
        (1 + 0j, "alpha must be a finite number in [0, 1), got (1+0j)"),
    ],
)
def test_check_names_the_parameter_and_the_value(value, message):
    with pytest.raises(HyperparameterError) as info:
        DOMAINS["alpha"].check("alpha", value)
    assert str(info.value) == message


def test_check_returns_a_python_float():
    for value in (0, 0.5, np.float32(0.25), np.int64(0)):
        checked = DOMAINS["alpha"].check("alpha", value)
        assert type(checked) is float and checked == float(value)


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_check_count_accepts_integers_from_one(value):
    assert check_count("tau", value) == value and type(check_count("tau", value)) is int


@pytest.mark.parametrize("value", [0, -3, 2.5, 3.0, True, "4", None])
def test_check_count_refuses_the_rest(value):
    with pytest.raises(HyperparameterError, match=re.escape(f"tau must be an integer >= 1, got {value!r}")):
        check_count("tau", value)
