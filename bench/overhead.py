"""Time per trial outside training: `tuner`'s worker loop against plain Optuna, side by side.

Both run the same tiny network on the same data with the same search space and the same number of
`trial.report` calls (one per epoch), on the same kind of storage (a fresh SQLite file, or a fresh
PostgreSQL database). Plain Optuna runs `study.optimize` on an `RDBStorage` with the same heartbeat
settings as tuner's workers (and once without heartbeats, Optuna's default). The time per trial is the
span from the first trial's start to the last trial's end divided by the trials, minus the training time
measured inside each trial; what is left is sampling, storage and reporting.

    python bench/overhead.py --storage sqlite --trials 60
    python bench/overhead.py --storage postgresql --trials 60
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy

from tuner.nn.data import load_dataset
from tuner.nn.mlp import MLP
from tuner.nn.train import train
from tuner.optim import make
from tuner.storage import load_curves, make_engine, optuna_storage
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
    if kind == "sqlite":
        return f"sqlite:///{workdir / (uuid.uuid4().hex + '.db')}"
    name = f"tuner_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine("postgresql+psycopg://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1/{name}"


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
    storage = (
        optuna_storage(url, heartbeat_interval=10, grace_period=60) if heartbeat else optuna.storages.RDBStorage(url)
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for label, runner in (
            ("tuner worker", lambda url: run_tuner(url, args.trials, args.epochs)),
            ("optuna, heartbeats", lambda url: run_plain(url, args.trials, args.epochs, heartbeat=True)),
            ("optuna, no heartbeats", lambda url: run_plain(url, args.trials, args.epochs, heartbeat=False)),
        ):
            span, training = runner(fresh_url(args.storage, Path(tmp)))
            rows.append((label, span, training, span - training))
    base = rows[1][3]
    print(f"storage {args.storage}, {args.trials} trials x {args.epochs} reports")
    print(f"{'':24} {'per trial':>10} {'training':>10} {'overhead':>10} {'ratio':>7}")
    for label, span, training, overhead in rows:
        print(f"{label:24} {span * 1e3:8.1f}ms {training * 1e3:8.1f}ms {overhead * 1e3:8.1f}ms {overhead / base:7.2f}")


if __name__ == "__main__":
    main()
