"""Heuristic vs search: does `"auto"` (the probes as anchors of the search) beat a wide search at the same
budget?

For each spec and seed, two studies of N trials each, with the spec's sampler (TPE as in the spec,
seeded with the study's seed; the seed also sets the data split and every trial's training), the real
objective (`make_objective`) in an in-memory Optuna study, no pruner and no time budget:

  wide   eps0 and init_scale as ranges a user writes without probes: the specs' own ranges before
         `"auto"` became their default (WIDE_EPS0 below; init_scale 0.25 .. 4 per layer, log), every other
         key of the spec unchanged;
  auto   eps0 = "auto" and init_scale = "auto": the probes run (their wall time is measured), the ranges
         are anchored on their results (`tuner.study.autos`) and the probes' picks are queued first
         (`tuner.study.warm_start`).

Reported per spec: the best value after 1, 5, 10, 20 and 40 trials (mean ± standard error over seeds),
the trials auto needs to reach wide's 40-trial best (per seed and median), the probes' time as a share of
the auto study's training time (the sum of its trials' durations), the probe plan (sweeps and steps per
optimizer) and the diverged (pruned) trials.

    OPENBLAS_NUM_THREADS=1 nice -n 5 python bench/heuristic_vs_search.py studies/deep-tanh.toml --seeds 5
    python bench/heuristic_vs_search.py studies/mnist1d-mlp.toml --epochs 30 --json mnist1d.json
    python bench/heuristic_vs_search.py --summarise deep-tanh.json mnist1d.json     # tables from saved runs
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import threadpoolctl

from tuner.nn.data import Dataset
from tuner.study.autos import resolve_spec_autos
from tuner.study.data import load_study_data
from tuner.study.objective import make_objective
from tuner.study.params import AUTO, PerLayer, Range
from tuner.study.space import make_sampler
from tuner.study.spec import StudySpec, load_spec
from tuner.study.warm_start import warm_start_trials

WIDE_EPS0 = {"digits-mlp": (1e-4, 1.0), "mnist1d-mlp": (1e-4, 0.5), "deep-tanh": (1e-4, 0.3)}  # the specs' ranges
DEFAULT_WIDE_EPS0 = (1e-4, 1.0)
WIDE_INIT = (0.25, 4.0)  # every layer's init_scale in the wide arm (log)
CHECKPOINTS = (1, 5, 10, 20, 40)


def bench_spec(base: StudySpec, seed: int, args: argparse.Namespace) -> StudySpec:
    """The spec with the study's seed set, no pruner, no time budget, and the epochs override."""
    study = base.study.model_copy(update={"seed": seed, "pruner": "none", "time_budget": None,
                                          "n_trials": args.trials})  # the probe budget follows the study size
    update = {"study": study}
    if args.epochs is not None:
        update["train"] = base.train.model_copy(update={"epochs": args.epochs})
    return base.model_copy(update=update)


def with_search(spec: StudySpec, **values: object) -> StudySpec:
    return spec.model_copy(update={"search": spec.search.model_copy(update=values)})


def run_study(spec: StudySpec, data: Dataset, n_trials: int, queued: list[tuple[dict, dict]]) -> list[dict]:
    """Each trial's value (NaN when pruned: diverged), duration and parameters, in order."""
    study = optuna.create_study(direction=spec.study.direction, sampler=make_sampler(spec),
                                pruner=optuna.pruners.NopPruner())
    for params, user_attrs in queued:
        study.enqueue_trial(params, user_attrs=user_attrs)
    study.optimize(make_objective(spec, data), n_trials=n_trials, catch=())
    return [
        {
            "value": t.value if t.state == optuna.trial.TrialState.COMPLETE else math.nan,
            "seconds": (t.datetime_complete - t.datetime_start).total_seconds(),
            "config": t.user_attrs.get("config"),
        }
        for t in study.trials
    ]


def run_seed(base: StudySpec, seed: int, args: argparse.Namespace) -> dict:
    spec = bench_spec(base, seed, args)
    data = load_study_data(spec)
    low, high = WIDE_EPS0.get(base.study.name, DEFAULT_WIDE_EPS0)
    init = PerLayer(tuple(Range(args.wide_init[0], args.wide_init[1], log=True) for _ in range(spec.model.n_layers)))
    wide = run_study(with_search(spec, eps0=Range(low, high, log=True), init_scale=init), data, args.trials, [])
    started = time.perf_counter()
    resolved, init_rec, lr_rec = resolve_spec_autos(with_search(spec, eps0=AUTO, init_scale=AUTO), data)
    probe_seconds = time.perf_counter() - started
    auto = run_study(resolved, data, args.trials, warm_start_trials(resolved, init_rec, lr_rec))
    return {
        "seed": seed, "wide": wide, "auto": auto, "probe_seconds": probe_seconds,
        "plan": [lr_rec["steps"], lr_rec["budget"]],
        "sweeps": {o: [r["repeats"], r["steps_run"]] for o, r in lr_rec["optimizers"].items()},
        "guess": init_rec["multipliers"],
        "suggestions": {o: r["suggestion"] for o, r in lr_rec["optimizers"].items()},
        "edges": {o: r["edge"] for o, r in lr_rec["optimizers"].items()},
    }


