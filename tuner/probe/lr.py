"""The learning-rate probe: the range test of L. N. Smith, "Cyclical Learning Rates for Training Neural
Networks" (WACV 2017, sec. 3.3).

From the initial model, run `steps` minibatch steps of the optimizer with the rate ramped exponentially

    ε_k = eps_min · (eps_max/eps_min)^(k/(steps−1)),   k = 0 .. steps−1

(constant within a step), record each step's minibatch loss L_k (at the parameters the step starts from),
and smooth it with a bias-corrected exponential moving average (as Adam corrects its moments):

    m_k = β·m_{k−1} + (1−β)·L_k,  m_{−1} = 0 ;   L̂_k = m_k / (1 − β^(k+1))

Stop early when L_k or L̂_k is not finite or L̂_k > 4·min_{j≤k} L̂_j (the loss has blown up).

Suggested ε0: the rate at the minimum of the smoothed loss divided by 10. The minimum itself is already
at the edge of stability (the loss is about to rise), and the smoothed curve lags the raw one (by about
β/(1−β) = 49 steps at β = 0.98, i.e. half of a 100-step ramp: its minimum sits where the raw loss is
already climbing); a tenth of it is the usual choice (fastai's `lr_min`) and, unlike the steepest-descent
point, does not depend on a derivative of a noisy curve. Search range: suggestion/10 .. suggestion·10, log.

The rate is imposed by setting the optimizer's `eps0` and `eps_tau` to ε_k before each step (a constant
schedule of eq. 8.14 for that step): the optimizer's state (velocity, moments) carries over from step to
step, as in a real run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuner.errors import ProbeError
from tuner.optim import make as make_optimizer
from tuner.probe.stats import check_activation

BLOW_UP = 4.0  # stop when the smoothed loss exceeds this multiple of its minimum
SUGGESTION_DIVISOR = 10.0  # suggested ε0 = rate at the smoothed minimum / this
RANGE_FACTOR = 10.0  # search range: suggestion / this .. suggestion * this


@dataclass(frozen=True)
class LRProbeResult:
    """The curve and the suggestion of one range test.

    `rates[k]`, `losses[k]`, `smoothed[k]` for the steps run (the last may be the non-finite one that
    stopped the test). `min_rate`: the rate at the smoothed minimum. `stop_reason`: why the test ended
    (`blow-up`, `non-finite`, or `eps_max` when it ran to the end). `note`: a caveat on the suggestion,
    or None.
    """

    optimizer: str
    hparams: dict[str, float]
    eps_min: float
    eps_max: float
    steps: int
    batch_size: int
    rates: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    min_rate: float
    min_loss: float
    suggestion: float
    low: float
    high: float
    stop_reason: str
    note: str | None
    seconds: float

    @property
    def search_range(self) -> tuple[float, float]:
        """(low, high) of the suggested log range for ε0."""
        return self.low, self.high

    def to_dict(self) -> dict:
        """A JSON-able dict; a non-finite loss is written as None."""

        def finite(values: tuple[float, ...]) -> list[float | None]:
            return [v if math.isfinite(v) else None for v in values]

        return {
            "optimizer": self.optimizer,
            "hparams": dict(self.hparams),
            "eps_min": self.eps_min,
            "eps_max": self.eps_max,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "rates": list(self.rates),
            "losses": finite(self.losses),
            "smoothed": finite(self.smoothed),
            "min_rate": self.min_rate,
            "min_loss": self.min_loss,
            "suggestion": self.suggestion,
            "range": [self.low, self.high],
            "stop_reason": self.stop_reason,
            "note": self.note,
            "seconds": self.seconds,
        }


def ramp(eps_min: float, eps_max: float, steps: int) -> np.ndarray:
    """The exponential ramp of rates, eps_min at step 0 to eps_max at the last step."""
    return eps_min * (eps_max / eps_min) ** (np.arange(steps) / max(steps - 1, 1))


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ProbeError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_data(x: np.ndarray, batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ProbeError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size > len(x):
        raise ProbeError(f"batch size {batch_size} is larger than the training data ({len(x)} examples)")


def lr_probe(
    model,  # noqa: ANN001 - an MLP, or a callable rng -> MLP
    optimizer: str,
    data,  # noqa: ANN001 - a Dataset (x_train, y_train), or a tuple (x, y)
    *,
    hparams: dict[str, float] | None = None,
    eps_min: float = 1e-6,
    eps_max: float = 10.0,
    steps: int = 100,
    batch_size: int = 64,
    smooth: float = 0.98,
    rng: np.random.Generator,
) -> LRProbeResult:
    """Run the range test of `optimizer` (fixed `hparams`, e.g. alpha or clip_norm) on `data`'s training set.

    `model` is either a network, whose parameters are restored when the test ends, or a factory called as
    `model(rng)` for a fresh one. Minibatches are drawn without replacement from a permutation by `rng`
    (a new permutation each pass), so the test is deterministic for a seed.
    """
    eps_min, eps_max = _positive(eps_min, "eps_min"), _positive(eps_max, "eps_max")
    if eps_min >= eps_max:
        raise ProbeError(f"eps_min must be < eps_max, got eps_min={eps_min:g}, eps_max={eps_max:g}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ProbeError(f"steps must be an integer >= 2, got {steps!r}")
    if not (isinstance(smooth, int | float) and 0.0 <= smooth < 1.0):
        raise ProbeError(f"smooth must be in [0, 1), got {smooth!r}")
    x, y = (data.x_train, data.y_train) if hasattr(data, "x_train") else data
    _check_data(x, batch_size)
    hparams = {k: v for k, v in (hparams or {}).items() if k not in ("eps0", "eps_tau", "tau")}
    rates = ramp(eps_min, eps_max, steps)

    net = model(rng) if callable(model) and not hasattr(model, "params") else model
    check_activation(net)
    saved = None if net is not model else net.params.copy()
    opt = make_optimizer(optimizer, eps0=eps_min, eps_tau=eps_min, **hparams)
    started = time.perf_counter()
    losses: list[float] = []
    smoothed: list[float] = []
    m, best, stop_reason = 0.0, math.inf, "eps_max"
    order, cursor = rng.permutation(len(x)), 0
    try:
        opt.start(net.params, steps)
        for k, rate in enumerate(rates):
            if cursor + batch_size > len(x):
                order, cursor = rng.permutation(len(x)), 0
            idx = order[cursor : cursor + batch_size]
            cursor += batch_size
            xb, yb = x[idx], y[idx]
            opt.eps0 = opt.eps_tau = float(rate)
            with np.errstate(all="ignore"):
                loss = float(opt.step(net.params, net.grad, lambda xb=xb, yb=yb: net.loss_and_grad(xb, yb)))
            losses.append(loss)
            m = smooth * m + (1.0 - smooth) * loss
            smoothed.append(m / (1.0 - smooth ** (k + 1)))
            if not (math.isfinite(loss) and math.isfinite(smoothed[-1])):
                stop_reason = "non-finite"
                break
            best = min(best, smoothed[-1])
            if smoothed[-1] > BLOW_UP * best:
                stop_reason = "blow-up"
                break
    finally:
        if saved is not None:
            np.copyto(net.params, saved)
    seconds = time.perf_counter() - started

    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if not finite:
        raise ProbeError(
            f"{optimizer}: the loss was not finite from the first step at rate {eps_min:g}; lower eps_min"
        )
    i_min = min(finite, key=lambda i: smoothed[i])
    min_rate = float(rates[i_min])
    suggestion = min_rate / SUGGESTION_DIVISOR
    note = None
    if stop_reason == "eps_max":
        note = f"the loss did not blow up before eps_max={eps_max:g}; a larger eps_max may find a larger rate"
    elif i_min == 0:
        note = "the smoothed loss never went below its first value; lower eps_min"
    return LRProbeResult(
        optimizer=optimizer,
        hparams=hparams,
        eps_min=eps_min,
        eps_max=eps_max,
        steps=steps,
        batch_size=batch_size,
        rates=tuple(float(r) for r in rates[: len(losses)]),
        losses=tuple(losses),
        smoothed=tuple(float(s) for s in smoothed),
        min_rate=min_rate,
        min_loss=float(smoothed[i_min]),
        suggestion=suggestion,
        low=suggestion / RANGE_FACTOR,
        high=suggestion * RANGE_FACTOR,
        stop_reason=stop_reason,
        note=note,
        seconds=seconds,
    )


def plot(result: LRProbeResult, path: str | Path) -> Path:
    """Write a PNG of the loss (raw and smoothed) against the rate (log x), the suggestion marked."""
    from matplotlib.figure import (
        Figure,  # no pyplot: a bare Figure renders with the Agg canvas
    )

    path = Path(path)
    fig = Figure(figsize=(7, 4.5), dpi=100)
    ax = fig.add_subplot()
    rates = np.asarray(result.rates)
    losses = np.asarray(result.losses, dtype=float)
    ok = np.isfinite(losses)
    ax.plot(rates[ok], losses[ok], color="0.75", linewidth=1, label="minibatch loss")
    ax.plot(rates[: len(result.smoothed)], result.smoothed, color="C0", linewidth=2, label="smoothed")
    ax.axvline(result.min_rate, color="0.4", linestyle=":", label=f"minimum  ε = {result.min_rate:.3g}")
    ax.axvline(result.suggestion, color="C3", linestyle="--", label=f"suggested ε0 = {result.suggestion:.3g}")
    ax.axvspan(result.low, result.high, color="C3", alpha=0.08, label="search range")
    ax.set_xscale("log")
    finite = np.asarray(result.smoothed)[np.isfinite(result.smoothed)]
    if finite.size and result.min_loss > 0:  # the blown-up tail would squash the interesting part
        bottom = 0.9 * min(float(np.min(losses[ok])), result.min_loss)
        ax.set_ylim(bottom, 1.1 * min(float(np.max(finite)), BLOW_UP * result.min_loss))
    ax.set_xlabel("learning rate ε (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(f"Learning-rate range test: {result.optimizer}, {len(result.losses)} steps ({result.stop_reason})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
