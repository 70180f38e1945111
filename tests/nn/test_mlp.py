"""The MLP: flat layout, gradients against central differences and PyTorch, caches, checks at the boundary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.errors import HyperparameterError, ModelError
from tuner.nn import mlp as mlp_module
from tuner.nn.activations import ACTIVATIONS, activate
from tuner.nn.mlp import MLP


def batch(model: MLP, m: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, model.layer_sizes[0]))
    if model.loss_name == "cross_entropy":
        return x, rng.integers(0, model.layer_sizes[-1], m)
    return x, rng.standard_normal((m, model.layer_sizes[-1]))


def numeric_gradient(model: MLP, x: np.ndarray, y: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(model.params)
    for i in range(model.params.size):
        old = model.params[i]
        model.params[i] = old + h
        up = model.loss(x, y)
        model.params[i] = old - h
        down = model.loss(x, y)
        model.params[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def test_parameters_live_in_one_flat_array():
    model = MLP([4, 3, 2], rng=0)
    assert model.params.ndim == 1 and model.params.flags.c_contiguous
    assert model.params.size == 4 * 3 + 3 + 3 * 2 + 2 == model.grad.size
    assert [w.shape for w in model.weights] == [(4, 3), (3, 2)]
    assert [b.shape for b in model.biases] == [(3,), (2,)]
    for view in (*model.weights, *model.biases):
        assert np.shares_memory(view, model.params)
    for view in (*model.weight_grads, *model.bias_grads):
        assert np.shares_memory(view, model.grad)
    model.weights[1][0, 1] = 42.0
    assert model.params[4 * 3 + 3 + 1] == 42.0
    assert model.params.dtype == model.grad.dtype == np.float32
    assert (model.n_layers, model.activation, model.loss_name, model.dtype) == (2, "relu", "cross_entropy", np.float32)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("sizes", [[5, 3], [5, 4, 3], [5, 6, 4, 3]])
def test_gradient_matches_central_differences(activation, loss, sizes):
    model = MLP(sizes, activation, loss=loss, init="lecun", bias="constant", bias_value=0.1, dtype=np.float64, rng=1)
    x, y = batch(model)
    loss_value = model.loss_and_grad(x, y)
    assert loss_value == pytest.approx(model.loss(x, y), rel=1e-14)
    np.testing.assert_allclose(model.grad, numeric_gradient(model, x, y), rtol=1e-5, atol=1e-8)


def test_backward_from_an_arbitrary_output_gradient():
    model = MLP([3, 4, 2], "tanh", dtype=np.float64, rng=2)
    x, _ = batch(model)
    g = np.random.default_rng(3).standard_normal((len(x), 2))
    model.forward(x)
    model.backward(g)
    # L = Σ g ⊙ output has dL/doutput = g
    mse_free = MLP([3, 4, 2], "tanh", dtype=np.float64, rng=2)

    def objective() -> float:
        return float(np.sum(g * mse_free.forward(x)))

    expected = np.zeros_like(mse_free.params)
    for i in range(expected.size):
        old = mse_free.params[i]
        mse_free.params[i] = old + 1e-6
        up = objective()
        mse_free.params[i] = old - 1e-6
        expected[i] = (up - objective()) / 2e-6
        mse_free.params[i] = old
    np.testing.assert_allclose(model.grad, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_matches_pytorch_with_the_same_weights(activation, loss):
    torch = pytest.importorskip("torch")
    sizes = [6, 8, 5, 3]
    model = MLP(sizes, activation, loss=loss, init="glorot_uniform", bias="constant", bias_value=0.05,
                dtype=np.float64, rng=4)
    x, y = batch(model, m=9)
    layers = []
    for w, b in zip(model.weights, model.biases, strict=True):
        linear = torch.nn.Linear(*w.shape, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        layers += [linear, {"relu": torch.nn.ReLU(), "leaky_relu": torch.nn.LeakyReLU(0.01),
                            "tanh": torch.nn.Tanh(), "sigmoid": torch.nn.Sigmoid()}[activation]]
    net = torch.nn.Sequential(*layers[:-1])  # the output layer is linear
    out = net(torch.from_numpy(x))
    criterion = torch.nn.CrossEntropyLoss() if loss == "cross_entropy" else torch.nn.MSELoss()
    expected = criterion(out, torch.from_numpy(y))
    expected.backward()

    np.testing.assert_allclose(model.forward(x), out.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert model.loss_and_grad(x, y) == pytest.approx(expected.item(), rel=1e-12)
    for layer, linear in enumerate(net[::2]):
        np.testing.assert_allclose(model.weight_grads[layer], linear.weight.grad.numpy().T, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(model.bias_grads[layer], linear.bias.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_caches_every_layer_and_backward_leaves_them_intact(activation):
    model = MLP([4, 5, 6, 3], activation, dtype=np.float64, rng=5)
    x, y = batch(model)
    model.loss_and_grad(x, y)
    a = x
    for layer in range(model.n_layers):
        s = a @ model.weights[layer] + model.biases[layer]
        np.testing.assert_allclose(model.pre_activations[layer], s, rtol=1e-12)
        a = s if layer == model.n_layers - 1 else activate(activation, s)
        np.testing.assert_allclose(model.activations[layer], a, rtol=1e-12)


def test_buffers_are_reused_per_batch_size_and_float32_stays_float32():
    model = MLP([8, 16, 4], rng=6)
    x, y = batch(model, m=10)
    model.loss_and_grad(x, y)  # float64 input: cast once into the model's dtype
    first = [id(a) for a in (*model.pre_activations, *model.activations)]
    assert model.loss_and_grad(x.astype(np.float32), y) > 0
    assert [id(a) for a in (*model.pre_activations, *model.activations)] == first
    assert all(a.dtype == np.float32 for a in (*model.pre_activations, *model.activations))
    assert model.grad.dtype == np.float32

    grad10 = model.grad.copy()
    model.loss_and_grad(x[:3], y[:3])  # another batch size has its own buffers ...
    model.loss_and_grad(x, y)  # ... and does not disturb these
    np.testing.assert_array_equal(model.grad, grad10)


def test_float32_gradient_agrees_with_float64():
    m64 = MLP([10, 20, 20, 5], "tanh", dtype=np.float64, rng=7)
    m32 = MLP([10, 20, 20, 5], "tanh", rng=7)
    m32.params[...] = m64.params
    x, y = batch(m64, m=16)
    assert m32.loss_and_grad(x, y) == pytest.approx(m64.loss_and_grad(x, y), rel=1e-5)
    np.testing.assert_allclose(m32.grad, m64.grad, rtol=1e-3, atol=1e-5)


def test_evaluate_and_predict(monkeypatch):
    model = MLP([5, 7, 3], "relu", dtype=np.float64, rng=8)
    x, y = batch(model, m=50)
    logits = model.forward(x)
    expected_loss = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(50), y])
    loss, accuracy = model.evaluate(x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert accuracy == pytest.approx(np.mean(logits.argmax(axis=1) == y))
    np.testing.assert_array_equal(model.predict(x), logits.argmax(axis=1))

    monkeypatch.setattr(mlp_module, "EVAL_CHUNK", 16)  # 16 + 16 + 16 + 2 rows
    chunked = model.evaluate(x, y)
    assert chunked[0] == pytest.approx(loss, rel=1e-12) and chunked[1] == accuracy
    np.testing.assert_array_equal(model.predict(x), logits.argmax(axis=1))

    regression = MLP([5, 4, 1], "tanh", loss="mse", dtype=np.float64, rng=8)
    target = np.random.default_rng(0).standard_normal(50)  # 1-D targets for a single output
    loss, accuracy = regression.evaluate(x, target)
    assert accuracy is None
    assert loss == pytest.approx(np.mean((regression.predict(x)[:, 0] - target) ** 2), rel=1e-12)


def test_zero_init_keeps_the_units_of_a_layer_identical():
    model = MLP([3, 4, 4, 2], "tanh", init="zeros", bias="constant", bias_value=0.1, dtype=np.float64, rng=9)
    x, y = batch(model)
    model.loss_and_grad(x, y)
    for layer in range(model.n_layers - 1):
        g = model.weight_grads[layer]
        assert np.allclose(g, g[:, :1])  # every hidden unit receives the same gradient: no symmetry breaking


def test_init_options_scales_and_biases():
    model = MLP([30, 20, 10, 4], "relu", init="orthogonal", init_scale=[1.0, 0.5, 2.0], dtype=np.float64, rng=10)
    w0, w1, w2 = model.weights
    np.testing.assert_allclose(w0.T @ w0, 2.0 * np.eye(20), atol=1e-12)  # relu gain √2 by default
    np.testing.assert_allclose(w1.T @ w1, 0.25 * 2.0 * np.eye(10), atol=1e-12)
    np.testing.assert_allclose(w2.T @ w2, 4.0 * np.eye(4), atol=1e-12)  # the linear output layer: gain 1
    model = MLP([30, 20, 4], init="orthogonal", init_options={"gain": 3.0}, dtype=np.float64, rng=10)
    np.testing.assert_allclose(model.weights[1].T @ model.weights[1], 9.0 * np.eye(4), atol=1e-12)
    model = MLP([30, 20, 4], init="sparse", init_options={"k": 5}, rng=10)
    assert np.all(np.count_nonzero(model.weights[0], axis=0) == 5)

    model = MLP([3, 4, 5, 2], bias="constant", bias_value=0.1, rng=0)
    np.testing.assert_allclose(np.concatenate(model.biases[:2]), 0.1)
    np.testing.assert_array_equal(model.biases[2], 0.0)

    c = np.array([0.6, 0.3, 0.1])
    model = MLP([3, 4, 3], bias="class_frequencies", class_frequencies=c, dtype=np.float64, rng=0)
    softmax = np.exp(model.biases[-1]) / np.exp(model.biases[-1]).sum()
    np.testing.assert_allclose(softmax, c, rtol=1e-14)
    np.testing.assert_array_equal(model.biases[0], 0.0)


def test_the_seed_alone_decides_the_initial_parameters():
    a = MLP([6, 5, 2], rng=11)
    b = MLP([6, 5, 2], rng=np.random.default_rng(11))
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, MLP([6, 5, 2], rng=12).params)


def test_he_init_keeps_the_relu_pre_activation_scale_through_depth():
    model = MLP([256, 256, 256, 256, 10], rng=13)
    x = np.random.default_rng(0).standard_normal((512, 256)).astype(np.float32)
    model.forward(x)
    # Var(s) = m·(2/m)·E[x²]: 2 for the unit-variance input, then E[relu(s)²] = Var(s)/2 keeps it at 2
    for layer in range(model.n_layers - 1):
        assert math.isclose(float(np.std(model.pre_activations[layer])), math.sqrt(2), rel_tol=0.1)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: MLP([64, 10], "swish", rng=0), ModelError,
         "unknown activation 'swish'; known: relu, leaky_relu, tanh, sigmoid, linear"),
        (lambda: MLP([64, 10], loss="hinge", rng=0), ModelError, "unknown loss 'hinge'; known: cross_entropy, mse"),
        (lambda: MLP([64], rng=0), ModelError, "layer_sizes needs at least 2 entries (inputs, outputs), got [64]"),
        (lambda: MLP([64, 0, 10], rng=0), ModelError, "layer sizes must be integers >= 1, got 0 in [64, 0, 10]"),
        (lambda: MLP([64, 10], dtype=np.float16, rng=0), ModelError, "dtype must be float32 or float64"),
        (lambda: MLP([64, 10], rng=None), ModelError, "rng must be a numpy.random.Generator or an int seed >= 0, got None"),
        (lambda: MLP([64, 32, 10], init_scale=[1.0, 1.0, 1.0], rng=0), HyperparameterError,
         "init_scale has 3 values, the network has 2 dense layers"),
        (lambda: MLP([64, 32, 10], init_scale=0.0, rng=0), HyperparameterError,
         "init_scale must be a finite number > 0, got 0.0"),
        (lambda: MLP([64, 32, 10], init_scale=[1.0, -2.0], rng=0), HyperparameterError,
         "init_scale must be a finite number > 0, got -2.0 (layer 1)"),
        (lambda: MLP([64, 10], init="xavier", rng=0), HyperparameterError, "unknown init scheme 'xavier'; known: zeros"),
        (lambda: MLP([64, 10], init="he", init_options={"gain": 2.0}, rng=0), HyperparameterError,
         "init scheme he does not take option 'gain'"),
        (lambda: MLP([64, 10], bias="ones", rng=0), HyperparameterError, "unknown bias kind 'ones'"),
        (lambda: MLP([64, 1], loss="mse", bias="class_frequencies", class_frequencies=[1.0], rng=0), ModelError,
         "bias class_frequencies needs the cross_entropy loss, got loss 'mse'"),
        (lambda: MLP([64, 3], bias="class_frequencies", class_frequencies=[0.5, 0.5], rng=0), HyperparameterError,
         "class_frequencies must have one value per output (3), got shape (2,)"),
    ],
)
def test_bad_construction_is_rejected_with_the_value_named(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((4, 32)), np.zeros(4, dtype=int), "expected x with 64 features, got 32"),
        (np.zeros(64), np.zeros(1, dtype=int), "expected x with 64 features, got shape (64,)"),
        (np.zeros((4, 64)), np.array([0, 1, 2, 10]), "labels must be in [0, 10) for 10 classes, got 10"),
        (np.zeros((4, 64)), np.array([0, 1, 2]), "expected 4 labels as a 1-D array, got shape (3,)"),
    ],
)
def test_bad_calls_are_rejected_with_the_value_named(x, y, message):
    model = MLP([64, 16, 10], rng=0)
    with pytest.raises(ModelError) as info:
        model.loss_and_grad(x, y)
    assert str(info.value) == message
    with pytest.raises(ModelError):
        model.evaluate(x, y)


def test_bad_regression_targets_and_backward_without_forward():
    model = MLP([4, 2], loss="mse", rng=0)
    with pytest.raises(ModelError, match=r"expected targets of shape \(3, 2\), got \(3,\)"):
        model.loss_and_grad(np.zeros((3, 4)), np.zeros(3))
    with pytest.raises(ModelError, match="backward needs a forward pass first"):
        model.backward(np.zeros((3, 2)))
    model.forward(np.zeros((3, 4)))
    with pytest.raises(ModelError, match=r"expected grad_output of shape \(3, 2\), got \(2, 2\)"):
        model.backward(np.zeros((2, 2)))
