"""Time per trial outside training: `tuner`'s worker loop against plain Optuna, side by side.

Both run the same tiny network on the same data with the same search space and the same number of
`trial.report` calls (one per epoch), on the same kind of storage (a fresh SQLite file, or a fresh
PostgreSQL database). Plain Optuna runs `study.optimize` on an `RDBStorage` with the same heartbeat
settings as tuner's workers (and once without heartbeats, Optuna's default). The time per trial is the
span from the first trial's start to the last trial's end divided by the trials, minus the training time
measured inside each trial; what is left is sampling, storage and reporting.

    python bench/overhead.py --storage sqlite --trials 60 --rounds 5
    python bench/overhead.py --storage postgresql --trials 60 --rounds 5
    python bench/overhead.py --storage sqlite --baseline /path/to/another/checkout   # tuner vs tuner

Each run is a fresh process (one BLAS thread) on a fresh storage; the contenders alternate in rotated order
for `--rounds` rounds, and the medians with their min and max are reported; the ratio to plain Optuna is
taken within each round (same load), then its median, min and max. Plain Optuna runs with heartbeats,
as tuner's workers do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import optuna
from scratch_db import create_database, drop_database

from tuner.nn.data import load_dataset
from tuner.nn.mlp import MLP
from tuner.nn.train import train
from tuner.optim import make
from tuner.storage import load_curves, make_engine
from tuner.study.create import create_study
from tuner.study.spec import parse_spec
from tuner.study.worker import run_worker

SPEC = """
[study]
name = "{name}"
objective = "val_accuracy"
n_trials = {trials}
seed = 0
sampler = "tpe"
pruner = "median"

[data]
source = "synthetic_classification"

[model]
hidden = [8]
activation = "relu"

[train]
epochs = {epochs}
batch_size = 256

[search]
optimizer = ["sgd", "momentum", "adam"]
eps0 = {{ low = 1e-3, high = 0.1, log = true }}
alpha = {{ low = 0.5, high = 0.99 }}
init = "he"
init_scale = {{ low = 0.5, high = 2.0, log = true }}
"""


def fresh_url(kind: str, workdir: Path) -> str:
    """The URL of an empty storage: a new SQLite file, or a new PostgreSQL database (`drop_database` it)."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / (uuid.uuid4().hex + '.db')}"
    return create_database("tuner_bench")


def span_per_trial(trials: list[optuna.trial.FrozenTrial]) -> float:
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return (end - start).total_seconds() / len(trials)


def run_tuner(url: str, trials: int, epochs: int) -> tuple[float, float]:
    spec = parse_spec(SPEC.format(name="overhead", trials=trials, epochs=epochs))
    create_study(url, spec)
    run_worker(url, "overhead", heartbeat_interval=10, grace_period=60)
    done = optuna.load_study(study_name="overhead", storage=url).get_trials(deepcopy=False)
    training = sum(r["seconds"] for r in load_curves(make_engine(url), "overhead")) / len(done)
    return span_per_trial(done), training


def run_plain(url: str, trials: int, epochs: int, *, heartbeat: bool) -> tuple[float, float]:
    data = load_dataset("synthetic_classification", seed=0)
    # Optuna's own storage as a user of plain Optuna builds it (its defaults: SQLite's FULL sync, its pool),
    # with the heartbeat settings of tuner's workers.
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=10 if heartbeat else None,
                                         grace_period=60 if heartbeat else None)
    study = optuna.create_study(
        study_name="plain", storage=storage, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0, multivariate=True, group=True, n_startup_trials=10),
        pruner=optuna.pruners.MedianPruner(),
    )
    training: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("optimizer", ["sgd", "momentum", "adam"])
        eps0 = trial.suggest_float("eps0", 1e-3, 0.1, log=True)
        extra = {"alpha": trial.suggest_float("alpha", 0.5, 0.99)} if name == "momentum" else {}
        scales = [trial.suggest_float(f"init_scale_{i}", 0.5, 2.0, log=True) for i in range(2)]
        rng = np.random.default_rng(trial.number)
        t0 = time.perf_counter()
        model = MLP([data.n_features, 8, data.n_outputs], "relu", init="he", init_scale=scales, rng=rng)
        history = []

        reporting = 0.0

        def on_epoch(record):  # noqa: ANN001, ANN202
            nonlocal reporting
            r0 = time.perf_counter()
            history.append(record.val_accuracy)
            trial.report(record.val_accuracy, record.epoch)
            trial.should_prune()
            reporting += time.perf_counter() - r0

        train(model, make(name, eps0=eps0, **extra), data, epochs, 256, rng, on_epoch)
        training.append(time.perf_counter() - t0 - reporting)
        return max(history)

    study.optimize(objective, n_trials=trials)
    return span_per_trial(study.get_trials(deepcopy=False)), sum(training) / len(training)


CONTENDERS = ("tuner", "optuna")


def run_one(name: str, storage: str, trials: int, epochs: int) -> dict:
    """One contender on a fresh storage, in this process: per-trial span, training and overhead (s)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_url(storage, Path(tmp))
        try:
            if name == "tuner":
                span, training = run_tuner(url, trials, epochs)
            else:
                span, training = run_plain(url, trials, epochs, heartbeat=True)
        finally:
            if storage == "postgresql":
                drop_database(url)
    return {"span": span, "training": training, "overhead": span - training}


def interleaved(args: argparse.Namespace) -> None:
    """Rounds of every contender, each in a fresh process, the order rotated every round."""
    jobs = [("tuner", None), ("optuna", None)]
    if args.baseline:
        jobs.insert(1, ("tuner", args.baseline))
    results: dict[str, list[float]] = {}
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    for r in range(args.rounds):
        for name, path in jobs[r % len(jobs):] + jobs[: r % len(jobs)]:
            env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
            if path:
                env["PYTHONPATH"] = path
            out = subprocess.run([sys.executable, __file__, "--one", name, "--storage", args.storage, "--trials",
                                  str(args.trials), "--epochs", str(args.epochs)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            label = name if not path else f"tuner @ {path}"
            results.setdefault(label, []).append(json.loads(out.splitlines()[-1])["overhead"])
            print(f"round {r + 1}: {label}: {results[label][-1] * 1e3:.1f} ms/trial", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"storage {args.storage}, {args.trials} trials x {args.epochs} reports, {args.rounds} rounds")
    for label, values in results.items():
        med = statistics.median(values)
        # Round by round: a burst of load from other processes hits the contenders of one round alike.
        ratios = [v / o for v, o in zip(values, results["optuna"], strict=True)]
        print(f"{label:40} overhead/trial median {med * 1e3:6.1f} ms (min {min(values) * 1e3:.1f}, "
              f"max {max(values) * 1e3:.1f})  ratio to plain Optuna, per round: median "
              f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="PATH", help="also time the tuner found on this PYTHONPATH")
    parser.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.storage, args.trials, args.epochs)))
    else:
        interleaved(args)


if __name__ == "__main__":
    main()
