"""One step of every optimizer worked out by hand from ALGORITHMS.md, plus the properties it promises.

The expected numbers are computed here from the formulas in float64, independently of the code's
in-place arithmetic; the bowl is J(θ) = ½ Σ a_i θ_i², so g = a ⊙ θ.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.optim import HYPERPARAMETERS, OPTIMIZERS, make

THETA0 = np.array([1.0, -2.0, 0.5])
A = np.array([1.0, 2.0, 3.0])
G0 = A * THETA0  # the gradient at THETA0


def constant(name, eps0, **hparams):
    """An optimizer at a constant rate (ε_τ = ε0), started for a 10-step run."""
    return make(name, eps0=eps0, eps_tau=eps0, **hparams)


def one_step(name, bowl, dtype=np.float64, **hparams):
    params, grad, closure = bowl(THETA0, A, dtype)
    opt = constant(name, **hparams)
    opt.start(params, 10)
    loss = opt.step(params, grad, closure)
    assert loss == pytest.approx(0.5 * np.sum(A * THETA0**2))
    assert opt.k == 1
    return params, opt


def test_sgd_one_step(bowl):
    params, _ = one_step("sgd", bowl, eps0=0.1)
    np.testing.assert_allclose(params, THETA0 - 0.1 * G0, rtol=1e-12)


def test_momentum_two_steps(bowl):
    params, grad, closure = bowl(THETA0, A)
    opt = constant("momentum", eps0=0.1, alpha=0.9)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    v1 = -0.1 * G0
    theta1 = THETA0 + v1
    np.testing.assert_allclose(params, theta1, rtol=1e-12)
    opt.step(params, grad, closure)
    v2 = 0.9 * v1 - 0.1 * (A * theta1)
    np.testing.assert_allclose(opt.state["v"], v2, rtol=1e-12)
    np.testing.assert_allclose(params, theta1 + v2, rtol=1e-12)


def test_nesterov_takes_the_gradient_at_the_interim_point(bowl):
    params, grad, closure = bowl(THETA0, A)
    opt = constant("nesterov", eps0=0.1, alpha=0.9)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    v1 = -0.1 * G0
    theta1 = THETA0 + v1
    np.testing.assert_allclose(params, theta1, rtol=1e-12)
    opt.step(params, grad, closure)
    interim = theta1 + 0.9 * v1
    np.testing.assert_allclose(closure.calls[1], interim, rtol=1e-12)
    v2 = 0.9 * v1 - 0.1 * (A * interim)
    np.testing.assert_allclose(opt.state["v"], v2, rtol=1e-12)
    np.testing.assert_allclose(params, theta1 + v2, rtol=1e-12)


@pytest.mark.parametrize("name", ["nesterov", "rmsprop_nesterov"])
def test_look_ahead_restores_theta_exactly(name):
    rng = np.random.default_rng(0)
    params = rng.normal(size=1000).astype(np.float32)
    grad = np.zeros_like(params)
    seen = {}

    def closure():
        seen["theta"] = params.copy()
        grad[:] = rng.normal(size=params.size)
        return 0.0

    opt = make(name, eps0=0.37, alpha=0.93)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    before = params.copy()
    v = opt.state["v"].copy()
    alpha_v = v * np.float32(0.93)
    opt.step(params, grad, closure)
    assert not np.array_equal(seen["theta"], before)
    np.testing.assert_array_equal(seen["theta"], before + alpha_v)
    # θ after the step is exactly θ + v_new computed from the restored θ, not from θ̃ − αv.
    np.testing.assert_array_equal(params, before + opt.state["v"])


def test_look_ahead_restores_theta_when_the_closure_raises(bowl):
    params, grad, closure = bowl(THETA0, A)
    opt = constant("nesterov", eps0=0.1, alpha=0.9)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    before = params.copy()

    def failing():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        opt.step(params, grad, failing)
    np.testing.assert_array_equal(params, before)


def test_adagrad_two_steps(bowl):
    params, grad, closure = bowl(THETA0, A)
    opt = constant("adagrad", eps0=0.1, delta=1e-7)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    r1 = G0**2
    theta1 = THETA0 - 0.1 / (1e-7 + np.sqrt(r1)) * G0
    np.testing.assert_allclose(params, theta1, rtol=1e-12)
    opt.step(params, grad, closure)
    g1 = A * theta1
    r2 = r1 + g1**2
    np.testing.assert_allclose(opt.state["r"], r2, rtol=1e-12)
    np.testing.assert_allclose(params, theta1 - 0.1 / (1e-7 + np.sqrt(r2)) * g1, rtol=1e-12)


def test_rmsprop_one_step_has_delta_inside_the_root(bowl):
    delta = 0.5  # large enough that inside and outside the root give visibly different steps
    params, opt = one_step("rmsprop", bowl, eps0=0.1, rho=0.8, delta=delta)
    r1 = 0.2 * G0**2
    np.testing.assert_allclose(opt.state["r"], r1, rtol=1e-12)
    np.testing.assert_allclose(params, THETA0 - 0.1 / np.sqrt(delta + r1) * G0, rtol=1e-12)
    assert not np.allclose(params, THETA0 - 0.1 / (delta + np.sqrt(r1)) * G0)


def test_rmsprop_nesterov_two_steps(bowl):
    params, grad, closure = bowl(THETA0, A)
    opt = constant("rmsprop_nesterov", eps0=0.1, alpha=0.9, rho=0.8, delta=1e-6)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    r1 = 0.2 * G0**2
    v1 = -0.1 / np.sqrt(1e-6 + r1) * G0
    theta1 = THETA0 + v1
    np.testing.assert_allclose(params, theta1, rtol=1e-12)
    opt.step(params, grad, closure)
    interim = theta1 + 0.9 * v1
    np.testing.assert_allclose(closure.calls[1], interim, rtol=1e-12)
    g = A * interim
    r2 = 0.8 * r1 + 0.2 * g**2
    v2 = 0.9 * v1 - 0.1 / np.sqrt(1e-6 + r2) * g
    np.testing.assert_allclose(opt.state["r"], r2, rtol=1e-12)
    np.testing.assert_allclose(params, theta1 + v2, rtol=1e-12)


def test_rmsprop_nesterov_guards_a_zero_gradient(bowl):
    params, grad, closure = bowl([0.0, 1.0, 0.0], A)  # g = 0 where θ = 0, so r stays 0 there
    opt = constant("rmsprop_nesterov", eps0=0.1)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    assert np.all(np.isfinite(params))
    assert params[0] == 0.0 and params[2] == 0.0


def test_adam_two_steps(bowl):
    params, grad, closure = bowl(THETA0, A)
    rho1, rho2, delta, eps = 0.8, 0.95, 1e-8, 0.1
    opt = constant("adam", eps0=eps, rho1=rho1, rho2=rho2, delta=delta)
    opt.start(params, 10)
    theta, s, r = THETA0.copy(), np.zeros(3), np.zeros(3)
    for t in (1, 2):
        opt.step(params, grad, closure)
        g = A * theta
        s = rho1 * s + (1 - rho1) * g
        r = rho2 * r + (1 - rho2) * g * g
        s_hat, r_hat = s / (1 - rho1**t), r / (1 - rho2**t)
        theta = theta - eps * s_hat / (np.sqrt(r_hat) + delta)
        np.testing.assert_allclose(opt.state["s"], s, rtol=1e-12)
        np.testing.assert_allclose(opt.state["r"], r, rtol=1e-12)
        np.testing.assert_allclose(params, theta, rtol=1e-12)


def test_adam_first_step_is_about_minus_eps_sign_g(bowl):
    params, grad, closure = bowl([3.0, -1e-3, 200.0], A)  # gradients over five orders of magnitude
    opt = make("adam", eps0=0.01)
    opt.start(params, 10)
    before = params.copy()
    opt.step(params, grad, closure)
    np.testing.assert_allclose(params - before, -0.01 * np.sign(before), rtol=1e-4)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_stays_float32(name, bowl):
    params, grad, closure = bowl(THETA0, A, np.float32)
    opt = make(name, eps0=0.1)
    opt.start(params, 10)
    for _ in range(3):
        opt.step(params, grad, closure)
    assert params.dtype == np.float32
    assert all(a.dtype == np.float32 and a.shape == params.shape for a in opt.state.values())


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_descends_the_bowl(name, bowl):
    params, grad, closure = bowl(THETA0, A, np.float32)
    opt = make(name, eps0=0.1)
    opt.start(params, 300)
    losses = [opt.step(params, grad, closure) for _ in range(300)]
    assert losses[-1] < 0.1 * losses[0]


def test_momentum_terminal_speed_under_a_constant_gradient():
    params = np.zeros(2)
    grad = np.zeros(2)
    g = np.array([3.0, 4.0])  # ‖g‖ = 5

    def closure():
        grad[:] = g
        return 0.0

    eps, alpha = 0.01, 0.9
    opt = constant("momentum", eps0=eps, alpha=alpha)
    opt.start(params, 1000)
    for _ in range(300):
        opt.step(params, grad, closure)
    speed = np.linalg.norm(opt.state["v"])
    assert speed == pytest.approx(eps * 5.0 / (1 - alpha), rel=1e-9)
    assert speed == pytest.approx(10 * eps * 5.0, rel=1e-9)  # α = 0.9: ten times plain SGD


def test_each_step_uses_the_scheduled_rate(bowl):
    params, grad, closure = bowl([1.0], [1.0])
    opt = make("sgd", eps0=0.1, eps_tau=0.02, tau=4)
    opt.start(params, 100)
    theta = 1.0
    for k in range(6):
        opt.step(params, grad, closure)
        rate = (1 - k / 4) * 0.1 + k / 4 * 0.02 if k <= 4 else 0.02
        assert opt.rate(k) == pytest.approx(rate)
        theta -= rate * theta
        assert params[0] == pytest.approx(theta, rel=1e-12)


def test_tau_defaults_to_the_run_length_and_eps_tau_to_one_percent():
    opt = make("momentum", eps0=0.5)
    assert opt.eps_tau == pytest.approx(0.005)
    opt.start(np.zeros(3, np.float32), 40)
    assert opt.tau == 40
    assert opt.rate(40) == pytest.approx(0.005)
    opt.start(np.zeros(3, np.float32), 80)  # a new run re-derives τ
    assert opt.tau == 80
    fixed = make("momentum", eps0=0.5, tau=7)
    fixed.start(np.zeros(3, np.float32), 80)
    assert fixed.tau == 7


def test_start_resets_state_and_counter(bowl):
    params, grad, closure = bowl(THETA0, A, np.float32)
    opt = make("adam", eps0=0.1)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    opt.start(params, 10)
    assert opt.k == 0
    assert not np.any(opt.state["s"]) and not np.any(opt.state["r"])


def test_step_before_start_is_an_error(bowl):
    params, grad, closure = bowl(THETA0, A)
    with pytest.raises(RuntimeError, match="start"):
        make("sgd").step(params, grad, closure)


def test_hyperparameters_registry():
    assert OPTIMIZERS == ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_nesterov", "adam")
    assert HYPERPARAMETERS["sgd"] == ()
    assert HYPERPARAMETERS["nesterov"] == ("alpha",)
    assert HYPERPARAMETERS["rmsprop_nesterov"] == ("alpha", "rho", "delta")
    assert HYPERPARAMETERS["adam"] == ("rho1", "rho2", "delta")
    for name in OPTIMIZERS:
        make(name, eps0=0.1, eps_tau=0.001, tau=5, clip_norm=1.0, **{h: 0.5 for h in HYPERPARAMETERS[name]})


def test_delta_defaults():
    assert make("adagrad").delta == 1e-7
    assert make("rmsprop").delta == 1e-6
    assert make("rmsprop_nesterov").delta == 1e-6
    adam = make("adam")
    assert (adam.eps0, adam.rho1, adam.rho2, adam.delta) == (0.001, 0.9, 0.999, 1e-8)


def test_clip_norm_clips_before_the_update(bowl):
    params, grad, closure = bowl([3.0, 4.0], [1.0, 1.0])  # g = θ, ‖g‖ = 5
    opt = constant("sgd", eps0=0.1, clip_norm=1.0)
    opt.start(params, 10)
    opt.step(params, grad, closure)
    np.testing.assert_allclose(params, [3.0 - 0.1 * 0.6, 4.0 - 0.1 * 0.8], rtol=1e-12)
    assert math.hypot(*grad) == pytest.approx(1.0)
