"""Losses: values by hand, gradients against central differences, stability, label checks, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.errors import ModelError
from tuner.nn.losses import mean_squared_error, softmax_cross_entropy


def numeric_gradient(f, z: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        old = z[idx]
        z[idx] = old + h
        up = f(z)
        z[idx] = old - h
        down = f(z)
        z[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


def test_cross_entropy_value_by_hand():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 0])
    expected = np.mean([np.log(np.exp(z[0]).sum()) - 3.0, np.log(3.0)])
    loss, grad = softmax_cross_entropy(z, y)
    assert loss == pytest.approx(expected, rel=1e-14)
    softmax = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    softmax[[0, 1], y] -= 1
    np.testing.assert_allclose(grad, softmax / 2)


def test_cross_entropy_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 4)) * 3
    y = rng.integers(0, 4, 5)
    _, grad = softmax_cross_entropy(z, y)
    np.testing.assert_allclose(grad, numeric_gradient(lambda v: softmax_cross_entropy(v, y)[0], z.copy()), atol=1e-9)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_huge_logits_stays_finite(dtype):
    z = np.array([[1e4, 0.0, -1e4], [1e30, 1e30, -1e30]], dtype=dtype)
    y = np.array([1, 0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = softmax_cross_entropy(z, y)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert grad.dtype == dtype
    # row 0: log-sum-exp = 1e4, minus z = 0 -> 1e4; row 1: two equal maxima -> log 2
    assert loss == pytest.approx((1e4 + np.log(2.0)) / 2, rel=1e-6)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [-0.25, 0.25, 0.0]], atol=1e-7)


def test_mse_follows_torch_convention():
    pred = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    y = np.array([[0.0, 2.0], [1.0, 1.0], [0.0, 1.0]])
    loss, grad = mean_squared_error(pred, y)
    assert loss == pytest.approx((1 + 0 + 4 + 9 + 0 + 1) / 6)  # mean over all 6 elements, no ½
    np.testing.assert_allclose(grad, 2 * (pred - y) / 6)


def test_mse_gradient_matches_central_differences():
    rng = np.random.default_rng(3)
    pred, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    _, grad = mean_squared_error(pred, y)
    np.testing.assert_allclose(grad, numeric_gradient(lambda v: mean_squared_error(v, y)[0], pred.copy()), atol=1e-9)


def test_grad_out_is_filled_in_place():
    z = np.ones((2, 3), dtype=np.float32)
    out = np.empty_like(z)
    _, grad = softmax_cross_entropy(z, np.array([0, 1]), out)
    assert grad is out and out.dtype == np.float32


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 3]), r"labels must be in \[0, 3\) for 3 classes, got 3"),
        (np.array([-1, 0]), r"labels must be in \[0, 3\) for 3 classes, got -1"),
        (np.array([0, 1, 2]), r"expected 2 labels as a 1-D array, got shape \(3,\)"),
        (np.array([0.5, 1.0]), r"labels must be integer class indices, got dtype float64"),
    ],
)
def test_bad_labels_are_rejected(labels, message):
    with pytest.raises(ModelError, match=message):
        softmax_cross_entropy(np.zeros((2, 3)), labels)


def test_mse_shape_mismatch_is_rejected():
    with pytest.raises(ModelError, match=r"targets must have the predictions' shape \(2, 1\), got \(2,\)"):
        mean_squared_error(np.zeros((2, 1)), np.zeros(2))


def test_against_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    z, y = rng.standard_normal((6, 5)) * 4, rng.integers(0, 5, 6)
    zt = torch.tensor(z, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    expected.backward()
    loss, grad = softmax_cross_entropy(z, y)
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)

    target = rng.standard_normal((6, 5))
    pt = torch.tensor(z, requires_grad=True)
    expected = torch.nn.MSELoss()(pt, torch.tensor(target))
    expected.backward()
    loss, grad = mean_squared_error(z, target)
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-12)
