"""Activation statistics checked by hand on tiny networks with crafted weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tuner.errors import ProbeError
from tuner.nn.mlp import MLP
from tuner.probe import activation_stats


def tiny(activation: str, w0, w1, dtype=np.float64) -> MLP:
    """A 2-3-2 network with the given weights and zero biases."""
    model = MLP([2, 3, 2], activation, init="lecun", rng=np.random.default_rng(0), dtype=dtype)
    model.weights[0][...] = w0
    model.weights[1][...] = w1
    for b in model.biases:
        b[...] = 0.0
    return model


X = np.array([[1.0, 2.0], [3.0, -1.0], [-1.0, 0.5], [0.5, 0.5]])
Y = np.array([0, 1, 1, 0])
W0 = np.array([[1.0, -1.0, 0.5], [0.0, -1.0, 1.0]])  # unit 1: -x1 - x2, <= 0 on every row of X but row 3
W1 = np.array([[1.0, -1.0], [2.0, 0.0], [0.5, 0.5]])


def test_relu_stats_match_a_hand_computation():
    w0 = W0.copy()
    w0[:, 1] = [-1.0, -3.0]  # -x1 - 3 x2 <= 0 on every row: the unit is dead for this batch
    model = tiny("relu", w0, W1)
    stats = activation_stats(model, X, Y)

    s0 = X @ w0
    a0 = np.maximum(s0, 0)
    s1 = a0 @ W1
    assert [(s.fan_in, s.fan_out, s.activation) for s in stats] == [(2, 3, "relu"), (3, 2, "linear")]
    assert stats[0].weight_std == pytest.approx(np.std(w0))
    assert stats[0].pre_mean == pytest.approx(s0.mean())
    assert stats[0].pre_std == pytest.approx(s0.std())
    assert stats[0].post_mean == pytest.approx(a0.mean())
    assert stats[0].post_std == pytest.approx(a0.std())
    assert stats[0].dead_fraction == pytest.approx(1 / 3)
    assert stats[0].saturated_fraction is None
    assert stats[1].pre_std == pytest.approx(s1.std())
    assert stats[1].post_std == pytest.approx(s1.std())  # the output layer is linear
    assert stats[1].dead_fraction is None and stats[1].saturated_fraction is None

    # dL/dW of the output layer for the mean softmax cross-entropy: a0^T (softmax(s1) - onehot) / n
    p = np.exp(s1 - s1.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(Y)), Y] -= 1
    assert stats[1].grad_std == pytest.approx(np.std(a0.T @ p / len(Y)))
    np.testing.assert_allclose(model.weight_grads[1], a0.T @ p / len(Y))


def test_a_unit_alive_on_one_example_is_not_dead():
    stats = activation_stats(tiny("relu", W0, W1), X)
    assert stats[0].dead_fraction == 0.0  # unit 1 is positive on row 2 only
    assert stats[0].grad_std is None  # no targets: no backward pass


def test_tanh_saturation_threshold_is_0_99():
    w0 = np.array([[3.0, 2.0, 0.1], [0.0, 0.0, 0.0]])  # tanh(3) = 0.995 > 0.99 > tanh(2) = 0.964
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.5, 0.0], [2.0, 0.0]])
    stats = activation_stats(tiny("tanh", w0, W1), x)
    a = np.tanh(x @ w0)
    assert stats[0].saturated_fraction == pytest.approx(np.mean(np.abs(a) > 0.99))
    assert stats[0].saturated_fraction == pytest.approx(4 / 12)  # 3x at x = ±1 and 2, 2x at x = 2
    assert stats[0].dead_fraction is None


def test_sigmoid_saturation_counts_both_tails():
    w0 = np.array([[5.0, -5.0, 0.1], [0.0, 0.0, 0.0]])  # σ(5) = 0.9933, σ(-5) = 0.0067
    x = np.array([[1.0, 0.0], [0.2, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    stats = activation_stats(tiny("sigmoid", w0, W1), x)
    assert stats[0].saturated_fraction == pytest.approx(4 / 12)  # rows 0 and 2, units 0 and 1


def test_leaky_relu_dead_means_negative_pre_activation_on_the_whole_batch():
    w0 = W0.copy()
    w0[:, 2] = [-1.0, -3.0]
    stats = activation_stats(tiny("leaky_relu", w0, W1), X)
    assert stats[0].dead_fraction == pytest.approx(1 / 3)


def test_to_dict_is_json():
    stats = activation_stats(tiny("relu", W0, W1), X, Y)
    back = json.loads(json.dumps([s.to_dict() for s in stats]))
    assert back[0]["fan_in"] == 2 and set(back[0]) >= {"pre_std", "dead_fraction", "grad_std", "saturated_fraction"}


def test_unknown_activation_and_bad_batch_are_probe_errors():
    model = tiny("relu", W0, W1)
    with pytest.raises(ProbeError, match="features"):
        activation_stats(model, np.ones((4, 3)))
    model.activation = "swish"
    with pytest.raises(ProbeError, match="does not know activation 'swish'"):
        activation_stats(model, X)
