"""What every optimizer shares: hyperparameter checks (against `DOMAINS`), the schedule, the step protocol.

An optimizer updates one flat parameter array in place. `step` asks a closure for the loss and the
gradient (written into `grad`) at the point of the optimizer's choosing, optionally clips the gradient by
its global norm, and applies the update rule with the scheduled rate ε_k of eq. 8.14.

The hot path is called once per minibatch on up to ~10^6 float32 parameters, so every update rule works
in place with `out=` on state and scratch arrays allocated once in `start`, and casts its scalars to the
parameters' dtype: a float64 scalar would make NumPy compute in float64 and convert back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from tuner.errors import HyperparameterError
from tuner.optim.clipping import clip_by_global_norm
from tuner.optim.domains import DOMAINS, check_count
from tuner.optim.schedule import linear_decay

Closure = Callable[[], float]

# Every optimizer takes these: the schedule of eq. 8.14 and optional clipping by global norm.
COMMON = ("eps0", "eps_tau", "tau", "clip_norm")


class Optimizer:
    """Base class: subclasses set `name`, `hyperparameters`, and implement `_allocate` and `_update`.

    Lifecycle: construct with the hyperparameters, `start(params, total_steps)` before a run (allocates
    state shaped like `params`, sets k = 0 and τ = total_steps unless τ was given), then one `step` per
    minibatch. `state` holds the visible per-parameter state (e.g. ``{"v": velocity}``), `k` counts the
    iterations done, `rate(k)` is the scheduled global rate ε_k.
    """

    name: ClassVar[str]
    hyperparameters: ClassVar[tuple[str, ...]] = ()  # the optimizer's own, besides COMMON

    def __init__(
        self,
        eps0: float,
        *,
        eps_tau: float | None = None,
        tau: int | None = None,
        clip_norm: float | None = None,
        **own: float,
    ) -> None:
        self.eps0 = DOMAINS["eps0"].check("eps0", eps0)
        self.eps_tau = 0.01 * self.eps0 if eps_tau is None else DOMAINS["eps_tau"].check("eps_tau", eps_tau)
        self._tau_given = None if tau is None else check_count("tau", tau)
        self.tau = self._tau_given
        self.clip_norm = None if clip_norm is None else DOMAINS["clip_norm"].check("clip_norm", clip_norm)
        for key, value in own.items():
            setattr(self, key, DOMAINS[key].check(key, value))
        self.state: dict[str, np.ndarray] = {}
        self.k = 0
        self._dtype: np.dtype | None = None

    @property
    def hparams(self) -> dict[str, float | int | None]:
        """Every hyperparameter with its value (τ is None until `start` when it follows the run)."""
        names = ("eps0", "eps_tau", *self.hyperparameters, "tau", "clip_norm")
        return {key: getattr(self, key) for key in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.hparams.items())
        return f"{type(self).__name__}({args})"

    def rate(self, k: int) -> float:
        """The global learning rate ε_k at iteration k (eq. 8.14)."""
        if self.tau is None:
            raise RuntimeError(f"{self.name}: call start(params, total_steps) before asking for a rate")
        return linear_decay(k, self.eps0, self.eps_tau, self.tau)

    def start(self, params: np.ndarray, total_steps: int) -> None:
        """Prepare a run over `params` of `total_steps` iterations: fresh state, k = 0, τ if unset."""
        if not isinstance(params, np.ndarray) or params.dtype.kind != "f":
            raise HyperparameterError(f"params must be a floating-point NumPy array, got {type(params).__name__}")
        total_steps = check_count("total_steps", total_steps)
        self.tau = self._tau_given if self._tau_given is not None else total_steps
        self.k = 0
        self._dtype = params.dtype
        self.state = {}
        self._allocate(params)

    def step(self, params: np.ndarray, grad: np.ndarray, closure: Closure) -> float:
        """One iteration: loss and gradient from `closure`, optional clipping, the update. Returns the loss.

        `closure()` must compute the loss at the current contents of `params` and write the gradient
        into `grad`; both arrays are updated in place.
        """
        if self._dtype is None:
            raise RuntimeError(f"{self.name}: call start(params, total_steps) before step")
        lr = self._dtype.type(self.rate(self.k))
        loss = self._evaluate(params, closure)
        if self.clip_norm is not None:
            clip_by_global_norm(grad, self.clip_norm)
        self._update(params, grad, lr)
        self.k += 1
        return loss

    def _scalar(self, value: float) -> np.floating:
        """A Python float as a scalar of the parameters' dtype, so in-place ops stay in that dtype."""
        assert self._dtype is not None
        return self._dtype.type(value)

    def _evaluate(self, params: np.ndarray, closure: Closure) -> float:
        """Loss and gradient at the current parameters; the Nesterov variants override this."""
        return closure()

    def _allocate(self, params: np.ndarray) -> None:
        raise NotImplementedError

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        raise NotImplementedError


class LookAhead(Optimizer):
    """What the Nesterov variants share: the gradient is taken at the interim point θ̃ = θ + α·v.

    `params` is moved to θ̃ before the closure runs, after θ is copied aside. θ is then never recomputed as
    θ̃ − α·v (which would not round-trip in floating point): the update writes θ + v from the copy in the
    same pass that applies it, and if the closure raises, θ is restored from the copy before the error
    propagates. α·v is kept in `_alpha_v` because the velocity update needs it again.
    """

    alpha: float

    def _allocate_look_ahead(self, params: np.ndarray) -> None:
        self.state["v"] = np.zeros_like(params)
        self._theta = np.empty_like(params)
        self._alpha_v = np.empty_like(params)
        self._alpha = self._scalar(self.alpha)

    def _evaluate(self, params: np.ndarray, closure: Closure) -> float:
        np.copyto(self._theta, params)
        np.multiply(self.state["v"], self._alpha, out=self._alpha_v)
        params += self._alpha_v
        try:
            return closure()
        except BaseException:
            np.copyto(params, self._theta)
            raise

    def _apply_velocity(self, params: np.ndarray) -> None:
        """θ ← θ + v, reading θ from the copy taken before the look-ahead."""
        np.add(self._theta, self.state["v"], out=params)
