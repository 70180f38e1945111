"""The domains of the optimizers' hyperparameters, declared once (ALGORITHMS.md: α ∈ [0, 1), δ > 0, ...).

    DOMAINS["alpha"]                        # Domain(low=0.0, high=1.0, low_closed=True)
    DOMAINS["alpha"].describe()             # 'in [0, 1)'
    DOMAINS["alpha"].contains(0.95)         # True
    DOMAINS["alpha"].check("alpha", 1.2)    # HyperparameterError: alpha must be in [0, 1), got 1.2

`tuner.optim` checks every value it is given against this table, and a spec validator can phrase its own
messages from the same `Domain` (its bounds, which ends are closed, `describe`, `contains`), so a domain
is written in one place only (`Domain` itself is `tuner.domains.Domain`). Counts (τ, a run's total steps)
are integers >= 1: `check_count`.
"""

from __future__ import annotations

from tuner.domains import Domain, check_count

_UNIT = Domain(0.0, 1.0, low_closed=True)  # momentum and decay rates: α, ρ ∈ [0, 1)
_POSITIVE = Domain(0.0)

DOMAINS: dict[str, Domain] = {
    "eps0": _POSITIVE,
    "eps_tau": Domain(0.0, low_closed=True),  # a floor of 0 is a schedule that decays to a stop
    "alpha": _UNIT,
    "rho": _UNIT,
    "rho1": _UNIT,
    "rho2": _UNIT,
    "delta": _POSITIVE,
    "clip_norm": _POSITIVE,
}


__all__ = ["DOMAINS", "Domain", "check_count"]
