"""How much does the learning-rate probe's suggestion move between study seeds?

For each spec, the probe exactly as `study create` runs it with `"auto"` (the init-scale guess, then
`tuner.study.autos.lr_record`: the spec's budget of sweeps and steps), once per study seed 0 .. N-1, in
two settings:

  data varies   the data generated and split with the study seed, as the shipped specs do (their
                `[data]` has no seed): every seed is another draw of the dataset and another split;
  data fixed    `data.seed = 0`: one dataset and split, the study seed moves only the networks, the
                minibatches and the probes' sweeps. This is the probe's own noise.

Per optimizer: the geometric mean of the suggested eps0 over the seeds, its spread max/min, the sweeps
run (min-max over seeds) and their steps (mean), and the probes' wall time per seed.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python bench/lr_stability.py studies/deep-relu.toml --epochs 30
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python bench/lr_stability.py studies/regression.toml --seeds 5
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python bench/lr_stability.py studies/regression.toml --draws 1

After the table, the init-scale guess's own spread over the seeds, per layer (`--draws`: the networks it
averages over; the product's default, or 1 for one network as before b5f0073).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import numpy as np
from machine import blas_summary

from tuner.study.autos import GUESS_DRAWS, guess_record, lr_record
from tuner.study.data import load_study_data
from tuner.study.spec import StudySpec, load_spec


def with_seeds(spec: StudySpec, seed: int, data_seed: int | None, epochs: int | None) -> StudySpec:
    update = {"study": spec.study.model_copy(update={"seed": seed}),
              "data": spec.data.model_copy(update={"seed": data_seed})}
    if epochs is not None:
        update["train"] = spec.train.model_copy(update={"epochs": epochs})
    return spec.model_copy(update=update)


def run(base: StudySpec, seeds: int, data_seed: int | None, epochs: int | None,
        draws: int) -> tuple[dict, list[float], np.ndarray]:
    """{optimizer: [(suggestion, sweeps, steps) per seed]}, the probes' seconds per seed, and the init-scale
    guess per seed (seeds x layers)."""
    rows: dict[str, list[tuple[float, int, int]]] = {}
    seconds, guesses = [], []
    for seed in range(seeds):
        spec = with_seeds(base, seed, data_seed, epochs)
        data = load_study_data(spec)
        started = time.perf_counter()
        scales = tuple(guess_record(spec, data, draws=draws)["multipliers"])
        record = lr_record(spec, data, scales=scales)
        seconds.append(time.perf_counter() - started)
        guesses.append(scales)
        for name, r in record["optimizers"].items():
            rows.setdefault(name, []).append((r["suggestion"], r["repeats"], r["steps_run"]))
    return rows, seconds, np.array(guesses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs (the probes' budget follows)")
    parser.add_argument("--draws", type=int, default=GUESS_DRAWS,
                        help="networks the init-scale guess averages over (1: one network, as before b5f0073)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    print(blas_summary())
    print("| spec | data | optimizer | suggested eps0 (geo. mean) | spread max/min | sweeps | steps | probe s/seed |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    guess_lines = []
    for path in args.specs:
        base = load_spec(path)
        for label, data_seed in (("varies", None), ("fixed", 0)):
            rows, seconds, guesses = run(base, args.seeds, data_seed, args.epochs, args.draws)
            spread = ", ".join(f"x{v:.2f}" for v in guesses.max(axis=0) / guesses.min(axis=0))
            guess_lines.append(f"- {base.study.name}, data {label}: the guess's spread over the seeds per layer "
                               f"(draws: {args.draws}): {spread}; output layer {guesses[:, -1].min():.3g} .. "
                               f"{guesses[:, -1].max():.3g}")
            for name, values in rows.items():
                s = np.array([v[0] for v in values])
                sweeps = [v[1] for v in values]
                print(f"| {base.study.name} | {label} | {name} | {math.exp(np.log(s).mean()):.3g} "
                      f"| x{s.max() / s.min():.2f} | {min(sweeps)}-{max(sweeps)} "
                      f"| {statistics.mean(v[2] for v in values):.0f} "
                      f"| {statistics.mean(seconds):.2f} |", flush=True)
    print()
    print("\n".join(guess_lines))


if __name__ == "__main__":
    main()
