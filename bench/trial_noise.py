"""How much of a trial's value is its training seed? The best trials of a `heuristic_vs_search.py` run
trained again at other seeds.

A trial's value is one draw: the same configuration trained from another seed (its weights' draw, the
minibatch order) scores differently, and on a small validation set (digits: 359 examples, one example is
0.0028) the spread can be wider than the gaps the benchmark's targets are read off. For each seed of a
saved run (`heuristic_vs_search.py --json`) this takes

  wide@N   the wide arm's best trial of its N trials (the target "auto reaches wide's N-trial best");
  wide@K   the wide arm's best of its first K trials;
  auto@K   the auto arm's best of its first K trials (what auto had when the target asked for it);

queues each configuration R times in a fresh in-memory study on the same spec, data split and ranges as
the arm that ran it (the auto arm's probes run again: they are seeded, so the ranges come out the same),
so trial numbers 0 .. R-1 give R training seeds (`tuner.study.objective.training_seed`), and reports the
stored value against the mean, standard deviation and range of the R values, and the share of those draws
at or above the wide arm's stored best.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=bench:. python bench/heuristic_vs_search.py studies/deep-tanh.toml --json tanh.json
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=bench:. python bench/trial_noise.py tanh.json --repeats 16 --at 15
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
from heuristic_vs_search import (
    DEFAULT_WIDE_EPS0,
    WIDE_EPS0,
    bench_spec,
    blas,
    with_search,
)

from tuner.study.autos import resolve_spec_autos
from tuner.study.data import load_study_data
from tuner.study.objective import make_objective
from tuner.study.params import AUTO, PerLayer, Range
from tuner.study.space import make_sampler
from tuner.study.spec import StudySpec, load_spec

DERIVED = ("eps_tau", "eps_tau_ratio", "tau_fraction", "init", "seed", "blas_threads")  # the config's, not searched


def retrain(spec: StudySpec, data, config: dict, repeats: int) -> list[float]:
    """The configuration's value at training seeds 0 .. repeats-1 of `spec`'s study seed."""
    params = {k: v for k, v in config.items() if k not in DERIVED}
    if "eps0_factor" in params:
        params.pop("eps0")  # an anchored eps0 is searched as its factor
    study = optuna.create_study(direction=spec.study.direction, sampler=make_sampler(spec),
                                pruner=optuna.pruners.NopPruner())
    for _ in range(repeats):
        study.enqueue_trial(params)
    study.optimize(make_objective(spec, data), n_trials=repeats, catch=())
    return [t.value if t.state == optuna.trial.TrialState.COMPLETE else math.nan for t in study.trials]


def best_index(trials: list[dict], k: int, maximize: bool) -> int:
    values = [t["value"] if math.isfinite(t["value"]) else (-math.inf if maximize else math.inf) for t in trials[:k]]
    return int(np.argmax(values) if maximize else np.argmin(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="a heuristic_vs_search.py --json file")
    parser.add_argument("--repeats", type=int, default=16, help="training seeds per configuration")
    parser.add_argument("--at", type=int, default=15, help="auto's best of its first AT trials")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", UserWarning)
    saved = json.loads(args.runs.read_text())
    print(f"BLAS: {blas()}")
    for result in saved["results"]:
        base, maximize = load_spec(result["spec"]), result["maximize"]
        n = result["trials"]
        bench_args = argparse.Namespace(trials=n, epochs=result["epochs"])
        print(f"\n### {result['study']}: the best trials trained again at {args.repeats} seeds\n")
        print("| seed | trial | stored | mean ± sd of the retrained | min – max | at or above wide's stored best |")
        print("| ---: | --- | ---: | --- | --- | ---: |")
        for run in result["runs"]:
            spec = bench_spec(base, run["seed"], bench_args)
            data = load_study_data(spec)
            low, high = WIDE_EPS0.get(base.study.name, DEFAULT_WIDE_EPS0)
            w_low, w_high = (float(x) for x in saved["args"]["wide_init"].strip("[]()").split(","))
            init = PerLayer(tuple(Range(w_low, w_high, log=True) for _ in range(spec.model.n_layers)))
            wide_spec = with_search(spec, eps0=Range(low, high, log=True), init_scale=init)
            auto_spec, _, _ = resolve_spec_autos(with_search(spec, eps0=AUTO, init_scale=AUTO), data)
            target = None
            for arm, arm_spec, k in (("wide", wide_spec, n), ("wide", wide_spec, args.at), ("auto", auto_spec, args.at)):
                i = best_index(run[arm], k, maximize)
                stored = run[arm][i]["value"]
                target = stored if target is None else target
                values = [v for v in retrain(arm_spec, data, run[arm][i]["config"], args.repeats) if math.isfinite(v)]
                above = sum((v >= target) if maximize else (v <= target) for v in values)
                print(f"| {run['seed']} | {arm}@{k}: #{i + 1} | {stored:.4f} | {statistics.mean(values):.4f} ± "
                      f"{statistics.stdev(values):.4f} | {min(values):.4f} – {max(values):.4f} | "
                      f"{above}/{len(values)} |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
