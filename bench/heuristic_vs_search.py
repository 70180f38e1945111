"""Heuristic vs search: does the init-scale guess (LSUV) make the per-layer init-scale search cheaper?

For each spec and seed, three ways to pick the per-layer init scales, every other hyperparameter fixed
(one optimizer, one eps0) so that the comparison is about the init scale alone:

  (a) wide      a TPE search over a wide log range per layer (default 0.05 .. 20), no guess;
  (b) guess     the guess alone: one trial at the LSUV multipliers;
  (c) centred   a TPE search over guess/4 .. guess*4 per layer, warm-started with the guess (enqueued first,
                so trial 0 of (c) is (b)).

Trials use the real objective (`tuner.study.objective.make_objective`) in in-memory Optuna studies (no
storage cost), no pruner and no time budget. Reported: the best validation metric after 5, 10, 20 and 40
trials (mean ± std over seeds), the trials (c) needs to reach (a)'s best after the last checkpoint, and
the guess's cost as a fraction of one trial's time.

    OMP_NUM_THREADS=1 python bench/heuristic_vs_search.py studies/deep-tanh.toml --seeds 5 --trials 40
    python bench/heuristic_vs_search.py studies/mnist1d-mlp.toml --epochs 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import optuna
from tuner.probe.study import resolve_spec_autos, warm_start_params

from tuner.study.objective import make_objective
from tuner.study.params import AUTO, Fixed, PerLayer, Range
from tuner.study.space import direction, make_sampler
from tuner.study.spec import StudySpec, load_spec
from tuner.study.worker import load_study_data


def fixed_spec(spec: StudySpec, args: argparse.Namespace, seed: int) -> StudySpec:
    """The spec with everything but the init scales fixed, the study's seed set, no pruner or budget."""
    search = {"optimizer": Fixed(args.optimizer), "eps0": Fixed(args.eps0), "init_scale_shared": False}
    if args.optimizer in ("momentum", "nesterov"):
        search["alpha"] = Fixed(args.alpha)
    study = {"seed": seed, "pruner": "none", "time_budget": None}
    if args.startup is not None:
        study["n_startup_trials"] = args.startup
    update = {"search": spec.search.model_copy(update=search), "study": spec.study.model_copy(update=study)}
    if args.epochs is not None:
        update["train"] = spec.train.model_copy(update={"epochs": args.epochs})
    return spec.model_copy(update=update)


def with_scales(spec: StudySpec, scale) -> StudySpec:  # noqa: ANN001 - a [search] value
    return spec.model_copy(update={"search": spec.search.model_copy(update={"init_scale": scale})})


def run_study(spec: StudySpec, data, n_trials: int, enqueue: dict | None = None) -> tuple[list[float], list[float], dict]:  # noqa: ANN001
    """Values (NaN for a pruned/diverged trial), wall times and the best trial's parameters of `n_trials`
    trials in an in-memory study."""
    study = optuna.create_study(direction=direction(spec), sampler=make_sampler(spec), pruner=optuna.pruners.NopPruner())
    if enqueue:
        study.enqueue_trial(enqueue)
    study.optimize(make_objective(spec, data), n_trials=n_trials, catch=())
    values, seconds = [], []
    for t in study.trials:
        values.append(t.value if t.state == optuna.trial.TrialState.COMPLETE else math.nan)
        seconds.append((t.datetime_complete - t.datetime_start).total_seconds())
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return values, seconds, study.best_trial.params if complete else {}


def best_after(values: list[float], k: int, maximize: bool) -> float:
    finite = [v for v in values[:k] if math.isfinite(v)]
    if not finite:
        return math.nan
    return max(finite) if maximize else min(finite)


def trials_to_reach(values: list[float], target: float, maximize: bool) -> int | None:
    for k in range(1, len(values) + 1):
        best = best_after(values, k, maximize)
        if math.isfinite(best) and (best >= target if maximize else best <= target):
            return k
    return None


def mean_std(xs: list[float]) -> str:
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.4f} ± {sd:.4f}"


