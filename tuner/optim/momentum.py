"""SGD with momentum (Goodfellow et al., *Deep Learning*, Alg. 8.2)."""

from __future__ import annotations

import numpy as np

from tuner.optim._base import Optimizer


class Momentum(Optimizer):
    r"""SGD with classical momentum; the velocity v starts at 0.

        v ← α·v − ε_k·g
        θ ← θ + v

    α ∈ [0, 1) (default 0.9). Under a constant gradient the speed tends to ε‖g‖/(1 − α): ten times plain
    SGD at α = 0.9.

    PyTorch's `SGD(momentum=μ)` keeps buf ← μ·buf + g and steps θ ← θ − lr·buf: the same trajectory while
    the rate is constant, but a decaying rate there rescales the whole accumulated velocity at once,
    whereas here it only scales the newest gradient.
    """

    name = "momentum"
    hyperparameters = ("alpha",)

    def __init__(self, eps0: float = 0.01, alpha: float = 0.9, **schedule: float | int | None) -> None:
        super().__init__(eps0, alpha=alpha, **schedule)

    def _allocate(self, params: np.ndarray) -> None:
        self.state["v"] = np.zeros_like(params)
        self._alpha = self._scalar(self.alpha)

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        if self._fused is not None:
            return self._fused.momentum(params, grad, self.state["v"], lr, self._alpha)
        for theta, g, v, step in self._chunks(params, grad, self.state["v"]):
            np.multiply(g, lr, out=step)
            v *= self._alpha
            v -= step
            theta += v
