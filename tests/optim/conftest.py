"""A quadratic bowl J(θ) = ½ Σ a_i θ_i² as the closure the optimizers ask for gradients."""

from __future__ import annotations

import numpy as np
import pytest


class Quadratic:
    """J(θ) = ½ Σ a_i θ_i², ∇J = a ⊙ θ; records every point the closure was called at."""

    def __init__(self, a: np.ndarray, params: np.ndarray, grad: np.ndarray) -> None:
        self.a, self.params, self.grad = a, params, grad
        self.calls: list[np.ndarray] = []

    def __call__(self) -> float:
        self.calls.append(self.params.copy())
        np.multiply(self.a, self.params, out=self.grad)
        return float(0.5 * np.sum(self.a * self.params.astype(np.float64) ** 2))


@pytest.fixture
def bowl():
    """Factory: `bowl(theta0, a, dtype)` -> (params, grad, closure)."""

    def make(theta0, a=(1.0, 2.0, 3.0), dtype=np.float64):
        params = np.array(theta0, dtype=dtype)
        grad = np.zeros_like(params)
        return params, grad, Quadratic(np.array(a, dtype=dtype), params, grad)

    return make
