"""Domains of numbers, declared once and checked in one way: `alpha must be in [0, 1), got 1.2`.

    Domain(0.0, 1.0, low_closed=True).describe()     # 'in [0, 1)'
    Domain(0.0).check("init_scale", -1)              # HyperparameterError: init_scale must be > 0, got -1

Every layer checks the values it is given with a `Domain` (the optimizers' table is `tuner.optim.DOMAINS`,
the init scale's `tuner.nn.init.SCALE`), and the spec validator phrases its messages from the same objects,
so a domain is written in one place only.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from tuner.errors import HyperparameterError


@dataclass(frozen=True)
class Domain:
    """An interval of finite real numbers; a bound that is None is unbounded on that side.

    `low_closed`/`high_closed` say whether the bound itself belongs to the domain: [0, 1) is
    `Domain(0.0, 1.0, low_closed=True)`. NaN and ±inf belong to no domain.
    """

    low: float | None = None
    high: float | None = None
    low_closed: bool = False
    high_closed: bool = False

    def contains(self, value: float) -> bool:
        """Whether the number `value` is finite and lies between the bounds (each end as declared)."""
        if not _finite(value):
            return False
        if self.low is not None and not (value >= self.low if self.low_closed else value > self.low):
            return False
        return self.high is None or (value <= self.high if self.high_closed else value < self.high)

    def describe(self) -> str:
        """The domain as a message states it after "must be": 'in [0, 1)', '> 0', '>= 0', '<= 1'."""
        if self.low is not None and self.high is not None:
            left, right = "[" if self.low_closed else "(", "]" if self.high_closed else ")"
            return f"in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{'>=' if self.low_closed else '>'} {self.low:g}"
        if self.high is not None:
            return f"{'<=' if self.high_closed else '<'} {self.high:g}"
        return "any finite number"

    def check(self, name: str, value: object) -> float:
        """`value` as a float if it is a number in the domain, else HyperparameterError naming both.

        Out of the domain: `alpha must be in [0, 1), got 1.2`. A bool, a non-number, NaN or ±inf:
        `alpha must be a finite number in [0, 1), got 'x'` (True is not 1 here: it is a mistake).
        """
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not _finite(value):
            raise HyperparameterError(f"{name} must be a finite number {self.describe()}, got {value!r}")
        if not self.contains(value):
            raise HyperparameterError(f"{name} must be {self.describe()}, got {value!r}")
        return float(value)


def _finite(value: numbers.Real) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float's range
        return False


def check_count(name: str, value: object) -> int:
    """`value` as an int if it is an integer >= 1 (τ, a run's total steps), else HyperparameterError.

    A float is refused even when whole (2.0): a count that arrives as a float was computed wrongly.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise HyperparameterError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
