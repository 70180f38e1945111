"""The learning-rate probe: the range test of L. N. Smith, "Cyclical Learning Rates for Training Neural
Networks" (WACV 2017, sec. 3.3), read without lag and repeated.

One sweep: from the initial model, `steps` minibatch steps of the optimizer with the rate ramped
exponentially,

    ε_k = eps_min · (eps_max/eps_min)^(k/(steps−1)),   k = 0 .. steps−1

(constant within a step; the optimizer's velocity or moments carry over from step to step, as in a real
run), recording each step's minibatch loss L_k at the parameters the step starts from.

Reading a sweep, after it has ended (so the smoothing may look ahead and has no lag):

    s_k   = mean(L_j : |j − k| ≤ h)        centred moving average, truncated at the ends; h = half a decade
                                          of rates, round(steps / (2·decades))
    k*    = argmin_k s_k                   the bottom of the valley
    edge  = ε at the first k > k* with s_k > (1 + RISE)·s_k*     the loss is RISE = 20% above its minimum

If the loss turns non-finite before that, the edge is the rate of that step; if it never rises, the edge
is eps_max (and the note says so).

On a quadratic with curvature L gradient descent is stable iff ε < 2/L, heavy-ball momentum (Alg. 8.2)
iff ε < 2(1 + α)/L. The edge lands near that limit but not on it: the centred window sees a blow-up
coming up to half a decade early and minibatch noise starts it early, while after ε ≈ 1/L has nearly
cancelled the steepest direction, the error needs some steps to grow back. tests/probe/test_lr.py checks
limit/3 < edge < 2·limit on a linear regression whose Hessian is known (SGD, and momentum with α = 0.5;
with α = 0.9 the loss oscillates, and rises, well before the limit).

Several sweeps from fresh models (a factory) or from the same parameters (a model), each with its own
minibatch order. The first runs the whole ramp; every later one runs it from LEAD_DECADES below the first
one's edge, at the same rate per step: the steps far below the edge move the weights by a few percent of
what the last decade does (the rates sum geometrically), so the later sweep reaches the edge in nearly the
same state, in about half the steps. The probe's edge combines the sweeps' edges (`combine_edges`: the mean
of their logs, each clipped to half a decade of their median): a sweep's edge scatters by 0.05 to 0.3
decades (standard deviation, bench/RESULTS.md), nearly all of it sweep noise that averaging removes faster
than a median does, and the clip keeps one sweep that never rose from moving it far.

The suggested ε0 is edge / 10: the best ε0 of a full run with the linear decay of eq. 8.14 lies below the
edge, by a factor that differs from problem to problem, and a tenth of it gave the smallest loss of accuracy
over five study specs (measured against a grid of full runs: bench/RESULTS.md, "Learning-rate probe"). For
plain SGD and AdaGrad it is edge / 3: a step of theirs depends on the current gradient alone (AdaGrad's
denominator only grows), so the edge a fast sweep sees is the rate a full run can start at, while momentum's
velocity and RMSProp's and Adam's averages take 1/(1 − α) or 1/(1 − ρ) steps to build up and let a sweep run
past the rate a long run tolerates; on the grid SGD's best full-run rate was edge / 3 (digits) and edge ·
2.5 (a regression), AdaGrad's edge / 3.7, where a tenth left the regression's SGD pick at the loss of a
constant prediction. The search around it, not the suggestion alone, finds the rate (`tuner.study.autos`).

Why not the classic reading (fastai's `lr_find`, and this module before): it smooths with a causal
exponential moving average (β = 0.98, bias-corrected) whose lag of about β/(1−β) = 49 steps is half of a
100-step sweep, so its minimum sits where the raw loss is already climbing; fastai divides that minimum by
10 to make up for it. A centred average has no lag, and the edge, where the loss rises again, is sharper
than the bottom of a flat valley.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuner.errors import ProbeError
from tuner.nn.mlp import MLP
from tuner.optim import make as make_optimizer
from tuner.probe.stats import check_activation

if TYPE_CHECKING:
    from tuner.nn.data import Dataset

RISE = 0.2  # the edge: the smoothed loss this fraction above its minimum
LEAD_DECADES = 2.0  # sweeps after the first start this many decades below the first sweep's edge
CLIP_DECADES = 0.5  # each sweep's edge counts at most this far from the sweeps' median (`combine_edges`)
STOP = 4.0  # a sweep stops when the mean of its last h losses exceeds this multiple of their lowest mean
SUGGESTION_DIVISOR = 10.0  # suggested ε0 = edge / this ...
SUGGESTION_DIVISORS = {"sgd": 3.0, "adagrad": 3.0}  # ... or this, for the optimizers without a velocity or
# a running average of squared gradients to build up (see the module docstring)


def suggestion_divisor(optimizer: str) -> float:
    """The suggested ε0 of `optimizer` is its edge divided by this."""
    return SUGGESTION_DIVISORS.get(optimizer, SUGGESTION_DIVISOR)


@dataclass(frozen=True)
class Sweep:
    """One sweep: its minibatch losses (the last may be the non-finite one that ended it), the centred
    average of the finite ones, the index of the valley's bottom and of the edge (in `losses`), why it
    stopped (`blow-up`, `non-finite` or `eps_max`) and the step of the ramp it started at (`start`: 0 for
    the first sweep; its loss k was taken at rate `rates[start + k]`)."""

    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    min_index: int
    edge_index: int
    stop_reason: str
    start: int = 0

    def to_dict(self) -> dict:
        return {
            "losses": [v if math.isfinite(v) else None for v in self.losses],
            "smoothed": list(self.smoothed),
            "min_index": self.min_index,
            "edge_index": self.edge_index,
            "stop_reason": self.stop_reason,
            "start": self.start,
        }


@dataclass(frozen=True)
class LRProbeResult:
    """The sweeps and the reading of one optimizer's range test.

    `rates[k]` is the ramp (every sweep runs part of it, from its `start`); `edge` the sweeps' edges
    combined (`combine_edges`); `suggestion` = edge / `suggestion_divisor(optimizer)`; `fall` how far the
    loss fell before the edge (1 − s_k*/s_0, median over sweeps); `note` a caveat on the reading, or None.
    """

    optimizer: str
    hparams: dict[str, float]
    eps_min: float
    eps_max: float
    steps: int
    batch_size: int
    rates: tuple[float, ...]
    sweeps: tuple[Sweep, ...]
    edge: float
    suggestion: float
    fall: float
    note: str | None
    seconds: float

    @property
    def edges(self) -> tuple[float, ...]:
        """Each sweep's edge."""
        return tuple(sweep_edge(self.rates, s) for s in self.sweeps)

    @property
    def steps_run(self) -> int:
        """The minibatch steps of all sweeps together: the probe's cost."""
        return sum(len(s.losses) for s in self.sweeps)

    def to_dict(self) -> dict:
        """A JSON-able dict (a non-finite loss is written as None)."""
        return {
            "optimizer": self.optimizer,
            "hparams": dict(self.hparams),
            "eps_min": self.eps_min,
            "eps_max": self.eps_max,
            "steps": self.steps,
            "repeats": len(self.sweeps),
            "steps_run": self.steps_run,
            "batch_size": self.batch_size,
            "rates": list(self.rates),
            "sweeps": [s.to_dict() for s in self.sweeps],
            "edges": list(self.edges),
            "edge": self.edge,
            "suggestion": self.suggestion,
            "fall": self.fall,
            "note": self.note,
            "seconds": self.seconds,
        }


