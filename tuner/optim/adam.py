"""Adam (Goodfellow et al., *Deep Learning*, Alg. 8.7; Kingma & Ba 2015)."""

from __future__ import annotations

import math

import numpy as np

from tuner.optim._base import Optimizer


class Adam(Optimizer):
    r"""Adam: bias-corrected first and second moment estimates s and r (both start at 0).

        t ← t + 1
        s ← ρ1·s + (1 − ρ1)·g
        r ← ρ2·r + (1 − ρ2)·g⊙g
        ŝ = s/(1 − ρ1^t),  r̂ = r/(1 − ρ2^t)
        θ ← θ − ε_k·ŝ/(√r̂ + δ)

    Defaults ε0 = 0.001, ρ1 = 0.9, ρ2 = 0.999, δ = 1e-8 (outside the root). t is `k` after the step. At
    t = 1, ŝ = g and √r̂ = |g|, so the first step is ≈ −ε·sign(g) whatever the gradient's scale.

    The corrections are folded into scalars (Kingma & Ba's "more efficient order", one pass less over
    memory): with c1 = 1 − ρ1^t and c2 = 1 − ρ2^t,

        θ ← θ − (ε_k·√c2/c1)·s/(√r + δ·√c2)

    which is the update above multiplied through by √c2. `torch.optim.Adam` (amsgrad=False,
    weight_decay=0) follows the book too, so the two agree to rounding.
    """

    name = "adam"
    hyperparameters = ("rho1", "rho2", "delta")

    def __init__(
        self,
        eps0: float = 0.001,
        rho1: float = 0.9,
        rho2: float = 0.999,
        delta: float = 1e-8,
        **schedule: float | int | None,
    ) -> None:
        super().__init__(eps0, rho1=rho1, rho2=rho2, delta=delta, **schedule)

    def _allocate(self, params: np.ndarray) -> None:
        self.state["s"] = np.zeros_like(params)
        self.state["r"] = np.zeros_like(params)
        self._rho1, self._rho2 = self._scalar(self.rho1), self._scalar(self.rho2)
        self._one_minus_rho1 = self._scalar(1.0 - self.rho1)
        self._one_minus_rho2 = self._scalar(1.0 - self.rho2)

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        t = self.k + 1
        root_c2 = math.sqrt(1.0 - self.rho2**t)
        delta = self._scalar(self.delta * root_c2)
        rate = self._scalar(float(lr) * root_c2 / (1.0 - self.rho1**t))
        if self._fused is not None:
            return self._fused.adam(params, grad, self.state["s"], self.state["r"], rate, self._rho1,
                                    self._one_minus_rho1, self._rho2, self._one_minus_rho2, delta)
        for theta, g, s, r, step in self._chunks(params, grad, self.state["s"], self.state["r"]):
            np.multiply(g, self._one_minus_rho1, out=step)
            s *= self._rho1
            s += step
            np.multiply(g, self._one_minus_rho2, out=step)
            step *= g
            r *= self._rho2
            r += step
            np.sqrt(r, out=step)
            step += delta
            np.divide(s, step, out=step)
            step *= rate
            theta -= step
