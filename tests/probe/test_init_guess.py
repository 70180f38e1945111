"""The init-scale guess (LSUV) on real deep networks."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.errors import ProbeError
from tuner.nn.mlp import MLP
from tuner.probe import activation_stats, init_scale_guess


def batch(n: int = 256, width: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, width)).astype(np.float32)


def deep_relu(seed: int = 0) -> MLP:
    """20 hidden ReLU layers of 64 units with U(-1/√m, 1/√m): Var(w) = 1/(3m), so each layer keeps about
    1/6 of the variance and the signal vanishes."""
    return MLP([64] + [64] * 20 + [10], "relu", init="uniform_fan_in", rng=np.random.default_rng(seed))


def test_vanishing_relu_net_comes_out_with_unit_pre_activations():
    model, x = deep_relu(), batch()
    before = activation_stats(model, x)
    assert before[-2].pre_std < 1e-6  # vanished
    guess = init_scale_guess(model, x)
    stds = [s.pre_std for s in guess.after]
    assert len(stds) == 21
    assert all(0.8 <= s <= 1.25 for s in stds), stds
    assert all(guess.converged)
    assert [s.pre_std for s in guess.before] == pytest.approx([s.pre_std for s in before])
    # Var(w) = 1/(3m) -> the ReLU layers need about √6 ≈ 2.45
    assert np.median(guess.multipliers[1:-1]) == pytest.approx(np.sqrt(6), rel=0.25)


def test_saturated_tanh_net_comes_out_unsaturated():
    sizes = [64] + [64] * 8 + [10]
    model = MLP(sizes, "tanh", init="lecun", init_scale=3.0, rng=np.random.default_rng(0))
    x = batch()
    guess = init_scale_guess(model, x)
    sat_before = max(s.saturated_fraction for s in guess.before[:-1])
    sat_after = max(s.saturated_fraction for s in guess.after[:-1])
    assert sat_before > 0.3
    assert sat_after < 0.05 and sat_after < sat_before / 10
    assert all(m < 1 for m in guess.multipliers[:-1])  # scale 3 was too large


def test_the_multipliers_are_the_scales_to_build_with():
    x = batch()
    guess = init_scale_guess(deep_relu(seed=3), x)
    rebuilt = MLP([64] + [64] * 20 + [10], "relu", init="uniform_fan_in", init_scale=list(guess.multipliers),
                  rng=np.random.default_rng(3))
    stds = [s.pre_std for s in activation_stats(rebuilt, x)]
    assert all(0.8 <= s <= 1.25 for s in stds), stds


def test_deterministic_for_a_seed():
    a = init_scale_guess(deep_relu(seed=5), batch(seed=2))
    b = init_scale_guess(deep_relu(seed=5), batch(seed=2))
    assert a.multipliers == b.multipliers
    assert a.after == b.after
    assert a.to_dict()["multipliers"] == list(a.multipliers)


def test_output_layer_left_alone_on_request():
    guess = init_scale_guess(deep_relu(), batch(), include_output=False)
    assert guess.multipliers[-1] == 1.0 and guess.iterations[-1] == 0
    assert guess.after[-1].pre_std < 0.8


def test_biases_need_more_than_one_rescaling():
    model = MLP([64, 32, 10], "tanh", init="lecun", bias="constant", bias_value=0.5, rng=np.random.default_rng(0))
    for b in model.biases:
        b[...] = np.linspace(-1, 1, b.size)  # varies across units: the std does not scale with W
    guess = init_scale_guess(model, batch(), tol=0.01)
    assert abs(guess.after[0].pre_std - 1.0) < 0.01
    assert guess.iterations[0] >= 2


def test_zero_weights_name_the_layer():
    model = deep_relu()
    model.weights[3][...] = 0.0
    with pytest.raises(ProbeError, match=r"^layer 3 \(64 -> 64\): the weights are all zero"):
        init_scale_guess(model, batch())
    zeros = MLP([64, 32, 10], "relu", init="zeros", rng=np.random.default_rng(0))
    with pytest.raises(ProbeError, match=r"^layer 0 \(64 -> 32\): the weights are all zero"):
        init_scale_guess(zeros, batch())


def test_zero_pre_activation_std_is_a_probe_error_not_a_division_by_zero():
    model = MLP([64, 32, 10], "relu", init="he", rng=np.random.default_rng(0))
    with pytest.raises(ProbeError, match=r"^layer 0 \(64 -> 32\): the pre-activation std is 0"):
        init_scale_guess(model, np.zeros((16, 64), dtype=np.float32))


@pytest.mark.parametrize("kwargs", [{"target": 0}, {"tol": -1.0}, {"max_iter": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ProbeError):
        init_scale_guess(deep_relu(), batch(), **kwargs)


def test_without_stats_the_same_rescaling_and_no_statistics():
    x = batch(seed=2)
    with_stats, plain = deep_relu(seed=5), deep_relu(seed=5)
    a = init_scale_guess(with_stats, x)
    b = init_scale_guess(plain, x, stats=False)
    assert b.multipliers == a.multipliers and b.iterations == a.iterations and b.converged == a.converged
    assert (b.before, b.after) == ((), ())
    for wa, wb in zip(with_stats.weights, plain.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
