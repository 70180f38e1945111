"""The picture of a learning-rate probe: each sweep's loss against the rate, the edge and the suggestion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tuner.probe.lr import LRProbeResult, sweep_edge


def plot(result: LRProbeResult, path: str | Path, *, search_range: tuple[float, float] | None = None) -> Path:
    """Write a PNG of every sweep's loss (raw, light; centred average, dark) against the rate (log x), with
    the combined edge, the suggested ε0 and, when given, the search range marked."""
    from matplotlib.figure import Figure  # no pyplot: a bare Figure renders with the Agg canvas

    path = Path(path)
    fig = Figure(figsize=(7, 4.5), dpi=100)
    ax = fig.add_subplot()
    rates = np.asarray(result.rates)
    lows, highs = [], []
    for i, sweep in enumerate(result.sweeps):
        losses = np.asarray(sweep.losses, dtype=float)
        ok = np.isfinite(losses)
        at = rates[sweep.start :]
        ax.plot(at[: len(losses)][ok], losses[ok], color=f"C{i}", alpha=0.25, linewidth=0.8)
        ax.plot(at[: len(sweep.smoothed)], sweep.smoothed, color=f"C{i}", linewidth=1.6,
                label=f"sweep {i + 1}: edge {sweep_edge(result.rates, sweep):.3g}")
        lows.append(min(sweep.smoothed))
        highs.append(max(sweep.smoothed[: sweep.min_index + 1]))
    ax.axvline(result.edge, color="0.3", linestyle=":", label=f"edge (combined) {result.edge:.3g}")
    ax.axvline(result.suggestion, color="C3", linestyle="--", label=f"suggested ε0 = {result.suggestion:.3g}")
    if search_range is not None:
        ax.axvspan(*search_range, color="C3", alpha=0.08, label="search range")
    ax.set_xscale("log")
    if lows and min(lows) > 0:  # the blown-up tail would squash the valley
        ax.set_ylim(0.9 * min(lows), 1.5 * max(highs))
    ax.set_xlabel("learning rate ε (log scale)")
    ax.set_ylabel("training loss (minibatch)")
    ax.set_title(f"Learning-rate range test: {result.optimizer}, {len(result.sweeps)} sweeps, {result.steps_run} steps")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
