"""Stochastic gradient descent (Goodfellow et al., *Deep Learning*, Alg. 8.1)."""

from __future__ import annotations

import numpy as np

from tuner.optim._base import Optimizer


class SGD(Optimizer):
    r"""Plain SGD with the scheduled rate ε_k of eq. 8.14.

        θ ← θ − ε_k·g

    Same rule as `torch.optim.SGD` without momentum.
    """

    name = "sgd"

    def __init__(self, eps0: float = 0.01, **schedule: float | int | None) -> None:
        super().__init__(eps0, **schedule)

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        if self._fused is not None:
            return self._fused.sgd(params, grad, lr)
        for theta, g, step in self._chunks(params, grad):
            np.multiply(g, lr, out=step)
            theta -= step