def best_after(values: list[float], k: int, maximize: bool) -> float:
    finite = [v for v in values[:k] if math.isfinite(v)]
    return (max(finite) if maximize else min(finite)) if finite else math.nan


def trials_to_reach(values: list[float], target: float, maximize: bool) -> int | None:
    for k in range(1, len(values) + 1):
        best = best_after(values, k, maximize)
        if math.isfinite(best) and (best >= target if maximize else best <= target):
            return k
    return None


def mean_se(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return math.nan, math.nan
    return statistics.mean(xs), (statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0)


def sweeps_line(runs: list[dict]) -> str:
    """The probes' sweeps per optimizer over the seeds (runs saved before sweeps were recorded: the plan)."""
    if "sweeps" not in runs[0]:
        return f"{runs[0]['plan'][0]} sweep(s) x {runs[0]['plan'][1]} steps per optimizer"
    per = {o: [r["sweeps"][o] for r in runs] for o in runs[0]["sweeps"]}
    return "sweeps (steps) per optimizer: " + ", ".join(
        f"{o} {min(n for n, _ in v)}-{max(n for n, _ in v)} ({round(statistics.mean(k for _, k in v))})"
        for o, v in per.items())


def summarise(result: dict) -> str:
    maximize, runs, n = result["maximize"], result["runs"], result["trials"]
    values = {arm: [[t["value"] for t in r[arm]] for r in runs] for arm in ("wide", "auto")}
    lines = [
        f"### {result['study']} ({result['objective']}, {result['epochs']} epochs, {len(runs)} seeds, {n} trials)",
        "",
        "| trials | wide | auto | auto − wide (± SE of the difference) |",
        "| ---: | --- | --- | --- |",
    ]
    sign = 1 if maximize else -1
    for k in (c for c in CHECKPOINTS if c <= n):
        w = [best_after(v, k, maximize) for v in values["wide"]]
        a = [best_after(v, k, maximize) for v in values["auto"]]
        (wm, ws), (am, as_) = mean_se(w), mean_se(a)
        diff = mean_se([x - y for x, y in zip(a, w, strict=True)])
        verdict = "better" if sign * diff[0] > diff[1] else "worse" if sign * diff[0] < -diff[1] else "within 1 SE"
        lines.append(f"| {k} | {wm:.4f} ± {ws:.4f} | {am:.4f} ± {as_:.4f} | {diff[0]:+.4f} ± {diff[1]:.4f} ({verdict}) |")
    reach = [trials_to_reach(a, best_after(w, n, maximize), maximize) for w, a in zip(values["wide"], values["auto"],
                                                                                     strict=True)]
    shown = [str(r) if r is not None else f">{n}" for r in reach]
    median = statistics.median([r if r is not None else n + 1 for r in reach])
    shares = [r["probe_seconds"] / sum(t["seconds"] for t in r["auto"]) for r in runs]
    diverged = {arm: sum(not math.isfinite(v) for vs in values[arm] for v in vs) for arm in values}
    lines += [
        "",
        f"- trials auto needs to reach wide's {n}-trial best, per seed: {', '.join(shown)} "
        f"(median {median if median <= n else f'>{n}'})",
        f"- probes: {100 * statistics.mean(shares):.2f}% of the auto study's training time (mean; max "
        f"{100 * max(shares):.2f}%), {sweeps_line(runs)}",
        f"- diverged (pruned) trials: wide {diverged['wide']}, auto {diverged['auto']} of {n * len(runs)}",
        "- the probes' picks (trial 1 of auto): " + ", ".join(f"{v[0]:.4f}" for v in values["auto"]),
        "- suggested eps0 per seed: " + "; ".join(
            ", ".join(f"{o} {s:.3g}" for o, s in r["suggestions"].items()) for r in runs),
    ]
    return "\n".join(lines)


def blas() -> str:
    info = [(i.get("internal_api"), i.get("version"), i.get("architecture"), i.get("num_threads"))
            for i in threadpoolctl.threadpool_info()]
    return "; ".join(f"{api} {version} {arch}, {threads} thread(s)" for api, version, arch, threads in info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", default=["studies/deep-tanh.toml"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs (default: the spec's)")
    parser.add_argument("--wide-init", type=float, nargs=2, default=WIDE_INIT, metavar=("LOW", "HIGH"))
    parser.add_argument("--json", type=Path, default=None, help="write every trial here")
    parser.add_argument("--summarise", type=Path, nargs="*", default=None, help="print tables from saved JSON")
    args = parser.parse_args()
    if args.summarise:
        for path in args.summarise:
            for result in json.loads(path.read_text())["results"]:
                print(summarise(result), end="\n\n")
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", UserWarning)  # a queued value outside a range is clipped, and says so
    results = []
    for path in args.specs:
        base = load_spec(path)
        runs = []
        for seed in range(args.seeds):
            runs.append(run_seed(base, seed, args))
            print(f"{base.study.name} seed {seed} done", flush=True)
        results.append({"spec": path, "study": base.study.name, "objective": base.study.objective,
                        "maximize": base.study.direction == "maximize", "trials": args.trials,
                        "epochs": args.epochs or base.train.epochs, "runs": runs})
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "blas": blas(),
                                         "results": results}))
    print(f"BLAS: {blas()}")
    for result in results:
        print(summarise(result), end="\n\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
