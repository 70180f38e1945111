"""The values of a spec's `[search]` table: fixed, a choice, a range, `"auto"`, or per layer.

`parse_param(raw, RULES[key])` turns the TOML value of one key into a typed parameter, checking it against
the key's domain (alpha in [0, 1), eps0 > 0, a known optimizer or init scheme ...); `dump_param` is its
inverse. Errors are pydantic custom errors, collected by the spec's models and turned into one `SpecError`
line naming the file, the key and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticCustomError

from tuner.domains import Domain
from tuner.nn.init import SCALE, SCHEMES
from tuner.optim import DOMAINS, OPTIMIZERS


def fail(message: str, at: str | None = None, suffix: str = "") -> PydanticCustomError:
    """An error for pydantic to collect; `at` replaces its key, `suffix` extends it (`.low`, `[2]`)."""
    return PydanticCustomError("spec", "{message}", {"message": message, "at": at, "suffix": suffix})


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def known_names(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names)


@dataclass(frozen=True)
class Fixed:
    """A fixed value: recorded with the trial, never suggested."""

    value: int | float | str


@dataclass(frozen=True)
class Choice:
    """A categorical parameter (`suggest_categorical`)."""

    values: tuple[int | float | str, ...]


@dataclass(frozen=True)
class Range:
    """A numeric range (`suggest_float`, or `suggest_int` when low, high and step are all integers)."""

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = None

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step))


@dataclass(frozen=True)
class Auto:
    """`"auto"`: to be replaced from the probes (`resolve_auto`) before trials are suggested."""


@dataclass(frozen=True)
class Anchored:
    """eps0 only: a log range of a factor around one anchor per optimizer, eps0 = anchor[optimizer] x
    factor, factor in [low, high] (the Optuna parameter `eps0_factor`). `"auto"` resolves to this, with
    the learning-rate probe's suggestions as anchors; a spec may also write it out."""

    anchors: tuple[tuple[str, float], ...]
    low: float
    high: float

    def anchor(self, optimizer: str) -> float:
        return dict(self.anchors)[optimizer]


@dataclass(frozen=True)
class PerLayer:
    """init_scale only: one fixed value or range per dense layer, input side first."""

    values: tuple[Fixed | Range, ...]


AUTO = Auto()
Param = Fixed | Choice | Range | Auto | Anchored | PerLayer


@dataclass(frozen=True)
class _Rule:
    """What a [search] key accepts: names from `known`, or numbers in `domain`."""

    name: str
    known: tuple[str, ...] | None = None
    what: str = ""
    domain: Domain = Domain()
    auto: bool = False
    per_layer: bool = False
    anchored: bool = False


# The optimizers' own domains come from the optimizers, the init scale's from the initialisation; the
# schedule's two study-level knobs are defined here: eps_tau = ratio x eps0 with ratio in (0, 1], and
# tau = fraction x the run's iterations with fraction > 0.
RULES = {
    "optimizer": _Rule("optimizer", known=OPTIMIZERS, what="optimizer"),
    "init": _Rule("init", known=SCHEMES, what="init scheme"),
    "eps0": _Rule("eps0", domain=DOMAINS["eps0"], auto=True, anchored=True),
    **{name: _Rule(name, domain=DOMAINS[name]) for name in ("alpha", "rho", "rho1", "rho2", "delta")},
    "eps_tau_ratio": _Rule("eps_tau_ratio", domain=Domain(0.0, 1.0, high_closed=True)),
    "tau_fraction": _Rule("tau_fraction", domain=Domain(0.0)),
    "init_scale": _Rule("init_scale", domain=SCALE, auto=True, per_layer=True),
}
RANGE_KEYS = ("high", "log", "low", "step")
ANCHORED_KEYS = ("anchor", "high", "low")


def _check_name(rule: _Rule, value: object, suffix: str = "") -> str:
    if not isinstance(value, str):
        raise fail(f"expected an {rule.what} name, got {value!r}", suffix=suffix)
    if value not in rule.known:
        raise fail(f"unknown {rule.what} {value!r} (known: {known_names(rule.known)})", suffix=suffix)
    return value


def _check_number(rule: _Rule, value: object, suffix: str = "") -> int | float:
    if not is_number(value):
        raise fail(f"expected a number, got {value!r}", suffix=suffix)
    if not rule.domain.contains(value):
        raise fail(f"must be {rule.domain.describe()}, got {value!r}", suffix=suffix)
    return value


