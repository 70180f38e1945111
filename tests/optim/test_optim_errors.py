"""Every value out of its domain is rejected with a message that names it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tuner.errors import HyperparameterError
from tuner.optim import make


@pytest.mark.parametrize(
    ("name", "hparams", "message"),
    [
        ("momentum", {"alpha": 1.2}, "alpha must be in [0, 1), got 1.2"),
        ("nesterov", {"alpha": 1}, "alpha must be in [0, 1), got 1"),
        ("momentum", {"alpha": -0.1}, "alpha must be in [0, 1), got -0.1"),
        ("adagrad", {"delta": 0}, "delta must be > 0, got 0"),
        ("rmsprop", {"delta": -1e-8}, "delta must be > 0, got -1e-08"),
        ("sgd", {"eps0": -1}, "eps0 must be > 0, got -1"),
        ("sgd", {"eps0": 0.0}, "eps0 must be > 0, got 0.0"),
        ("sgd", {"eps0": float("nan")}, "eps0 must be a finite number > 0, got nan"),
        ("sgd", {"eps0": float("inf")}, "eps0 must be a finite number > 0, got inf"),
        ("sgd", {"eps0": "0.1"}, "eps0 must be a finite number > 0, got '0.1'"),
        ("sgd", {"eps0": True}, "eps0 must be a finite number > 0, got True"),
        ("momentum", {"alpha": None}, "alpha must be a finite number in [0, 1), got None"),
        ("sgd", {"eps_tau": -0.1}, "eps_tau must be >= 0, got -0.1"),
        ("sgd", {"tau": 0}, "tau must be an integer >= 1, got 0"),
        ("sgd", {"tau": 2.5}, "tau must be an integer >= 1, got 2.5"),
        ("sgd", {"tau": 3.0}, "tau must be an integer >= 1, got 3.0"),
        ("sgd", {"clip_norm": float("inf")}, "clip_norm must be a finite number > 0, got inf"),
        ("sgd", {"clip_norm": 0}, "clip_norm must be > 0, got 0"),
        ("rmsprop", {"rho": 1.0}, "rho must be in [0, 1), got 1.0"),
        ("adam", {"rho1": 1.5}, "rho1 must be in [0, 1), got 1.5"),
        ("adam", {"rho2": -0.5}, "rho2 must be in [0, 1), got -0.5"),
        ("rmsprop_nesterov", {"rho": 2}, "rho must be in [0, 1), got 2"),
        ("sgd", {"alpha": 0.9}, "sgd does not take alpha"),
        ("adam", {"rho": 0.9}, "adam does not take rho"),
        ("momentum", {"lr": 0.1}, "momentum does not take lr"),
    ],
)
def test_bad_hyperparameters_are_named(name, hparams, message):
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        make(name, **hparams)


def test_unknown_optimizer_lists_the_known_ones():
    with pytest.raises(HyperparameterError) as info:
        make("adamw")
    assert str(info.value) == (
        "unknown optimizer 'adamw'; known: sgd, momentum, nesterov, adagrad, rmsprop, rmsprop_nesterov, adam"
    )


def test_optional_values_may_be_none():
    opt = make("adam", eps_tau=None, tau=None, clip_norm=None)
    assert opt.clip_norm is None and opt.tau is None


def test_bad_total_steps():
    with pytest.raises(HyperparameterError, match=re.escape("total_steps must be an integer >= 1, got 0")):
        make("sgd").start(np.zeros(3, np.float32), 0)


def test_params_must_be_floating_point():
    message = "params must be a 1-D floating-point NumPy array, got int64 of shape (3,)"
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        make("sgd").start(np.zeros(3, np.int64), 10)


def test_params_must_be_one_flat_array():
    with pytest.raises(HyperparameterError, match=re.escape("1-D floating-point NumPy array, got float32 of shape (3, 4)")):
        make("sgd").start(np.zeros((3, 4), np.float32), 10)


@pytest.mark.parametrize(("params", "grad"), [(5, 5), (4, 3), (3, 4)])
def test_step_refuses_arrays_of_another_shape_than_start_was_given(params, grad):
    opt = make("momentum")
    opt.start(np.zeros(4, np.float32), 10)  # the state (velocity, chunks) is sized for 4 parameters
    message = f"momentum: params ({params},) and grad ({grad},) must have the shape given to start, (4,)"
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        opt.step(np.zeros(params, np.float32), np.zeros(grad, np.float32), lambda: 0.0)


@pytest.mark.parametrize(("params", "grad"), [(np.float32, np.float64), (np.float64, np.float32), (np.float64, np.float64)])
def test_step_refuses_arrays_of_another_dtype_than_start_was_given(params, grad):
    opt = make("adam")
    opt.start(np.zeros(4, np.float32), 10)  # a float64 gradient would round differently, by path
    before = opt.k
    message = f"adam: params ({np.dtype(params)}) and grad ({np.dtype(grad)}) must have the dtype given to start, float32"
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        opt.step(np.zeros(4, params), np.zeros(4, grad), lambda: 0.0)
    assert opt.k == before
