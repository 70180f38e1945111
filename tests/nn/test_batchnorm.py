"""Batch normalization: a step worked by hand, gradients against central differences, PyTorch's BatchNorm1d
in train and eval mode, and a network with it that trains."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.errors import ModelError
from tuner.nn.batchnorm import EPS, BatchNorm
from tuner.nn.mlp import MLP
from tuner.nn.train import train
from tuner.optim import make


def layer(width: int, gamma: np.ndarray | None = None, beta: np.ndarray | None = None,
          dtype: type = np.float64) -> BatchNorm:
    """A BatchNorm bound to flat arrays of its own, γ and β as given (1 and 0 otherwise)."""
    norm = BatchNorm(width, np.dtype(dtype))
    params, grad = np.zeros(2 * width, dtype=dtype), np.zeros(2 * width, dtype=dtype)
    norm.bind(params, grad)
    norm.gamma[...] = 1.0 if gamma is None else gamma
    norm.beta[...] = 0.0 if beta is None else beta
    return norm


def run(norm: BatchNorm, x: np.ndarray, training: bool, grad_out: np.ndarray | None = None):
    """(output, dL/dx) of one pass; dL/dx for L = Σ grad_out ⊙ y (None without grad_out)."""
    work = norm.workspace(len(x), x.dtype, True)
    out = norm.forward(x, work, training).copy()
    if grad_out is None:
        return out, None
    return out, norm.backward(x, grad_out.copy(), work).copy()


def test_one_step_worked_by_hand():
    # two rows, two units: means (2, 4), biased variances (1, 4), so x̂ = ∓1·√(v/(v + ε)) per unit
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    norm = layer(2, gamma=np.array([2.0, 0.5]), beta=np.array([0.1, -1.0]))
    out, _ = run(norm, x, training=True)
    shrink = np.array([1 / math.sqrt(1 + EPS), 2 / math.sqrt(4 + EPS)])
    np.testing.assert_allclose(out, [[0.1 - 2 * shrink[0], -1 - 0.5 * shrink[1]],
                                     [0.1 + 2 * shrink[0], -1 + 0.5 * shrink[1]]], rtol=1e-15)
    # running mean 0.9·0 + 0.1·(2, 4); running var 0.9·1 + 0.1·(unbiased 2, 8)
    np.testing.assert_allclose(norm.running_mean, [0.2, 0.4], rtol=1e-15)
    np.testing.assert_allclose(norm.running_var, [1.1, 1.7], rtol=1e-15)
    # eval mode: the same rows through the running statistics
    out, _ = run(norm, x, training=False)
    expected = (x - [0.2, 0.4]) / np.sqrt(np.array([1.1, 1.7]) + EPS) * [2.0, 0.5] + [0.1, -1.0]
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    np.testing.assert_allclose(norm.running_mean, [0.2, 0.4], rtol=1e-15)  # eval updates nothing


def central_differences(f, values: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(values)
    for i in np.ndindex(values.shape):
        old = values[i]
        values[i] = old + h
        up = f()
        values[i] = old - h
        down = f()
        values[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("training", [True, False])
def test_gradients_of_gamma_beta_and_inputs_match_central_differences(training):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)) * 3 + 1
    g = rng.standard_normal((6, 4))
    norm = layer(4, gamma=rng.uniform(0.5, 2, 4), beta=rng.standard_normal(4))
    norm.running_mean[...] = rng.standard_normal(4)
    norm.running_var[...] = rng.uniform(0.5, 2, 4)

    def loss() -> float:
        keep = norm.running_mean.copy(), norm.running_var.copy()
        value = float(np.sum(g * run(norm, x, training)[0]))
        norm.running_mean[...], norm.running_var[...] = keep
        return value

    _, dx = run(norm, x, training, g)
    np.testing.assert_allclose(dx, central_differences(loss, x), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(norm.gamma_grad, central_differences(loss, norm.gamma), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(norm.beta_grad, central_differences(loss, norm.beta), rtol=1e-6, atol=1e-9)
    if training:  # the batch statistics make dL/dx sum to zero over the rows
        np.testing.assert_allclose(dx.sum(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize(("activation", "loss"), [("tanh", "cross_entropy"), ("relu", "mse"), ("linear", "mse")])
def test_whole_network_gradient_with_batchnorm_matches_central_differences(activation, loss):
    model = MLP([5, 6, 4, 3], activation, loss=loss, init="lecun", batchnorm=True, dtype=np.float64, rng=1)
    rng = np.random.default_rng(2)
    model.params[...] += 0.1 * rng.standard_normal(model.params.size)  # γ, β away from 1 and 0
    x = rng.standard_normal((8, 5))
    y = rng.integers(0, 3, 8) if loss == "cross_entropy" else rng.standard_normal((8, 3))
    model.loss_and_grad(x, y)
    analytic = model.grad.copy()
    # train-mode loss: the running statistics change with each pass but the output does not depend on them
    numeric = central_differences(lambda: model.loss_and_grad(x, y), model.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
    assert len(model.norms) == 2 and model.params.size == 5 * 6 + 6 + 2 * 6 + 6 * 4 + 4 + 2 * 4 + 4 * 3 + 3


def torch_batchnorm(torch, norm: BatchNorm):
    module = torch.nn.BatchNorm1d(norm.width, dtype=torch.float64)  # momentum 0.1, eps 1e-5 by default
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(norm.gamma.copy()))
        module.bias.copy_(torch.from_numpy(norm.beta.copy()))
    return module


def test_train_and_eval_mode_match_pytorch_batchnorm1d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    norm = layer(5, gamma=rng.uniform(0.5, 2, 5), beta=rng.standard_normal(5))
    module = torch_batchnorm(torch, norm)
    module.train()
    for step in range(4):  # a few steps of different batch sizes: the running statistics follow torch's
        x = rng.standard_normal((7 + step, 5)) * 2 + step
        g = rng.standard_normal(x.shape)
        _same_as_torch(torch, module, norm, run(norm, x, True, g), x, g, dx_rtol=1e-10)
        np.testing.assert_allclose(norm.beta_grad, module.bias.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(norm.running_mean, module.running_mean.numpy(), rtol=1e-13)
    np.testing.assert_allclose(norm.running_var, module.running_var.numpy(), rtol=1e-13)

    module.eval()
    x, g = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    _same_as_torch(torch, module, norm, run(norm, x, False, g), x, g, dx_rtol=1e-12)


def _same_as_torch(torch, module, norm, ours, x, g, *, dx_rtol):
    """Our (output, dx) and γ's gradient against `module`'s for the same input and upstream gradient."""
    out, dx = ours
    xt = torch.from_numpy(x).requires_grad_()
    module.zero_grad()
    yt = module(xt)
    (yt * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=dx_rtol, atol=1e-12 if dx_rtol > 1e-12 else 1e-13)
    np.testing.assert_allclose(norm.gamma_grad, module.weight.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_network_with_batchnorm_matches_pytorch():
    torch = pytest.importorskip("torch")
    model = MLP([6, 8, 5, 3], "tanh", init="glorot_uniform", batchnorm=True, dtype=np.float64, rng=4)
    rng = np.random.default_rng(5)
    model.params[...] += 0.1 * rng.standard_normal(model.params.size)
    modules = []
    for dense, norm in zip(model.dense, [*model.norms, None], strict=True):
        linear = torch.nn.Linear(dense.fan_in, dense.fan_out, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(dense.weight.T.copy()))
            linear.bias.copy_(torch.from_numpy(dense.bias.copy()))
        modules += [linear] if norm is None else [linear, torch_batchnorm(torch, norm), torch.nn.Tanh()]
    net = torch.nn.Sequential(*modules)
    x, y = rng.standard_normal((9, 6)), rng.integers(0, 3, 9)
    loss = torch.nn.CrossEntropyLoss()(net(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    assert model.loss_and_grad(x, y) == pytest.approx(loss.item(), rel=1e-12)
    torch_grads = [p.grad.numpy().T.ravel() if p.ndim == 2 else p.grad.numpy() for p in net.parameters()]
    np.testing.assert_allclose(model.grad, np.concatenate(torch_grads), rtol=1e-9, atol=1e-12)
    # eval mode through torch's running statistics, after that one training pass
    net.eval()
    np.testing.assert_allclose(model.predict(x), net(torch.from_numpy(x)).argmax(1).numpy())
    expected = torch.nn.CrossEntropyLoss()(net(torch.from_numpy(x)), torch.from_numpy(y)).item()
    assert model.loss(x, y) == pytest.approx(expected, rel=1e-12)


def test_a_training_batch_of_one_row_is_refused_and_eval_takes_it():
    model = MLP([3, 4, 2], batchnorm=True, rng=0)
    with pytest.raises(ModelError, match="at least 2 rows per training batch, got 1"):
        model.loss_and_grad(np.ones((1, 3)), np.array([0]))
    assert model.predict(np.ones((1, 3))).shape == (1,)


def two_spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = rng.uniform(0.5, 3 * math.pi, n)
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) + 0.2 * rng.standard_normal((n, 2))
    return x, label


def test_a_network_with_batchnorm_trains_and_skips_a_last_batch_of_one_row(tmp_path):
    from tuner.nn.data import load_dataset

    rng = np.random.default_rng(6)
    x, y = two_spirals(321, rng)  # 321 = 5 x 64 + 1: the last minibatch would hold one row
    x_val, y_val = two_spirals(200, rng)
    np.savez(tmp_path / "spirals.npz", x=x, y=y, x_val=x_val, y_val=y_val)
    data = load_dataset(tmp_path / "spirals.npz")
    model = MLP([2, 32, 32, 32, 2], "tanh", init="lecun", init_scale=3.0, batchnorm=True, rng=7)
    before = model.loss(data.x_val, data.y_val)
    result = train(model, make("momentum", eps0=0.05, alpha=0.9), data, 20, 64, rng)
    assert result.status == "completed"
    assert result.final.val_loss < 0.6 * before
    assert result.history[-1].train_loss < 0.6 * result.history[0].train_loss
    assert model.training  # train() leaves train mode; evaluate() ran in eval mode without changing it
