"""AdaGrad (Goodfellow et al., *Deep Learning*, Alg. 8.4; Duchi et al. 2011)."""

from __future__ import annotations

import numpy as np

from tuner.optim._base import Optimizer


class AdaGrad(Optimizer):
    r"""AdaGrad: per-parameter rates shrink with the accumulated squared gradient r (starts at 0).

        r ← r + g⊙g
        θ ← θ − ε_k/(δ + √r) ⊙ g

    δ > 0 (default 1e-7) sits outside the root. Same rule as `torch.optim.Adagrad` (lr_decay=0,
    initial_accumulator_value=0, eps=δ).
    """

    name = "adagrad"
    hyperparameters = ("delta",)

    def __init__(self, eps0: float = 0.01, delta: float = 1e-7, **schedule: float | int | None) -> None:
        super().__init__(eps0, delta=delta, **schedule)

    def _allocate(self, params: np.ndarray) -> None:
        self.state["r"] = np.zeros_like(params)
        self._delta = self._scalar(self.delta)

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        if self._fused is not None:
            return self._fused.adagrad(params, grad, self.state["r"], lr, self._delta)
        for theta, g, r, step in self._chunks(params, grad, self.state["r"]):
            np.multiply(g, g, out=step)
            r += step
            np.sqrt(r, out=step)
            step += self._delta
            np.divide(g, step, out=step)
            step *= lr
            theta -= step
