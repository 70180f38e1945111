"""The learning-rate schedule: linear decay to a floor (Goodfellow et al., *Deep Learning*, eq. 8.14).

    ε_k = (1 − k/τ)·ε0 + (k/τ)·ε_τ      for k ≤ τ
    ε_k = ε_τ                           for k > τ

A pure function of the iteration number, as nanoGPT's `get_lr(it)`: the optimizer keeps the counter, the
schedule keeps nothing. A constant rate is the special case ε_τ = ε0. It lives in `tuner.optim` because it
is every optimizer's global rate (`Optimizer.rate(k)`); the network knows nothing of it.
"""

from __future__ import annotations

from tuner.errors import HyperparameterError
from tuner.optim.domains import check_count


def linear_decay(k: int, eps0: float, eps_tau: float, tau: int) -> float:
    """The global learning rate at iteration `k` (0-based) under eq. 8.14.

    Decays linearly from `eps0` at k = 0 to `eps_tau` at k = `tau`, then stays at `eps_tau`.
    """
    if k < 0:
        raise HyperparameterError(f"k must be >= 0, got {k}")
    return decayed(k, eps0, eps_tau, check_count("tau", tau))


def decayed(k: int, eps0: float, eps_tau: float, tau: int) -> float:
    """`linear_decay` without its checks: for a `k` >= 0 and a `tau` checked before (an optimizer's step)."""
    if k >= tau:
        return float(eps_tau)
    fraction = k / tau
    return (1.0 - fraction) * eps0 + fraction * eps_tau
