"""The probes on a network with batch normalization: they measure what the layers compute in train mode and
leave the running statistics, the mode and (for the LR probe) the parameters as they found them."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.nn.mlp import MLP
from tuner.probe import lr_probe
from tuner.probe.init_guess import init_scale_guess
from tuner.probe.stats import activation_stats


def deep_tanh(scale: float, batchnorm: bool) -> MLP:
    return MLP([20, 32, 32, 32, 32, 5], "tanh", init="lecun", init_scale=scale, batchnorm=batchnorm,
               dtype=np.float64, rng=0)


def batch(m: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((m, 20)), rng.integers(0, 5, m)


def snapshot(model: MLP) -> tuple[dict, bool]:
    return model.state(), model.training


def assert_unchanged(model: MLP, before: tuple[dict, bool]) -> None:
    state, training = before
    np.testing.assert_array_equal(model.params, state["params"])
    for name, array in model.buffers().items():
        np.testing.assert_array_equal(array, state["buffers"][name])
    assert model.training == training


@pytest.mark.parametrize("scale", [0.1, 10.0])
def test_stats_see_the_normalised_pre_activations_and_leave_the_buffers(scale):
    x, y = batch()
    model = deep_tanh(scale, True).eval()
    before = snapshot(model)
    stats = activation_stats(model, x, y)
    assert_unchanged(model, before)
    for layer in stats[:-1]:  # BN output in train mode: mean 0, std ~1 (less the ε) whatever the scale
        assert abs(layer.pre_mean) < 1e-9 and layer.pre_std == pytest.approx(1.0, abs=0.01)
    plain = activation_stats(deep_tanh(scale, False), x, y)
    assert abs(plain[3].pre_std - 1.0) > 0.5  # without BN the scale shows: vanishing or saturating


def test_the_init_guess_rescales_dense_outputs_and_keeps_the_running_statistics():
    x, _ = batch()
    model = deep_tanh(0.1, True)
    buffers = {k: v.copy() for k, v in model.buffers().items()}
    guess = init_scale_guess(model, x)
    assert all(guess.converged)
    for layer in range(model.n_layers):  # measured on the dense outputs, which the weights scale
        model.forward(x)
        assert np.std(model.dense_outputs[layer]) == pytest.approx(1.0, abs=guess.tol)
    model.load_state({"params": model.params, "buffers": buffers})
    for name, array in model.buffers().items():
        np.testing.assert_array_equal(array, buffers[name])


def test_the_lr_probe_restores_params_buffers_and_mode():
    x, y = batch(512)
    model = deep_tanh(1.0, True)
    for _ in range(3):  # running statistics away from their start
        model.loss_and_grad(x[:64], y[:64])
    model.eval()
    before = snapshot(model)
    result = lr_probe(model, "momentum", (x, y), hparams={"alpha": 0.9}, steps=30, repeats=2, batch_size=32,
                      rng=np.random.default_rng(2))
    assert len(result.sweeps) == 2
    assert_unchanged(model, before)
