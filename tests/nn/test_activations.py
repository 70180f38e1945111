"""Activations: values, analytic derivatives against central differences, stability, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.errors import HyperparameterError, ModelError
from tuner.nn.activations import ACTIVATIONS, activate, activation_grad, get


def central_difference(name: str, s: np.ndarray, grad_a: np.ndarray, h: float = 1e-6, **kw) -> np.ndarray:
    """d/ds of Σ grad_a ⊙ f(s), element by element (f acts element-wise, so one pass per perturbation)."""
    up = activate(name, s + h, **kw)
    down = activate(name, s - h, **kw)
    return grad_a * (up - down) / (2 * h)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_analytic_derivative_matches_central_differences(name):
    rng = np.random.default_rng(1)
    s = rng.uniform(-4, 4, (6, 7))
    s[np.abs(s) < 1e-3] = 0.5  # keep clear of the kink of relu and leaky_relu
    grad_a = rng.standard_normal(s.shape)
    np.testing.assert_allclose(
        activation_grad(name, s, grad_a), central_difference(name, s, grad_a), rtol=1e-6, atol=1e-8
    )


def test_leaky_relu_slope_option():
    s = np.array([-2.0, -0.5, 0.0, 3.0])
    np.testing.assert_allclose(activate("leaky_relu", s), [-0.02, -0.005, 0.0, 3.0])
    np.testing.assert_allclose(activate("leaky_relu", s, slope=0.2), [-0.4, -0.1, 0.0, 3.0])
    s = np.array([-3.0, 2.0])
    np.testing.assert_allclose(
        activation_grad("leaky_relu", s, np.ones(2), slope=0.2), central_difference("leaky_relu", s, np.ones(2), slope=0.2)
    )


def test_values():
    s = np.array([-2.0, 0.0, 1.5])
    np.testing.assert_allclose(activate("relu", s), [0.0, 0.0, 1.5])
    np.testing.assert_allclose(activate("tanh", s), np.tanh(s))
    np.testing.assert_allclose(activate("sigmoid", s), 1 / (1 + np.exp(-s)), rtol=1e-15)
    np.testing.assert_allclose(activate("linear", s), s)


def test_derivative_at_zero_follows_pytorch():
    zero, one = np.zeros(1), np.ones(1)
    assert activation_grad("relu", zero, one)[0] == 0.0
    assert activation_grad("leaky_relu", zero, one)[0] == pytest.approx(0.01)


def test_sigmoid_is_stable_and_precise_in_both_tails():
    s = np.array([-1000.0, -100.0, -30.0, 30.0, 100.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):  # no overflow anywhere (underflow to 0 is fine)
        a = activate("sigmoid", s)
    assert np.all(np.isfinite(a))
    assert a[0] == 0.0 and a[-1] == 1.0
    np.testing.assert_allclose(a[1:3], np.exp(s[1:3]), rtol=1e-12)  # σ(s) ≈ e^s, to full relative precision
    a32 = activate("sigmoid", s.astype(np.float32))
    assert a32.dtype == np.float32 and np.all(np.isfinite(a32))
    assert a32[2] == pytest.approx(np.exp(-30.0), rel=1e-5)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_float32_stays_float32(name):
    s = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    assert activate(name, s).dtype == np.float32
    assert activation_grad(name, s, np.ones_like(s)).dtype == np.float32


def test_backward_in_place_into_the_upstream_gradient():
    fn = get("tanh")
    s = np.linspace(-2, 2, 8)
    a, scratch = np.empty_like(s), np.empty_like(s)
    fn.forward(s, a, scratch)
    g = np.full_like(s, 2.0)
    out = fn.backward(s, a, g, g, scratch)
    assert out is g
    np.testing.assert_allclose(g, 2 * (1 - np.tanh(s) ** 2))


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(ModelError, match=r"unknown activation 'swish'; known: relu, leaky_relu, tanh, sigmoid, linear"):
        get("swish")


@pytest.mark.parametrize("slope", [-0.1, 1.0, "a"])
def test_bad_leaky_slope_is_rejected(slope):
    with pytest.raises(HyperparameterError, match=r"leaky_relu slope must be in \[0, 1\), got"):
        get("leaky_relu", slope=slope)
