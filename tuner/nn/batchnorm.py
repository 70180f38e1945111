"""Batch normalization (S. Ioffe, C. Szegedy, ICML 2015, Alg. 1 and sec. 3.1) over the m rows of a batch.

Train mode, per unit j (μ, σ² the batch mean and biased variance, ε = 1e-5):

    x̂ = (x − μ) / √(σ² + ε)        y = γ ⊙ x̂ + β
    running_mean ← (1 − momentum)·running_mean + momentum·μ
    running_var  ← (1 − momentum)·running_var  + momentum·σ²·m/(m − 1)      (momentum = 0.1)

Eval mode uses the running statistics instead: y = γ ⊙ (x − running_mean)/√(running_var + ε) + β.

Backward, from dy (train mode; in eval mode the transform is affine, dx = dy ⊙ γ/√(running_var + ε)):

    dβ = Σ_rows dy      dγ = Σ_rows dy ⊙ x̂
    dx = γ/(m·√(σ² + ε)) ⊙ (m·dy − dβ − x̂ ⊙ dγ)

Conventions are PyTorch's `BatchNorm1d` (momentum 0.1 weighting the new value, ε 1e-5, the unbiased
variance in the running estimate, running_mean 0 and running_var 1 at the start, γ = 1 and β = 0), so its
outputs and gradients can be checked against it. A training batch needs at least 2 rows (the unbiased
variance of one row is undefined; PyTorch refuses it too). γ and β are trainable: they live in the
network's flat parameter array (γ then β); the running statistics are the layer's buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuner.errors import ModelError
from tuner.nn.layers import Layer, Work

MOMENTUM = 0.1
EPS = 1e-5


@dataclass
class BatchNormWork(Work):
    """The arrays of one batch size: the output y, x̂, a batch-sized scratch, a vector of ones (column
    sums as BLAS products), and per-unit mean, variance, 1/√(σ² + ε) and a scratch row."""

    xhat: np.ndarray
    scratch: np.ndarray
    ones: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    inv_std: np.ndarray
    row: np.ndarray
    training: bool = True


class BatchNorm(Layer):
    """Batch normalization of `width` units; see the module docstring."""

    def __init__(self, width: int, dtype: np.dtype, *, momentum: float = MOMENTUM, eps: float = EPS) -> None:
        self.width, self.n_params = width, 2 * width
        self.momentum, self.eps = dtype.type(momentum), dtype.type(eps)
        self.running_mean = np.zeros(width, dtype=dtype)
        self.running_var = np.ones(width, dtype=dtype)

    def bind(self, params: np.ndarray, grad: np.ndarray) -> None:
        n = self.width
        self.gamma, self.beta = params[:n], params[n : 2 * n]
        self.gamma_grad, self.beta_grad = grad[:n], grad[n : 2 * n]

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def workspace(self, batch: int, dtype: np.dtype, input_grad: bool) -> BatchNormWork:
        def rows() -> np.ndarray:
            return np.empty((batch, self.width), dtype=dtype)

        def units() -> np.ndarray:
            return np.empty(self.width, dtype=dtype)

        return BatchNormWork(rows(), rows(), rows(), np.ones(batch, dtype=dtype), units(), units(), units(), units())

    def forward(self, x: np.ndarray, work: BatchNormWork, training: bool) -> np.ndarray:
        work.training = training
        if training:
            self._batch_statistics(x, work)
        else:
            np.subtract(x, self.running_mean, out=work.xhat)
            self._inverse_std(self.running_var, work.inv_std)
        work.xhat *= work.inv_std
        np.multiply(work.xhat, self.gamma, out=work.out)
        work.out += self.beta
        return work.out

    def _inverse_std(self, var: np.ndarray, out: np.ndarray) -> None:
        np.add(var, self.eps, out=out)
        np.sqrt(out, out=out)
        np.reciprocal(out, out=out)

    def _batch_statistics(self, x: np.ndarray, work: BatchNormWork) -> None:
        """μ, σ², 1/√(σ² + ε) and x − μ into `work`, and the running statistics updated."""
        m = x.shape[0]
        if m < 2:
            raise ModelError(f"batch normalization needs at least 2 rows per training batch, got {m}")
        inv_m = x.dtype.type(1.0 / m)
        np.dot(work.ones, x, out=work.mean)
        work.mean *= inv_m
        np.subtract(x, work.mean, out=work.xhat)
        np.multiply(work.xhat, work.xhat, out=work.scratch)
        np.dot(work.ones, work.scratch, out=work.var)
        work.var *= inv_m
        self._inverse_std(work.var, work.inv_std)
        keep = x.dtype.type(1.0) - self.momentum
        self.running_mean *= keep
        np.multiply(work.mean, self.momentum, out=work.row)
        self.running_mean += work.row
        self.running_var *= keep
        np.multiply(work.var, x.dtype.type(m / (m - 1)) * self.momentum, out=work.row)
        self.running_var += work.row

    def backward(self, x: np.ndarray, grad_out: np.ndarray, work: BatchNormWork) -> np.ndarray:
        np.dot(work.ones, grad_out, out=self.beta_grad)
        np.multiply(grad_out, work.xhat, out=work.scratch)
        np.dot(work.ones, work.scratch, out=self.gamma_grad)
        np.multiply(self.gamma, work.inv_std, out=work.row)
        if not work.training:  # y is affine in x with the running statistics
            grad_out *= work.row
            return grad_out
        m = grad_out.shape[0]
        np.multiply(work.xhat, self.gamma_grad, out=work.scratch)
        grad_out *= grad_out.dtype.type(m)
        grad_out -= self.beta_grad
        grad_out -= work.scratch
        work.row *= grad_out.dtype.type(1.0 / m)
        grad_out *= work.row
        return grad_out
