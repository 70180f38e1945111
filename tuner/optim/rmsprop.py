"""RMSProp (Goodfellow et al., *Deep Learning*, Alg. 8.5; Hinton 2012)."""

from __future__ import annotations

import numpy as np

from tuner.optim._base import Optimizer


class RMSScaling:
    """The part RMSProp and RMSProp+Nesterov share: the decaying average r and the scaled step."""

    state: dict[str, np.ndarray]
    rho: float
    delta: float

    def _allocate_rms(self, params: np.ndarray) -> None:
        self.state["r"] = np.zeros_like(params)
        self._rho = self._scalar(self.rho)
        self._one_minus_rho = self._scalar(1.0 - self.rho)
        self._delta = self._scalar(self.delta)

    def _rms_step(self, g: np.ndarray, r: np.ndarray, step: np.ndarray, lr: np.floating) -> np.ndarray:
        """On one chunk: r ← ρ·r + (1 − ρ)·g⊙g, then step ← ε_k/√(δ + r) ⊙ g; returns step."""
        np.multiply(g, self._one_minus_rho, out=step)
        step *= g
        r *= self._rho
        r += step
        np.add(r, self._delta, out=step)
        np.sqrt(step, out=step)
        np.divide(g, step, out=step)
        step *= lr
        return step


class RMSProp(RMSScaling, Optimizer):
    r"""RMSProp: AdaGrad with an exponentially decaying average r of squared gradients (starts at 0).

        r ← ρ·r + (1 − ρ)·g⊙g
        θ ← θ − ε_k/√(δ + r) ⊙ g

    ρ ∈ [0, 1) (default 0.9), δ > 0 (default 1e-6) **inside** the root, as the book writes it.

    PyTorch's `RMSprop` puts its eps outside the root, θ ← θ − lr·g/(√r + eps), and defaults ρ to 0.99:
    the two agree only where r ≫ δ.
    """

    name = "rmsprop"
    hyperparameters = ("rho", "delta")

    def __init__(
        self, eps0: float = 0.001, rho: float = 0.9, delta: float = 1e-6, **schedule: float | int | None
    ) -> None:
        super().__init__(eps0, rho=rho, delta=delta, **schedule)

    def _allocate(self, params: np.ndarray) -> None:
        self._allocate_rms(params)

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        if self._fused is not None:
            return self._fused.rmsprop(params, grad, self.state["r"], lr, self._rho, self._one_minus_rho, self._delta)
        for theta, g, r, step in self._chunks(params, grad, self.state["r"]):
            theta -= self._rms_step(g, r, step, lr)
