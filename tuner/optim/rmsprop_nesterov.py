"""RMSProp with Nesterov momentum (Goodfellow et al., *Deep Learning*, Alg. 8.6)."""

from __future__ import annotations

import numpy as np

from tuner.optim._base import LookAhead
from tuner.optim.rmsprop import RMSScaling


class RMSPropNesterov(RMSScaling, LookAhead):
    r"""RMSProp whose step feeds a Nesterov velocity; the gradient is taken at the interim point θ̃.

        θ̃ ← θ + α·v
        g ← ∇J(θ̃)            (the closure runs with params = θ̃; θ is kept aside and restored exactly)
        r ← ρ·r + (1 − ρ)·g⊙g
        v ← α·v − ε_k/√(δ + r) ⊙ g
        θ ← θ + v

    The book divides by √r, which is 0/0 for a parameter whose gradients have all been 0 so far; the same
    δ as RMSProp's (default 1e-6) is added **inside** the root to guard it. α ∈ [0, 1) (default 0.9),
    ρ ∈ [0, 1) (default 0.9); r and v start at 0. PyTorch has no counterpart (its RMSprop momentum is
    heavy-ball, not Nesterov, and puts eps outside the root).
    """

    name = "rmsprop_nesterov"
    hyperparameters = ("alpha", "rho", "delta")

    def __init__(
        self,
        eps0: float = 0.001,
        alpha: float = 0.9,
        rho: float = 0.9,
        delta: float = 1e-6,
        **schedule: float | int | None,
    ) -> None:
        super().__init__(eps0, alpha=alpha, rho=rho, delta=delta, **schedule)

    def _allocate(self, params: np.ndarray) -> None:
        self._allocate_look_ahead(params)
        self._allocate_rms(params)

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        if self._fused is not None:
            return self._fused.rmsprop_nesterov(params, grad, self.state["r"], self.state["v"], self._theta, lr,
                                                self._alpha, self._rho, self._one_minus_rho, self._delta)
        arrays = (params, grad, self.state["r"], self.state["v"], self._theta, self._alpha_v)
        for theta, g, r, v, kept, alpha_v, step in self._chunks(*arrays):
            np.subtract(alpha_v, self._rms_step(g, r, step, lr), out=v)  # α·v was computed for θ̃
            np.add(kept, v, out=theta)  # θ + v from the θ kept aside, not θ̃ − α·v + v
