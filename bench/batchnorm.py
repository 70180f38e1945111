"""Batch normalization: does it make the deep tanh net insensitive to its initial scale?

The network and data of `studies/deep-tanh-bn.toml` (8 hidden tanh layers of 64 units on the digits, the
spec's split, standardisation, epochs, batch size, clip_norm and lecun init), trained with one fixed
optimizer config (momentum, eps0 and alpha below, the linear decay of eq. 8.14 to 1%) for every shared
init scale (the multiplier of every dense layer) in `--scales`, with and without batch normalization, for
`--seeds` seeds (the seed draws the weights and the minibatch order). The value of a run is the study's:
its best epoch's validation accuracy. A run that diverges counts as its best epoch so far (0 if none).

Writes a markdown table (median and min-max over seeds per cell) to stdout, the figure to
`bench/figures/batchnorm.png` and, with `--json`, every run.

    OPENBLAS_NUM_THREADS=1 python bench/batchnorm.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from machine import blas_summary, load_average

from tuner.nn.data import Dataset
from tuner.nn.mlp import MLP
from tuner.nn.train import train
from tuner.optim import make
from tuner.study.data import load_study_data
from tuner.study.objective import layer_sizes
from tuner.study.spec import StudySpec, load_spec

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "studies" / "deep-tanh-bn.toml"
FIGURE = ROOT / "bench" / "figures" / "batchnorm.png"


def run(spec: StudySpec, data: Dataset, scale: float, batchnorm: bool, seed: int, eps0: float, alpha: float) -> dict:
    rng = np.random.default_rng(seed)
    model = MLP(layer_sizes(spec, data), spec.model.activation, init="lecun", init_scale=scale,
                batchnorm=batchnorm, dtype=np.dtype(spec.train.dtype), rng=rng)
    optimizer = make("momentum", eps0=eps0, alpha=alpha, clip_norm=spec.train.clip_norm)
    started = time.perf_counter()
    with np.errstate(all="ignore"):
        result = train(model, optimizer, data, spec.train.epochs, spec.train.batch_size, rng)
    accuracies = [r.val_accuracy for r in result.history if r.val_accuracy is not None]
    return {"scale": scale, "batchnorm": batchnorm, "seed": seed, "status": result.status,
            "best": max(accuracies, default=0.0), "final": accuracies[-1] if accuracies else 0.0,
            "seconds": time.perf_counter() - started}


def summary(runs: list[dict], scales: list[float]) -> list[dict]:
    """Per scale and setting: median, min and max of the runs' best validation accuracy, and divergences."""
    rows = []
    for scale in scales:
        for batchnorm in (False, True):
            cell = [r for r in runs if r["scale"] == scale and r["batchnorm"] == batchnorm]
            best = [r["best"] for r in cell]
            rows.append({"scale": scale, "batchnorm": batchnorm, "median": statistics.median(best),
                         "min": min(best), "max": max(best),
                         "diverged": sum(r["status"] == "diverged" for r in cell), "runs": len(cell)})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| init scale | without BN: median (min–max) | with BN: median (min–max) |", "| ---: | ---: | ---: |"]
    for plain, norm in zip(rows[::2], rows[1::2], strict=True):
        cells = [f"{r['median']:.3f} ({r['min']:.3f}–{r['max']:.3f})"
                 + (f", {r['diverged']} diverged" if r["diverged"] else "") for r in (plain, norm)]
        lines.append(f"| {plain['scale']:g} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def figure(rows: list[dict], path: Path, title: str) -> None:
    from matplotlib.figure import (
        Figure,  # no pyplot: a bare Figure renders with the Agg canvas
    )

    fig = Figure(figsize=(6.4, 4.6), dpi=120)
    ax = fig.subplots()
    for batchnorm, label, colour in ((False, "without batch normalization", "tab:red"),
                                     (True, "with batch normalization", "tab:blue")):
        part = [r for r in rows if r["batchnorm"] == batchnorm]
        x = [r["scale"] for r in part]
        median = np.array([r["median"] for r in part])
        ax.plot(x, median, "o-", color=colour, label=label)
        ax.fill_between(x, [r["min"] for r in part], [r["max"] for r in part], color=colour, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("shared init scale (multiplier of lecun's N(0, 1/fan_in))")
    ax.set_ylabel("best validation accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8)
    fig.subplots_adjust(bottom=0.22)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0, 10.0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eps0", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    spec = load_spec(SPEC)
    if args.epochs is not None:
        spec = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": args.epochs})})
    data = load_study_data(spec)
    print(f"load average before: {load_average()}; BLAS: {blas_summary()}")
    started = time.perf_counter()
    runs = [run(spec, data, scale, bn, seed, args.eps0, args.alpha)
            for scale in args.scales for bn in (False, True) for seed in range(args.seeds)]
    rows = summary(runs, args.scales)
    print(table(rows))
    print(f"{len(runs)} runs in {time.perf_counter() - started:.0f} s; load average after: {load_average()}")
    title = (f"{SPEC.name} network and data, momentum eps0={args.eps0:g}, alpha={args.alpha:g},\n"
             f"{spec.train.epochs} epochs, {args.seeds} seeds: median and min-max")
    figure(rows, FIGURE, title)
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": runs, "summary": rows, "blas": blas_summary()}, indent=1))


if __name__ == "__main__":
    main()
