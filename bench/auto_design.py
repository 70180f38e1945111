"""Auto as an anchor: which search space around the probes' results? The alternatives measured before
`tuner.study.autos` was settled.

Each arm runs N trials of TPE as in the spec (seeded with the study seed, no pruner, no time budget) in an
in-memory study; the objective is the real one (`make_objective`) on the absolute values a trial maps to:

  wide  eps0 and init_scale_i as the spec searches them (no probe)
  A1    eps0 = suggestion[optimizer] x eps0_factor, factor in 0.1 .. 10; init_scale_i in guess_i/4 .. guess_i*4
        (every layer, the output too)
  A2    the same eps0; two init parameters instead of one per layer: init_scale_hidden in 1/4 .. 4 times
        every hidden layer's guess, init_scale_output in 1/10 .. 10 times the output layer's
  A4    A2 with eps0_factor in 1/30 .. 10

The probes: the init-scale guess on one batch, and each optimizer's learning-rate probe with the budget
`tuner.study.autos.probe_plan` gives it. Arms A1/A2/A4 queue one trial first: the spec's first optimizer at
the guess with factor 1 (its other hyperparameters sampled).

    OPENBLAS_NUM_THREADS=1 nice -n 5 python bench/auto_design.py studies/deep-tanh.toml A1 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
import optuna
from heuristic_vs_search import DEFAULT_WIDE_EPS0, WIDE_EPS0, WIDE_INIT

from tuner.nn.data import Dataset
from tuner.optim import HYPERPARAMETERS
from tuner.probe.lr import lr_probe
from tuner.study.autos import guess_record, optimizer_hparams, probe_model, probe_plan
from tuner.study.data import load_study_data
from tuner.study.objective import make_objective
from tuner.study.params import PerLayer, Range
from tuner.study.space import make_sampler
from tuner.study.spec import OPTIONAL_HPARAMS, StudySpec, load_spec

FACTORS = {"A1": (0.1, 10.0), "A2": (0.1, 10.0), "A4": (1 / 30, 10.0)}


def probes(spec: StudySpec, data: Dataset) -> tuple[list[float], dict[str, float]]:
    guess = guess_record(spec, data)["multipliers"]
    repeats, steps, budget = probe_plan(spec, data)
    suggestions = {}
    for i, name in enumerate(spec.search.optimizers):
        result = lr_probe(lambda g: probe_model(spec, data, tuple(guess), g), name, data,
                          hparams=optimizer_hparams(spec, name), steps=steps, repeats=repeats,
                          budget=budget, batch_size=spec.train.batch_size,
                          rng=np.random.default_rng([spec.study.seed, i]))
        suggestions[name] = result.suggestion
    return guess, suggestions


def suggest_arm(trial: optuna.Trial, spec: StudySpec, arm: str, guess: list[float], suggestions: dict) -> dict:
    """The absolute parameters of one trial of `arm`."""
    search, n_layers = spec.search, spec.model.n_layers
    optimizers = search.optimizers
    p = {"optimizer": trial.suggest_categorical("optimizer", list(optimizers)) if len(optimizers) > 1 else optimizers[0]}
    for name in OPTIONAL_HPARAMS:
        param = getattr(search, name)
        if param is not None and name in HYPERPARAMETERS[p["optimizer"]]:
            p[name] = trial.suggest_float(name, param.low, param.high, log=param.log) if isinstance(param, Range) else param.value
    if arm == "wide":  # the spec's ranges, or where it says "auto" the ranges the shipped specs had before
        eps0 = search.eps0 if isinstance(search.eps0, Range) else Range(*WIDE_EPS0.get(spec.study.name, DEFAULT_WIDE_EPS0))
        scale = search.init_scale if isinstance(search.init_scale, Range) else Range(*WIDE_INIT, log=True)
        p["eps0"] = trial.suggest_float("eps0", eps0.low, eps0.high, log=True)
        for i in range(n_layers):
            p[f"init_scale_{i}"] = trial.suggest_float(f"init_scale_{i}", scale.low, scale.high, log=True)
        return p
    p["eps0"] = suggestions[p["optimizer"]] * trial.suggest_float("eps0_factor", *FACTORS[arm], log=True)
    if arm == "A1":
        for i in range(n_layers):
            p[f"init_scale_{i}"] = trial.suggest_float(f"init_scale_{i}", guess[i] / 4, guess[i] * 4, log=True)
        return p
    hidden = trial.suggest_float("init_scale_hidden", 0.25, 4.0, log=True)
    output = trial.suggest_float("init_scale_output", 0.1, 10.0, log=True)
    p.update({f"init_scale_{i}": guess[i] * (output if i == n_layers - 1 else hidden) for i in range(n_layers)})
    return p


def run(path: str, arm: str, seed: int, trials: int, epochs: int | None) -> list[float]:
    base = load_spec(path)
    study_section = base.study.model_copy(update={"seed": seed, "pruner": "none", "time_budget": None})
    spec = base.model_copy(update={"study": study_section,
                                   "train": base.train.model_copy(update={"epochs": epochs or base.train.epochs})})
    data = load_study_data(spec)
    any_value = spec.search.model_copy(update={
        "eps0": Range(1e-9, 1e3, log=True),
        "init_scale": PerLayer(tuple(Range(1e-6, 1e6, log=True) for _ in range(spec.model.n_layers)))})
    objective = make_objective(spec.model_copy(update={"search": any_value}), data)
    guess, suggestions = probes(spec, data) if arm != "wide" else ([], {})

    def trial_value(trial: optuna.Trial) -> float:
        return objective(optuna.trial.FixedTrial(suggest_arm(trial, spec, arm, guess, suggestions), number=trial.number))

    study = optuna.create_study(direction=spec.study.direction, sampler=make_sampler(spec))
    if arm != "wide":
        first = {"optimizer": spec.search.optimizers[0], "eps0_factor": 1.0}
        if arm == "A1":
            first.update({f"init_scale_{i}": g for i, g in enumerate(guess)})
        else:
            first.update({"init_scale_hidden": 1.0, "init_scale_output": 1.0})
        study.enqueue_trial(first)
    study.optimize(trial_value, n_trials=trials)
    return [t.value if t.state == optuna.trial.TrialState.COMPLETE else math.nan for t in study.trials]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec")
    parser.add_argument("arm", choices=["wide", "A1", "A2", "A4"])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", UserWarning)
    maximize = load_spec(args.spec).study.direction == "maximize"
    for seed in (int(s) for s in args.seeds.split(",")):
        values = run(args.spec, args.arm, seed, args.trials, args.epochs)
        best = [(np.nanmax if maximize else np.nanmin)(values[:k]) for k in (1, 5, 10, 20, len(values))]
        print(f"{args.spec} {args.arm} seed {seed}: " + " ".join(f"@{k} {b:.4f}" for k, b in
                                                                  zip((1, 5, 10, 20, len(values)), best)), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
