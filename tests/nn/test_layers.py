"""The layer API: views into the flat arrays, a plain network against an independent NumPy pass, modes,
the state round trip and the config that rebuilds a network."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.errors import HyperparameterError, ModelError
from tuner.nn.activations import activate
from tuner.nn.batchnorm import BatchNorm
from tuner.nn.layers import Dense, Nonlinearity
from tuner.nn.losses import softmax_cross_entropy
from tuner.nn.mlp import MLP


def test_a_dense_layer_keeps_views_and_works_by_hand():
    dense = Dense(2, 3)
    params, grad = np.arange(9.0), np.zeros(9)
    dense.bind(params, grad)
    assert dense.n_params == 9 and np.shares_memory(dense.weight, params) and np.shares_memory(dense.bias_grad, grad)
    np.testing.assert_array_equal(dense.weight, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(dense.bias, [6, 7, 8])
    x = np.array([[1.0, 2.0]])
    work = dense.workspace(1, np.dtype(np.float64), True)
    # s = [1·0 + 2·3 + 6, 1·1 + 2·4 + 7, 1·2 + 2·5 + 8]
    np.testing.assert_array_equal(dense.forward(x, work, True), [[12, 16, 20]])
    delta = np.array([[1.0, 0.0, -1.0]])
    grad_in = dense.backward(x, delta, work)
    np.testing.assert_array_equal(grad[:6].reshape(2, 3), [[1, 0, -1], [2, 0, -2]])  # xᵀδ
    np.testing.assert_array_equal(grad[6:], [1, 0, -1])
    np.testing.assert_array_equal(grad_in, [[0 - 2, 3 - 5]])  # δ Wᵀ
    assert dense.backward(x, delta, dense.workspace(1, np.dtype(np.float64), False)) is None


def numpy_forward_backward(model: MLP, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(logits, loss, gradient) of a plain MLP, written out here apart from the layers."""
    x = x.astype(model.dtype)
    inputs, pres = [], []
    a = x
    for layer, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        inputs.append(a)
        s = a @ w + b
        pres.append(s)
        a = s if layer == model.n_layers - 1 else activate(model.activation, s)
    loss, delta = softmax_cross_entropy(a, y)
    grads = []
    for layer in range(model.n_layers - 1, -1, -1):
        grads = [inputs[layer].T @ delta, delta.sum(axis=0)] + grads
        if layer:
            h = inputs[layer]
            upstream = delta @ model.weights[layer].T
            derivative = 1 - h**2 if model.activation == "tanh" else (pres[layer - 1] > 0).astype(h.dtype)
            delta = upstream * derivative
    return a, loss, np.concatenate([g.ravel() for g in grads])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_without_batchnorm_the_network_is_the_plain_one(activation, dtype):
    model = MLP([10, 16, 12, 4], activation, init="lecun", init_scale=[0.5, 2.0, 1.0], dtype=dtype, rng=3)
    assert [type(layer) for layer in model.layers] == [Dense, Nonlinearity, Dense, Nonlinearity, Dense]
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 10)), rng.integers(0, 4, 20)
    logits, loss, grad = numpy_forward_backward(model, x, y)
    np.testing.assert_array_equal(model.forward(x), logits)  # the same products and ufuncs: the same bits
    assert model.loss_and_grad(x, y) == pytest.approx(loss, rel=1e-6 if dtype == np.float32 else 1e-14)
    tol = {"rtol": 1e-4, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-14}
    np.testing.assert_allclose(model.grad, grad, **tol)
    assert model.eval().loss(x, y) == model.train().loss(x, y)  # no mode-dependent step