def _parse_range(rule: _Rule, table: dict, suffix: str = "") -> Range:
    for key in table:
        if key not in RANGE_KEYS:
            raise fail(f"unknown key (known: {known_names(RANGE_KEYS)})", suffix=f"{suffix}.{key}")
    for key in ("low", "high"):
        if key not in table:
            raise fail("required key missing", suffix=f"{suffix}.{key}")
        if not is_number(table[key]):
            raise fail(f"expected a number, got {table[key]!r}", suffix=f"{suffix}.{key}")
    low, high, log, step = table["low"], table["high"], table.get("log", False), table.get("step")
    if not isinstance(log, bool):
        raise fail(f"expected true or false, got {log!r}", suffix=f"{suffix}.log")
    if step is not None and (not is_number(step) or step <= 0):
        raise fail(f"expected a number > 0, got {step!r}", suffix=f"{suffix}.step")
    if not low < high:
        raise fail(f"low must be < high, got low={low!r}, high={high!r}", suffix=suffix)
    if log and low <= 0:
        raise fail(f"a log range needs low > 0, got low={low!r}", suffix=suffix)
    if log and step is not None:
        raise fail(f"step cannot be used with a log range, got step={step!r}", suffix=suffix)
    for key, value in (("low", low), ("high", high)):
        if not rule.domain.contains(value):
            raise fail(f"must be {rule.domain.describe()}, got {key}={value!r}", suffix=suffix)
    return Range(low, high, log, step)


def _parse_anchored(rule: _Rule, table: dict) -> Anchored:
    """`{anchor = {optimizer = rate, ...}, low, high}`: a factor range around per-optimizer anchors."""
    for key in table:
        if key not in ANCHORED_KEYS:
            raise fail(f"unknown key (known: {known_names(ANCHORED_KEYS)})", suffix=f".{key}")
    anchors = table["anchor"]
    if not isinstance(anchors, dict) or not anchors:
        raise fail(f"expected a table of optimizer = rate, got {anchors!r}", suffix=".anchor")
    for name, value in anchors.items():
        _check_name(RULES["optimizer"], name, ".anchor")
        _check_number(rule, value, f".anchor.{name}")
    factor = _parse_range(_Rule("factor", domain=Domain(0.0)), {k: v for k, v in table.items() if k != "anchor"} | {"log": True})
    return Anchored(tuple((k, float(v)) for k, v in anchors.items()), float(factor.low), float(factor.high))


def parse_param(raw: Any, rule: _Rule) -> Param | None:
    """A [search] value as written in TOML (or as stored by `dump_param`) -> Fixed/Choice/Range/Auto/PerLayer."""
    if raw is None:
        return None
    if isinstance(raw, Param):  # built in Python: checked like the text it stands for
        raw = dump_param(raw)
    if raw == "auto":
        if not rule.auto:
            raise fail("'auto' is allowed only for eps0 and init_scale")
        return AUTO
    if rule.known is not None:
        if isinstance(raw, list):
            if not raw:
                raise fail(f"expected at least one {rule.what}, got []")
            values = tuple(_check_name(rule, v) for v in raw)
            if len(set(values)) < len(values):
                raise fail(f"a {rule.what} is listed twice in {raw!r}")
            return Fixed(values[0]) if len(values) == 1 else Choice(values)
        return Fixed(_check_name(rule, raw))
    if isinstance(raw, dict) and "anchor" in raw and rule.anchored:
        return _parse_anchored(rule, raw)
    if isinstance(raw, dict):
        return _parse_range(rule, raw)
    if isinstance(raw, list) and rule.per_layer:
        if not raw:
            raise fail("expected one value or range per layer, got []")
        layers = []
        for i, item in enumerate(raw):
            if isinstance(item, dict):
                layers.append(_parse_range(rule, item, f"[{i}]"))
            else:
                layers.append(Fixed(_check_number(rule, item, f"[{i}]")))
        return PerLayer(tuple(layers))
    if isinstance(raw, list):
        if not raw:
            raise fail("expected at least one value, got []")
        values = tuple(_check_number(rule, v) for v in raw)
        if len(set(values)) < len(values):
            raise fail(f"a value is listed twice in {raw!r}")
        return Fixed(values[0]) if len(values) == 1 else Choice(values)
    if isinstance(raw, str):
        raise fail(f"expected a number, a list of numbers or a {{low, high}} table, got {raw!r}")
    return Fixed(_check_number(rule, raw))


def dump_param(param: Param | None) -> Any:
    """The JSON/TOML form of a [search] value; `parse_param(dump_param(p)) == p`."""
    if param is None or isinstance(param, Fixed):
        return None if param is None else param.value
    if isinstance(param, Auto):
        return "auto"
    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, PerLayer):
        return [dump_param(p) for p in param.values]
    if isinstance(param, Anchored):
        return {"anchor": dict(param.anchors), "low": param.low, "high": param.high}
    table = {"low": param.low, "high": param.high, "log": param.log}
    if param.step is not None:
        table["step"] = param.step
    return table