def ramp(eps_min: float, eps_max: float, steps: int) -> np.ndarray:
    """The exponential ramp of rates, eps_min at step 0 to eps_max at the last step."""
    return eps_min * (eps_max / eps_min) ** (np.arange(steps) / max(steps - 1, 1))


def half_width(eps_min: float, eps_max: float, steps: int) -> int:
    """Half a decade of the ramp, in steps (at least 1): the smoothing window's half-width."""
    return max(1, round(steps / (2 * math.log10(eps_max / eps_min))))


def centred_mean(values: np.ndarray, h: int) -> np.ndarray:
    """s_k = mean(v_j : |j − k| ≤ h), the window truncated at both ends: no lag, unlike an exponential
    moving average."""
    v = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(v)])
    k = np.arange(len(v))
    lo, hi = np.maximum(k - h, 0), np.minimum(k + h + 1, len(v))
    return (cumulative[hi] - cumulative[lo]) / (hi - lo)


def read_sweep(losses: list[float], h: int, stop_reason: str, start: int = 0) -> Sweep:
    """The valley's bottom and the edge of one sweep's losses (see the module docstring)."""
    finite = len(losses) if all(math.isfinite(v) for v in losses) else next(
        i for i, v in enumerate(losses) if not math.isfinite(v))
    if finite == 0:
        raise ProbeError("the loss was not finite from the first step; lower eps_min")
    smoothed = centred_mean(np.asarray(losses[:finite]), h)
    k_min = int(np.argmin(smoothed))
    above = np.nonzero(smoothed[k_min:] > (1.0 + RISE) * smoothed[k_min])[0]
    edge = k_min + int(above[0]) if above.size else finite if finite < len(losses) else finite - 1
    return Sweep(tuple(losses), tuple(float(s) for s in smoothed), k_min, edge, stop_reason, start)


