"""Learning-rate probe: is the suggested eps0 right, and stable across study seeds?

For each spec, at the init-scale guess (the network `"auto"` probes) and with each optimizer's defaults
for the hyperparameters a spec searches:

  truth    the best eps0 of a grid (10^-4.5 .. 10^1 in quarter decades) for a full run of the spec (its
           epochs, the linear decay of eq. 8.14), mean validation metric over `--grid-seeds` seeds, and
           the metric at the probe's suggestion (interpolated on the grid in log eps0);
  new      `tuner.probe.lr_probe` as `"auto"` runs it (`--repeats` sweeps of `--steps`, 1e-5 .. 10):
           the edge and the suggestion (edge / 10) per study seed, and their spread max/min over seeds;
  old      the reading tuner used before (and fastai's `lr_find` uses): one sweep of 100 steps over
           1e-6 .. 10, a bias-corrected exponential moving average of the loss (β = 0.98), stopped when it
           exceeds 4x its minimum; suggestion = the rate at its minimum / 10. Re-implemented here as the
           baseline, from the same first network and minibatch order (the study seed).

    OPENBLAS_NUM_THREADS=1 nice -n 5 python bench/lr_probe.py studies/digits-mlp.toml --seeds 5
    python bench/lr_probe.py studies/deep-relu.toml --epochs 30 --json deep-relu-lr.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import warnings
from pathlib import Path

import numpy as np
import optuna

from tuner.optim import make as make_optimizer
from tuner.study.autos import (
    guess_record,
    optimizer_hparams,
    probe_model,
    spec_lr_probe,
)
from tuner.study.data import load_study_data
from tuner.study.objective import make_objective
from tuner.study.params import PerLayer, Range
from tuner.study.spec import StudySpec, load_spec

GRID = 10 ** np.arange(-4.5, 1.01, 0.25)


def seeded(base: StudySpec, seed: int, epochs: int | None) -> StudySpec:
    """The spec at a study seed, searched hyperparameters at their defaults, no pruner or time budget."""
    study = base.study.model_copy(update={"seed": seed, "pruner": "none", "time_budget": None})
    search = base.search.model_copy(update=dict.fromkeys(("alpha", "rho", "rho1", "rho2", "delta")))
    train = base.train.model_copy(update={"epochs": epochs or base.train.epochs})
    return base.model_copy(update={"study": study, "search": search, "train": train})


def grid_values(spec: StudySpec, optimizer: str, guess: list[float]) -> list[float]:
    """The validation metric of a full run at each grid rate (the worst value of the grid when pruned)."""
    wide = spec.search.model_copy(update={"eps0": Range(1e-9, 1e3, log=True),
                                          "init_scale": PerLayer(tuple(Range(1e-6, 1e6, log=True) for _ in guess))})
    data = load_study_data(spec)
    objective = make_objective(spec.model_copy(update={"search": wide}), data)
    values = []
    for eps0 in GRID:
        params = {"optimizer": optimizer, "eps0": float(eps0), **{f"init_scale_{i}": g for i, g in enumerate(guess)}}
        try:
            values.append(objective(optuna.trial.FixedTrial(params)))
        except optuna.TrialPruned:
            values.append(math.nan)
    return values


def old_suggestion(spec: StudySpec, optimizer: str, guess: list[float], seed: int) -> float:
    """The EMA reading (see the module docstring) on one 100-step sweep from 1e-6 to 10."""
    data = load_study_data(spec)
    rng = np.random.default_rng(seed)
    net = probe_model(spec, data, tuple(guess), rng)
    rates = 1e-6 * (1e7) ** (np.arange(100) / 99)
    opt = make_optimizer(optimizer, eps0=1e-6, eps_tau=1e-6, **optimizer_hparams(spec, optimizer))
    opt.start(net.params, 100)
    order, cursor, m, smoothed = rng.permutation(len(data.x_train)), 0, 0.0, []
    for k, rate in enumerate(rates):
        if cursor + spec.train.batch_size > len(order):
            order, cursor = rng.permutation(len(data.x_train)), 0
        idx = order[cursor : cursor + spec.train.batch_size]
        cursor += spec.train.batch_size
        opt.eps0 = opt.eps_tau = float(rate)
        with np.errstate(all="ignore"):
            loss = opt.step(net.params, net.grad, lambda i=idx: net.loss_and_grad(data.x_train[i], data.y_train[i]))
        m = 0.98 * m + 0.02 * loss
        smoothed.append(m / (1 - 0.98 ** (k + 1)))
        if not math.isfinite(smoothed[-1]) or smoothed[-1] > 4 * min(smoothed):
            break
    finite = [i for i, s in enumerate(smoothed) if math.isfinite(s)]
    return float(rates[min(finite, key=lambda i: smoothed[i])]) / 10


def at(values: list[float], eps0: float) -> float:
    """The grid's metric interpolated at `eps0` (log scale); a pruned run counts as the grid's worst."""
    v = np.array(values, dtype=float)
    v = np.where(np.isfinite(v), v, np.nanmin(v) if np.isfinite(v).any() else 0.0)
    return float(np.interp(math.log10(eps0), np.log10(GRID), v))


def bench(path: str, args: argparse.Namespace) -> dict:
    base = load_spec(path)
    rows = {}
    for optimizer in base.search.optimizers:
        new, old, edges, truth = [], [], [], []
        for seed in range(args.seeds):
            spec = seeded(base, seed, args.epochs)
            data = load_study_data(spec)
            guess = guess_record(spec, data)["multipliers"]
            result = spec_lr_probe(spec, data, optimizer, scales=tuple(guess), batch_size=spec.train.batch_size,
                                   seed=seed, steps=args.steps, repeats=args.repeats)
            new.append(result.suggestion)
            edges.append(result.edge)
            old.append(old_suggestion(spec, optimizer, guess, seed))
            if seed < args.grid_seeds:
                truth.append(grid_values(spec, optimizer, guess))
        rows[optimizer] = {"new": new, "edges": edges, "old": old, "grid": truth}
        print(f"{base.study.name} {optimizer} done", flush=True)
    return {"spec": path, "study": base.study.name, "maximize": base.study.direction == "maximize", "rows": rows}


def summarise(result: dict) -> str:
    maximize = result["maximize"]
    sign = 1 if maximize else -1
    lines = [f"### {result['study']}", "",
             "| optimizer | grid best eps0 (metric) | new suggestion (x spread over seeds) | metric at new "
             "| old suggestion (x spread) | metric at old |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r in result["rows"].items():
        with warnings.catch_warnings():  # a rate where every seed diverged has no mean: NaN, as meant
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.array(r["grid"], dtype=float), axis=0)
        i = int(np.nanargmax(sign * mean))
        geo = {k: math.exp(statistics.mean(math.log(v) for v in r[k])) for k in ("new", "old")}
        spread = {k: max(r[k]) / min(r[k]) for k in ("new", "old")}
        value = {k: statistics.mean(at(list(mean), v) for v in r[k]) for k in ("new", "old")}
        lines.append(f"| {name} | {GRID[i]:.3g} ({mean[i]:.4f}) | {geo['new']:.3g} (x{spread['new']:.2f}) | "
                     f"{value['new']:.4f} | {geo['old']:.3g} (x{spread['old']:.2f}) | {value['old']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", default=["studies/digits-mlp.toml"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--grid-seeds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--summarise", type=Path, nargs="*", default=None)
    args = parser.parse_args()
    if args.summarise:
        for path in args.summarise:
            for result in json.loads(path.read_text())["results"]:
                print(summarise(result), end="\n\n")
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", UserWarning)
    results = [bench(path, args) for path in args.specs]
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}))
    for result in results:
        print(summarise(result), end="\n\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
