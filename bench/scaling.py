"""Trials per minute of 1 and 2 worker processes on one PostgreSQL study (`tuner worker --jobs J`).

Each run gets a fresh database and the same spec (digits, a 64-128-10 net, 10 epochs: CPU-bound trials
of about a fifth of a second), runs `tuner worker NAME --jobs J --timeout SECONDS` as a real command, and
counts the trials that finished inside the window. `--jobs J` gives each process cores/J BLAS threads.

    python bench/scaling.py --seconds 60
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy

from tuner.storage import make_engine, trial_state_counts

SPEC = """
[study]
name = "scaling"
objective = "val_accuracy"
n_trials = 100000
seed = 0
sampler = "random"
pruner = "none"

[data]
source = "digits"

[model]
hidden = [128]
activation = "relu"

[train]
epochs = 10
batch_size = 64

[search]
optimizer = ["momentum", "adam"]
eps0 = { low = 1e-3, high = 0.1, log = true }
alpha = 0.9
init = "he"
init_scale = { low = 0.5, high = 2.0, log = true }
"""

ADMIN = "postgresql+psycopg://postgres@127.0.0.1/postgres"


def fresh_database() -> tuple[str, str]:
    name = f"tuner_scaling_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, f"postgresql+psycopg://postgres@127.0.0.1/{name}"


def drop_database(name: str) -> None:
    admin = sqlalchemy.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def trials_per_minute(jobs: int, seconds: float, spec: Path) -> float:
    name, url = fresh_database()
    try:
        env = dict(os.environ, TUNER_STORAGE=url)
        tuner = [sys.executable, "-m", "tuner"]
        subprocess.run([*tuner, "study", "create", str(spec), "--quiet"], env=env, check=True)
        started = time.monotonic()
        subprocess.run([*tuner, "worker", "scaling", "--jobs", str(jobs), "--timeout", str(seconds), "--quiet"],
                       env=env, check=True)
        elapsed = time.monotonic() - started
        counts = trial_state_counts(make_engine(url), "scaling")
        finished = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        return 60.0 * finished / elapsed
    finally:
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "scaling.toml"
        spec.write_text(SPEC)
        one = trials_per_minute(1, args.seconds, spec)
        two = trials_per_minute(2, args.seconds, spec)
    print(f"{os.cpu_count()} cores, {args.seconds:g} s per run, PostgreSQL")
    print(f"1 worker process : {one:7.1f} trials/min")
    print(f"2 worker processes: {two:7.1f} trials/min  ({two / one:.2f}x)")


if __name__ == "__main__":
    main()
