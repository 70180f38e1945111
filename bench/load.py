"""Load: many worker processes completing many short trials of one study, on PostgreSQL and on SQLite.

PostgreSQL: W worker processes (default 8) complete N trials (default 1,000) of a tiny spec. Checks: exactly N
COMPLETE, no duplicated trial number, a full curve (one row per epoch) for every COMPLETE trial; samples
`pg_stat_activity` every 0.2 s for the peak connection count of the study's database and compares it with
`max_connections`.
SQLite: `tuner worker NAME --jobs J` on one file; checks zero "database is locked" in stderr and in the FAIL
trials' reasons.

    python bench/load.py                                  # 8 x 1000 on PostgreSQL, 2 x 200 on SQLite
    python bench/load.py --workers 4 --trials 60 --sqlite-jobs 2 --sqlite-trials 40   # the test's size

The PostgreSQL server is TUNER_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres); a
fresh database is created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.pool import NullPool

PG_SERVER = os.environ.get("TUNER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
EPOCHS = 2

SPEC = """[study]
name = "{name}"
objective = "val_accuracy"
n_trials = {n_trials}
seed = 1
sampler = "random"
pruner = "none"

[data]
source = "synthetic_classification"

[model]
hidden = [8]

[train]
epochs = {epochs}
batch_size = 64

[search]
optimizer = ["sgd", "momentum", "adam"]
eps0 = {{ low = 1e-3, high = 0.1, log = true }}
"""


@dataclass
class LoadResult:
    backend: str
    workers: int
    trials: int
    seconds: float
    trials_per_s: float
    exit_codes: list[int]
    counts: dict[str, int]
    duplicated_numbers: int
    trials_without_full_curve: int
    locked_errors: int
    peak_connections: int | None = None
    max_connections: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _tuner(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuner", *args]


def _env(url: str) -> dict[str, str]:
    threads = "1"
    return dict(os.environ, TUNER_STORAGE=url, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                MKL_NUM_THREADS=threads)


def _check(url: str, name: str, n_trials: int, result: LoadResult, stderr_text: str) -> None:
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    result.duplicated_numbers = len(numbers) - len(set(numbers))
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    result.counts = counts
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        rows = dict(connection.execute(sqlalchemy.text(
            "SELECT c.trial_number, count(*) FROM tuner_curves c JOIN tuner_studies s ON s.id = c.study_id "
            "WHERE s.name = :n GROUP BY c.trial_number"),
            {"n": name}).all())
    engine.dispose()
    result.trials_without_full_curve = sum(
        1 for t in trials if t.state == optuna.trial.TrialState.COMPLETE and rows.get(t.number) != EPOCHS)
    reasons = " ".join(str(t.user_attrs.get("reason", "")) for t in trials if t.state == optuna.trial.TrialState.FAIL)
    result.locked_errors = (stderr_text + reasons).count("database is locked")
    if counts.get("COMPLETE", 0) != n_trials:
        result.problems.append(f"COMPLETE {counts.get('COMPLETE', 0)} != {n_trials}")
    if result.duplicated_numbers:
        result.problems.append(f"{result.duplicated_numbers} duplicated trial numbers")
    if result.trials_without_full_curve:
        result.problems.append(f"{result.trials_without_full_curve} complete trials without {EPOCHS} curve rows")
    if result.locked_errors:
        result.problems.append(f"{result.locked_errors} 'database is locked'")
    if any(result.exit_codes):
        result.problems.append(f"exit codes {result.exit_codes}")


def run_postgresql(workers: int, n_trials: int, workdir: Path) -> LoadResult:
    name = f"tuner_load_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        max_connections = int(connection.execute(sqlalchemy.text("SHOW max_connections")).scalar())
    url = sqlalchemy.engine.make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    try:
        spec = workdir / "load.toml"
        spec.write_text(SPEC.format(name="load", n_trials=n_trials, epochs=EPOCHS))
        subprocess.run(_tuner("study", "create", str(spec), "--quiet"), env=_env(url), check=True)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            with admin.connect() as connection:
                while not done.wait(0.2):
                    n = connection.execute(sqlalchemy.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = :n"), {"n": name}).scalar()
                    peak = max(peak, int(n) - 0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        procs = [subprocess.Popen(_tuner("worker", "load", "--quiet"), env=_env(url), stderr=subprocess.PIPE, text=True)
                 for _ in range(workers)]
        errs = [p.communicate()[1] for p in procs]
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        result = LoadResult("postgresql", workers, n_trials, round(seconds, 1), round(n_trials / seconds, 1),
                            [p.returncode for p in procs], {}, 0, 0, 0, peak, max_connections)
        _check(url, "load", n_trials, result, "".join(errs))
        if peak >= max_connections:
            result.problems.append(f"peak connections {peak} >= max_connections {max_connections}")
        return result
    finally:
        from tuner.storage import dispose_engines

        dispose_engines(url)
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def run_sqlite(jobs: int, n_trials: int, workdir: Path) -> LoadResult:
    url = f"sqlite:///{workdir / 'load.db'}"
    spec = workdir / "load-sqlite.toml"
    spec.write_text(SPEC.format(name="load", n_trials=n_trials, epochs=EPOCHS))
    subprocess.run(_tuner("study", "create", str(spec), "--quiet"), env=_env(url), check=True)
    started = time.monotonic()
    proc = subprocess.run(_tuner("worker", "load", "--jobs", str(jobs), "--quiet"), env=_env(url),
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    result = LoadResult("sqlite", jobs, n_trials, round(seconds, 1), round(n_trials / seconds, 1),
                        [proc.returncode], {}, 0, 0, 0)
    _check(url, "load", n_trials, result, proc.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8, help="PostgreSQL worker processes")
    parser.add_argument("--trials", type=int, default=1000, help="PostgreSQL study total")
    parser.add_argument("--sqlite-jobs", type=int, default=2)
    parser.add_argument("--sqlite-trials", type=int, default=200)
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_postgresql:
            results.append(run_postgresql(args.workers, args.trials, Path(tmp)))
        results.append(run_sqlite(args.sqlite_jobs, args.sqlite_trials, Path(tmp)))
    for r in results:
        if args.json:
            print(json.dumps(asdict(r)))
        else:
            peak = f", peak connections {r.peak_connections} of max_connections {r.max_connections}" if r.peak_connections is not None else ""
            print(f"{r.backend}: {r.workers} workers, {r.trials} trials in {r.seconds} s = {r.trials_per_s} trials/s"
                  f"{peak}; states {r.counts}; {'OK' if r.ok else 'PROBLEMS: ' + '; '.join(r.problems)}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