def bench_spec(path: str, args: argparse.Namespace) -> dict:
    base = load_spec(path)
    data = load_study_data(base)
    maximize = direction(base) == "maximize"
    n_layers = base.model.n_layers
    wide = PerLayer(tuple(Range(args.wide_low, args.wide_high, log=True) for _ in range(n_layers)))
    runs = []
    for seed in range(args.seeds):
        spec = fixed_spec(base, args, seed)
        started = time.perf_counter()
        resolved, init_rec, _ = resolve_spec_autos(with_scales(spec, AUTO), data)
        probe_seconds = time.perf_counter() - started
        enqueue = warm_start_params(resolved, init_rec, None)
        a_values, a_seconds, a_best = run_study(with_scales(spec, wide), data, args.trials)
        c_values, c_seconds, c_best = run_study(resolved, data, args.trials, enqueue)
        run = {
            "seed": seed,
            "guess": init_rec["multipliers"],
            "guess_seconds": init_rec["seconds"],
            "probe_seconds": probe_seconds,
            "wide": a_values,
            "centred": c_values,
            "trial_seconds": a_seconds + c_seconds,
            "wide_best_params": a_best,
            "centred_best_params": c_best,
        }
        runs.append(run)
        print(f"{base.study.name} seed {seed}: wide best {best_after(a_values, args.trials, maximize):.4f}, "
              f"guess {c_values[0]:.4f}, centred best {best_after(c_values, args.trials, maximize):.4f}, "
              f"guess {init_rec['seconds'] * 1000:.1f} ms, trial {statistics.median(a_seconds + c_seconds):.2f} s",
              flush=True)
    return {"spec": path, "study": base.study.name, "objective": base.study.objective, "maximize": maximize,
            "epochs": fixed_spec(base, args, 0).train.epochs, "runs": runs}


def _scales(params: dict) -> str:
    keys = sorted((k for k in params if k.startswith("init_scale_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    return ", ".join(f"{params[k]:.3g}" for k in keys) or "-"


def summarise(result: dict, checkpoints: list[int], trials: int) -> str:
    maximize, runs = result["maximize"], result["runs"]
    lines = [
        f"### {result['study']} ({result['objective']}, {result['epochs']} epochs, {len(runs)} seeds)",
        "",
        "| trials | (a) wide search | (b) guess alone | (c) centred + warm start |",
        "| ---: | --- | --- | --- |",
    ]
    guess = mean_std([r["centred"][0] for r in runs])
    for k in [c for c in checkpoints if c <= trials]:
        a = mean_std([best_after(r["wide"], k, maximize) for r in runs])
        c = mean_std([best_after(r["centred"], k, maximize) for r in runs])
        lines.append(f"| {k} | {a} | {guess} | {c} |")
    reach = []
    for r in runs:
        n = trials_to_reach(r["centred"], best_after(r["wide"], trials, maximize), maximize)
        reach.append(str(n) if n is not None else f">{trials}")
    diverged_a = sum(not math.isfinite(v) for r in runs for v in r["wide"])
    diverged_c = sum(not math.isfinite(v) for r in runs for v in r["centred"])
    trial_s = statistics.median(  # completed trials only: a diverged one stops early
        s for r in runs for s, v in zip(r["trial_seconds"], r["wide"] + r["centred"]) if math.isfinite(v)
    )
    guess_s = statistics.median(r["guess_seconds"] for r in runs)
    lines += [
        "",
        f"- trials (c) needs to reach (a)'s {trials}-trial best, per seed: {', '.join(reach)}",
        f"- diverged trials: (a) {diverged_a} of {trials * len(runs)}, (c) {diverged_c} of {trials * len(runs)}",
        f"- guess: {guess_s * 1000:.1f} ms (median) = {100 * guess_s / trial_s:.2f}% of one trial "
        f"({trial_s:.2f} s, median of the completed trials)",
        "- guessed multipliers (seed 0): " + ", ".join(f"{m:.3g}" for m in runs[0]["guess"]),
        "- (a)'s best multipliers (seed 0): " + _scales(runs[0]["wide_best_params"]),
        "- (c)'s best multipliers (seed 0): " + _scales(runs[0]["centred_best_params"]),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", default=["studies/deep-tanh.toml", "studies/mnist1d-mlp.toml"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs (default: the spec's)")
    parser.add_argument("--optimizer", default="momentum")
    parser.add_argument("--eps0", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--startup", type=int, default=None, help="TPE random startup trials (default: the spec's)")
    parser.add_argument("--wide-low", type=float, default=0.05)
    parser.add_argument("--wide-high", type=float, default=20.0)
    parser.add_argument("--checkpoints", default="5,10,20,40")
    parser.add_argument("--json", type=Path, default=None, help="write every trial's value here")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    results = [bench_spec(path, args) for path in args.specs]
    if args.json is not None:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}))
    for result in results:
        print()
        print(summarise(result, checkpoints, args.trials))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