def sweep_edge(rates: tuple[float, ...], sweep: Sweep) -> float:
    """The rate at a sweep's edge."""
    return float(rates[min(sweep.start + sweep.edge_index, len(rates) - 1)])


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ProbeError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _count(value: int, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ProbeError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _check_arguments(eps_min: float, eps_max: float, steps: int, repeats: int, batch_size: int,
                     n_examples: int) -> tuple[float, float]:
    """ProbeError naming the first bad argument; the rates as floats."""
    eps_min, eps_max = _positive(eps_min, "eps_min"), _positive(eps_max, "eps_max")
    if eps_min >= eps_max:
        raise ProbeError(f"eps_min must be < eps_max, got eps_min={eps_min:g}, eps_max={eps_max:g}")
    for value, name, low in ((steps, "steps", 8), (repeats, "repeats", 1), (batch_size, "batch_size", 1)):
        _count(value, name, low)
    if batch_size > n_examples:
        raise ProbeError(f"batch size {batch_size} is larger than the training data ({n_examples} examples)")
    return eps_min, eps_max


def _run_sweep(net: MLP, optimizer: str, hparams: dict[str, float], x: np.ndarray, y: np.ndarray,
               rates: np.ndarray, start: int, batch_size: int, h: int, rng: np.random.Generator) -> Sweep:
    """One sweep from `net`'s current parameters (which it changes), over `rates[start:]`; `x`, `y` as
    `net.check_set` returned them, gathered into one pair of buffers per sweep (the training loop's path)."""
    rates = rates[start:]
    opt = make_optimizer(optimizer, eps0=float(rates[0]), eps_tau=float(rates[0]), **hparams)
    opt.start(net.params, len(rates))
    losses: list[float] = []
    order, cursor, lowest, stop_reason = rng.permutation(len(x)), 0, math.inf, "eps_max"
    xb, yb = np.empty((batch_size, *x.shape[1:]), x.dtype), np.empty((batch_size, *y.shape[1:]), y.dtype)

    def closure() -> float:
        return net.loss_and_grad_checked(xb, yb)

    for rate in rates:
        if cursor + batch_size > len(x):
            order, cursor = rng.permutation(len(x)), 0
        idx = order[cursor : cursor + batch_size]
        cursor += batch_size
        x.take(idx, 0, xb, "clip")
        y.take(idx, 0, yb, "clip")
        opt.eps0 = opt.eps_tau = float(rate)
        with np.errstate(all="ignore"):
            losses.append(float(opt.step(net.params, net.grad, closure)))
        if not math.isfinite(losses[-1]):
            stop_reason = "non-finite"
            break
        # A trailing mean is enough to see a blow-up that is already certain; the reading itself is centred.
        recent = sum(losses[-h:]) / len(losses[-h:])
        lowest = min(lowest, recent)
        if len(losses) > 2 * h and recent > STOP * lowest:
            stop_reason = "blow-up"
            break
    return read_sweep(losses, h, stop_reason, start)


def combine_edges(edges: list[float]) -> float:
    """The probe's edge from its sweeps' edges: the mean of their logarithms, each first clipped to within
    CLIP_DECADES of their median (so one sweep that never rose, or rose at once, moves it by at most
    CLIP_DECADES / n decades). With one or two sweeps, their geometric mean."""
    logs = np.log(np.asarray(edges, dtype=np.float64))
    centre, reach = np.median(logs), CLIP_DECADES * math.log(10.0)
    return float(np.exp(np.clip(logs, centre - reach, centre + reach).mean()))


def lr_probe(
    model: MLP | Callable[[np.random.Generator], MLP],
    optimizer: str,
    data: Dataset | tuple[np.ndarray, np.ndarray],
    *,
    hparams: dict[str, float] | None = None,
    eps_min: float = 1e-5,
    eps_max: float = 10.0,
    steps: int = 100,
    repeats: int = 1,
    budget: int | None = None,
    lead_decades: float | None = LEAD_DECADES,
    batch_size: int = 64,
    rng: np.random.Generator,
) -> LRProbeResult:
    """Run up to `repeats` range tests of `optimizer` (fixed `hparams`, e.g. alpha or clip_norm) on
    `data`'s training set, and read the edge and the suggested ε0 from them.

    The first sweep ramps from eps_min to eps_max in `steps` steps; every later one runs the same ramp
    from `lead_decades` below the first sweep's edge (at the same rate per step, so it reads the same edge)
    and costs about half as much; with None, every sweep runs the whole ramp. `budget` caps the steps of
    all sweeps together: a later sweep runs only if it fits whole (the first always runs); None is
    `steps * repeats`.

    `model` is a network, whose parameters and buffers every sweep starts from (in train mode) and which
    are restored at the end with its mode, or a factory called as `model(rng)` for a fresh network per
    sweep. Minibatches are drawn without replacement from a permutation by `rng` (a new one each pass):
    the probe is deterministic for a seed.
    """
    x, y = (data.x_train, data.y_train) if hasattr(data, "x_train") else data
    eps_min, eps_max = _check_arguments(eps_min, eps_max, steps, repeats, batch_size, len(x))
    budget = steps * repeats if budget is None else _count(budget, "budget", steps)
    hparams = {k: v for k, v in (hparams or {}).items() if k not in ("eps0", "eps_tau", "tau")}
    rates = ramp(eps_min, eps_max, steps)
    ramp_rates = tuple(float(r) for r in rates)
    h = half_width(eps_min, eps_max, steps)
    started = time.perf_counter()
    sweeps: list[Sweep] = []
    first, spent, checked = 0, 0, None
    # A given network: every sweep starts from its parameters and buffers, restored (with its mode) at the end.
    kept = model.restoring(params=True) if isinstance(model, MLP) else contextlib.nullcontext()
    with kept:
        saved = model.state() if isinstance(model, MLP) else None
        while len(sweeps) < repeats and (not sweeps or spent + steps - first <= budget):
            net = model if isinstance(model, MLP) else model(rng)
            check_activation(net)
            if saved is not None:
                net.load_state(saved)
            if checked is None:  # once: every sweep's network has the same layers
                checked = net.check_set(x, y)
            sweeps.append(_run_sweep(net, optimizer, hparams, *checked, rates, first, batch_size, h, rng))
            spent += len(sweeps[-1].losses)
            if len(sweeps) == 1 and lead_decades is not None:
                first = int(np.searchsorted(rates, sweep_edge(ramp_rates, sweeps[0]) / 10**lead_decades))
    edge = combine_edges([sweep_edge(ramp_rates, s) for s in sweeps])
    fall = float(np.median([1.0 - s.smoothed[s.min_index] / s.smoothed[0] for s in sweeps]))
    return LRProbeResult(
        optimizer=optimizer, hparams=hparams, eps_min=eps_min, eps_max=eps_max, steps=steps,
        batch_size=batch_size, rates=ramp_rates, sweeps=tuple(sweeps), edge=edge,
        suggestion=edge / suggestion_divisor(optimizer), fall=fall, note=_note(sweeps, edge, eps_min, eps_max, fall),
        seconds=time.perf_counter() - started,
    )


def _note(sweeps: list[Sweep], edge: float, eps_min: float, eps_max: float, fall: float) -> str | None:
    """A caveat a user should see beside the suggestion, or None."""
    if sum(s.stop_reason == "eps_max" and s.edge_index == len(s.losses) - 1 for s in sweeps) * 2 > len(sweeps):
        return f"the loss did not rise before eps_max={eps_max:g}; a larger eps_max may find a larger rate"
    if edge < eps_min * 10:
        return f"the edge {edge:.3g} is within a decade of eps_min={eps_min:g}; lower eps_min"
    if fall < 0.05:
        return (f"the loss fell by only {100 * fall:.1f}% before the edge: the sweep saw it blow up but hardly "
                "learn, so the suggestion rests on the blow-up alone")
    return None
