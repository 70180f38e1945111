"""SGD with Nesterov momentum (Goodfellow et al., *Deep Learning*, Alg. 8.3)."""

from __future__ import annotations

import numpy as np

from tuner.optim._base import LookAhead


class Nesterov(LookAhead):
    r"""Nesterov momentum: the gradient is taken at the interim point θ̃, not at θ.

        θ̃ ← θ + α·v
        g ← ∇J(θ̃)            (the closure runs with params = θ̃; θ is kept aside and restored exactly)
        v ← α·v − ε_k·g
        θ ← θ + v

    α ∈ [0, 1) (default 0.9); v starts at 0.

    PyTorch's `SGD(nesterov=True)` stores the look-ahead point as the parameters (a change of variables),
    so its `params` are this optimizer's θ̃ and the two trajectories are not comparable step by step.
    """

    name = "nesterov"
    hyperparameters = ("alpha",)

    def __init__(self, eps0: float = 0.01, alpha: float = 0.9, **schedule: float | int | None) -> None:
        super().__init__(eps0, alpha=alpha, **schedule)

    def _allocate(self, params: np.ndarray) -> None:
        self._allocate_look_ahead(params)

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        if self._fused is not None:
            return self._fused.nesterov(params, grad, self.state["v"], self._theta, lr, self._alpha)
        arrays = (params, grad, self.state["v"], self._theta, self._alpha_v)
        for theta, g, v, kept, alpha_v, _ in self._chunks(*arrays):
            np.multiply(g, lr, out=v)
            np.subtract(alpha_v, v, out=v)  # α·v was computed for θ̃ and is reused here
            np.add(kept, v, out=theta)  # θ + v from the θ kept aside, not θ̃ − α·v + v