def test_batchnorm_sits_between_each_hidden_dense_layer_and_its_nonlinearity():
    plain = MLP([4, 5, 3, 2], "tanh", init_scale=[0.5, 2.0, 3.0], rng=9)
    model = MLP([4, 5, 3, 2], "tanh", init_scale=[0.5, 2.0, 3.0], batchnorm=True, rng=9)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Dense, BatchNorm, Nonlinearity, Dense, BatchNorm, Nonlinearity, Dense]
    assert model.params.size == plain.params.size + 2 * (5 + 3)
    # the init scales (one per dense layer) scale the dense weights alone, drawn as without batchnorm
    for w, w_plain in zip(model.weights, plain.weights, strict=True):
        np.testing.assert_array_equal(w, w_plain)
    for norm in model.norms:
        np.testing.assert_array_equal(norm.gamma, 1.0)
        np.testing.assert_array_equal(norm.beta, 0.0)
        assert np.shares_memory(norm.gamma, model.params) and np.shares_memory(norm.beta_grad, model.grad)
    np.testing.assert_array_equal(model.buffers()["batchnorm.1.running_var"], 1.0)
    with pytest.raises(HyperparameterError, match="init_scale has 5 values, the network has 3 dense layers"):
        MLP([4, 5, 3, 2], init_scale=[1.0] * 5, batchnorm=True, rng=0)
    with pytest.raises(ModelError, match="batchnorm must be true or false, got 1"):
        MLP([4, 2], batchnorm=1, rng=0)


def trained(steps: int = 5) -> tuple[MLP, np.ndarray, np.ndarray]:
    model = MLP([6, 8, 8, 3], "relu", batchnorm=True, dtype=np.float64, rng=11)
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((32, 6)) * 3 + 1, rng.integers(0, 3, 32)
    for _ in range(steps):
        model.loss_and_grad(x, y)
        model.params -= 0.1 * model.grad
    return model, x, y


def test_train_and_eval_mode_give_different_outputs_and_evaluate_uses_eval():
    model, x, y = trained()
    train_out = model.train().forward(x)
    eval_out = model.eval().forward(x)
    assert not np.allclose(train_out, eval_out)
    model.train()
    before = {k: v.copy() for k, v in model.buffers().items()}
    loss, _ = model.evaluate(x, y)
    assert model.training  # evaluate does not change the mode ...
    for name, array in model.buffers().items():  # ... nor the running statistics
        np.testing.assert_array_equal(array, before[name])
    expected, _ = softmax_cross_entropy(eval_out, y)
    assert loss == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(model.predict(x), eval_out.argmax(axis=1))


def test_state_round_trip_restores_exactly_and_rebuilds_from_config():
    model, x, y = trained()
    state = model.state()
    out = model.eval().forward(x)
    model.train()
    for _ in range(3):  # move params and running statistics on
        model.loss_and_grad(x, y)
        model.params -= 0.1 * model.grad
    assert not np.array_equal(model.eval().forward(x), out)
    model.load_state(state)
    np.testing.assert_array_equal(model.forward(x), out)
    assert not np.shares_memory(state["params"], model.params)
    twin = MLP.from_config(model.config, state)
    assert twin.config == model.config == {"layer_sizes": [6, 8, 8, 3], "activation": "relu",
                                           "loss": "cross_entropy", "batchnorm": True, "dtype": "float64"}
    np.testing.assert_array_equal(twin.eval().forward(x), out)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.pop("buffers"), "keys 'buffers' and 'params', got \\['params'\\]"),
    (lambda s: s.update(params=s["params"][:-1]), "params have shape \\(186,\\) .* the network.s \\(187,\\)"),
    (lambda s: s["buffers"].pop("batchnorm.1.running_mean"), "buffers are \\["),
    (lambda s: s["buffers"].update({"batchnorm.0.running_var": np.ones(3)}), "buffer batchnorm.0.running_var has shape"),
])
def test_a_state_that_does_not_fit_is_refused(change, message):
    model, _, _ = trained(0)
    state = model.state()
    change(state)
    with pytest.raises(ModelError, match=message):
        model.load_state(state)


def test_restoring_gives_back_buffers_and_mode_and_params_when_asked():
    model, x, y = trained()
    model.eval()
    state = model.state()
    with model.restoring():
        assert model.training
        model.loss_and_grad(x[:5], y[:5])
        model.params -= 1.0
    assert not model.training
    np.testing.assert_array_equal(model.params, state["params"] - 1.0)  # params kept ...
    for name, array in model.buffers().items():  # ... running statistics restored
        np.testing.assert_array_equal(array, state["buffers"][name])
    with model.restoring(params=True):
        model.params += 5.0
    np.testing.assert_array_equal(model.params, state["params"] - 1.0)
