"""The report's figures, drawn with matplotlib from the analysis frames.

Each function takes frames (or plain values) and returns a `matplotlib.figure.Figure` on the Agg canvas.
Figures are built without `pyplot`, so nothing here touches matplotlib's global state or needs a display;
`save_png` writes one to a file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

DPI = 100
GUESS_COLOR = "tab:red"


def _figure(width: float = 7.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _message(fig: Figure, text: str) -> Figure:
    """A figure that says why there is nothing to draw, so every report has the same set of files."""
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11, color="0.35")
    return fig


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a PNG and return the path."""
    path = Path(path)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def optimization_history(trials: pd.DataFrame, *, metric: str, maximize: bool) -> Figure:
    """Each complete trial's value against its number, with the best value so far as a step line."""
    fig = _figure()
    complete = trials[trials["state"] == "COMPLETE"].sort_values("number")
    if complete.empty:
        return _message(fig, "no complete trials")
    ax = fig.add_subplot()
    values = complete["value"].to_numpy(dtype=float)
    best = np.fmax.accumulate(values) if maximize else np.fmin.accumulate(values)
    ax.scatter(complete["number"], values, s=18, color="tab:blue", label="trial value", zorder=3)
    ax.step(complete["number"], best, where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial number")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.set_title("Optimization history")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def best_per_optimizer(summary: pd.DataFrame, *, metric: str) -> Figure:
    """A bar per optimizer: its best complete trial, with the median of its complete trials marked."""
    fig = _figure()
    rows = summary.dropna(subset=["best"])
    if rows.empty:
        return _message(fig, "no complete trials")
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    ax.bar(x, rows["best"], color="tab:blue", label="best")
    ax.scatter(x, rows["median"], color="black", marker="_", s=400, zorder=3, label="median")
    labels = [f"{r.optimizer}\n{int(r.complete)}/{int(r.trials)} complete" for r in rows.itertuples()]
    ax.set_xticks(x, labels)
    ax.set_ylabel(metric)
    ax.set_title("Best value per optimizer")
    ax.legend(loc="best")
    ax.grid(axis="y", alpha=0.3)
    return fig


def best_against_trials(progress: pd.DataFrame, *, metric: str, equal_budget: int) -> Figure:
    """Each optimizer's best value against the trials spent on it, with the equal budget marked: which
    optimizer is best at the same tuning cost (Choi et al. 2019, Schmidt et al. 2021)."""
    fig = _figure()
    shown = progress.dropna(subset=["best_so_far"])
    if shown.empty:
        return _message(fig, "no complete trials")
    ax = fig.add_subplot()
    for name, group in progress.groupby("optimizer", sort=True):
        ax.step(group["spent"], group["best_so_far"], where="post", label=f"{name} ({len(group)} trials)")
    if equal_budget > 0:
        ax.axvline(equal_budget, color="0.4", linestyle=":", label=f"equal budget: {equal_budget} trials each")
    ax.set_xlabel("trials spent on the optimizer")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"best {metric} so far")
    ax.set_title("Best value per optimizer against its trials")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def param_importances(importances: dict[str, float] | None, *, note: str | None = None) -> Figure:
    """Horizontal bars, most important on top; `note` replaces the chart when importances are unknown."""
    fig = _figure()
    if not importances:
        return _message(fig, note or "parameter importances are not available")
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="tab:green")
    ax.set_xlabel("importance (PED-ANOVA)")
    ax.set_title("Parameter importances")
    ax.grid(axis="x", alpha=0.3)
    return fig


def validation_curves(curves: pd.DataFrame, trial_numbers: list[int], *, metric: str) -> Figure:
    """The per-epoch validation metric of the given trials (best first), one line each."""
    fig = _figure()
    shown = curves[curves["trial_number"].isin(trial_numbers)]
    if shown.empty or shown[metric].isna().all():
        return _message(fig, "no learning curves recorded for the best trials")
    ax = fig.add_subplot()
    for number in trial_numbers:
        curve = shown[shown["trial_number"] == number].sort_values("epoch")
        if not curve.empty:
            ax.plot(curve["epoch"], curve[metric], marker="o", markersize=3, label=f"trial {number}")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.set_title(f"Validation curves of the {len(trial_numbers)} best trials")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def metric_against_init_scale(
    trials: pd.DataFrame, scale_columns: list[str], *, metric: str, guess: list[float] | None = None
) -> Figure:
    """One panel per layer: each complete trial's value against that layer's init scale (log x).

    Where an init-scale guess exists, a vertical line marks the guessed multiplier of each layer.
    """
    complete = trials[trials["state"] == "COMPLETE"]
    if not scale_columns or complete.empty:
        return _message(_figure(), "no init-scale multipliers recorded" if complete.size else "no complete trials")
    n = len(scale_columns)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(3.2 * cols + 0.6, 2.8 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for i, column in enumerate(scale_columns):
        ax = axes[i // cols][i % cols]
        scales = pd.to_numeric(complete[column], errors="coerce")
        ax.scatter(scales, complete["value"], s=16, color="tab:blue", zorder=3)
        ax.set_xscale("log")
        # Plain numbers at 1, 2, 5 x 10^k: a multiplier reads as 0.5 or 2, not 5 x 10^-1.
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(f"layer {i}", fontsize=10)
        ax.set_xlabel(f"init scale ({column})", fontsize=9)
        if i % cols == 0:
            ax.set_ylabel(metric)
        if guess is not None and i < len(guess):
            ax.axvline(guess[i], color=GUESS_COLOR, linestyle="--", label=f"guess {guess[i]:.3g}")
            ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3, which="both")
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(f"{metric} against each layer's init scale")
    return fig
