"""Load: many worker processes completing many short trials of one study, on PostgreSQL and on SQLite.

PostgreSQL: W worker processes (default 8) complete N trials (default 1,000) of a tiny spec. Checks: exactly N
COMPLETE, no duplicated trial number, nothing RUNNING or WAITING at the end, a full curve (one row per epoch)
for every COMPLETE trial, every worker exits 0; samples `pg_stat_activity` every 0.2 s for the peak
connection count of the study's database (and of the whole server) and compares it with `max_connections`.
With `--pooler`, the workers connect through a PgBouncer started here in front of the server (Debian's
`pgbouncer`; the [pgbouncer] settings of compose/pgbouncer.ini: transaction mode), with `?pooler=pgbouncer`
in their URL; `tuner db upgrade` and `study create` go to the server directly, as in docker-compose.yml.
SQLite: `tuner worker NAME --jobs J` on one file; checks zero "database is locked" in stderr and in the FAIL
trials' reasons.

    python bench/load.py                                  # 8 x 1000 on PostgreSQL, 2 x 200 on SQLite
    python bench/load.py --workers 4 --trials 60 --sqlite-jobs 2 --sqlite-trials 40   # the test's size
    python bench/load.py --workers 64 --trials 2000 --pooler --stagger 0.5 --skip-sqlite \
        --heartbeat-interval 30 --grace-period 600      # past one database's connections

The PostgreSQL server is TUNER_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres, which
must trust local connections); a fresh database is created and dropped.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
import sqlalchemy
from pgbouncer import pgbouncer, pgbouncer_settings
from scratch_db import create_database, drop_database
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
    pooler: str | None = None
    peak_server_connections: int | None = None  # every client backend of the server, not only the study's
    worker_errors: dict[str, int] = field(default_factory=dict)  # each distinct "error:" line, and how often
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _tuner(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuner", *args]


@dataclass(frozen=True)
class WorkerRun:
    """How the PostgreSQL workers are started: through a PgBouncer or not, how fast, with which options."""

    pooler: bool = False
    pool_size: int | None = None  # PgBouncer's default_pool_size (default: compose/pgbouncer.ini's)
    stagger: float = 0.0  # seconds between two workers' starts
    heartbeat_interval: int = 10
    grace_period: int = 60


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
    for state in ("RUNNING", "WAITING"):
        if counts.get(state):
            result.problems.append(f"{counts[state]} trials left {state}")
    if result.duplicated_numbers:
        result.problems.append(f"{result.duplicated_numbers} duplicated trial numbers")
    if result.trials_without_full_curve:
        result.problems.append(f"{result.trials_without_full_curve} complete trials without {EPOCHS} curve rows")
    if result.locked_errors:
        result.problems.append(f"{result.locked_errors} 'database is locked'")
    if any(result.exit_codes):
        result.problems.append(f"exit codes {result.exit_codes}")


class _ConnectionPeaks:
    """Samples `pg_stat_activity` every 0.2 s in a thread: the peak connections to one database, and to the
    whole server (client backends, this sampler's own included)."""

    def __init__(self, admin: sqlalchemy.Engine, database: str) -> None:
        self.admin, self.database = admin, database
        self.database_peak = self.server_peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _ConnectionPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        query = sqlalchemy.text("SELECT count(*) FILTER (WHERE datname = :n), "
                                "count(*) FILTER (WHERE backend_type = 'client backend') FROM pg_stat_activity")
        with self.admin.connect() as connection:
            while not self._done.wait(0.2):
                database, server = connection.execute(query, {"n": self.database}).one()
                self.database_peak = max(self.database_peak, int(database))
                self.server_peak = max(self.server_peak, int(server))


def _start_workers(url: str, workers: int, run: WorkerRun) -> list[subprocess.Popen]:
    args = _tuner("worker", "load", "--quiet", "--heartbeat-interval", str(run.heartbeat_interval),
                  "--grace-period", str(run.grace_period))
    procs = []
    for i in range(workers):
        if i and run.stagger:
            time.sleep(run.stagger)
        procs.append(subprocess.Popen(args, env=_env(url), stderr=subprocess.PIPE, text=True))
    return procs


def _error_lines(stderr_texts: list[str]) -> dict[str, int]:
    lines = (line[:200] for text in stderr_texts for line in text.splitlines() if line.startswith("error:"))
    return dict(collections.Counter(lines).most_common())


def _through_pgbouncer(url: str, port: int) -> str:
    parsed = sqlalchemy.engine.make_url(url)
    return parsed.set(host="127.0.0.1", port=port, query={"pooler": "pgbouncer"}).render_as_string(hide_password=False)


def run_postgresql(workers: int, n_trials: int, workdir: Path, run: WorkerRun = WorkerRun()) -> LoadResult:
    """`workers` processes complete `n_trials` on a fresh database of PG_SERVER (through PgBouncer with
    `run.pooler`); the database is dropped afterwards."""
    url = create_database("tuner_load", PG_SERVER)
    name = sqlalchemy.engine.make_url(url).database
    admin = sqlalchemy.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        max_connections = int(connection.execute(sqlalchemy.text("SHOW max_connections")).scalar())
    try:
        spec = workdir / "load.toml"
        spec.write_text(SPEC.format(name="load", n_trials=n_trials, epochs=EPOCHS))
        subprocess.run(_tuner("db", "upgrade"), env=_env(url), check=True, capture_output=True)
        subprocess.run(_tuner("study", "create", str(spec), "--quiet"), env=_env(url), check=True)
        with contextlib.ExitStack() as stack:
            worker_url = url
            if run.pooler:
                port = stack.enter_context(pgbouncer(PG_SERVER, workdir, pgbouncer_settings(run.pool_size)))
                worker_url = _through_pgbouncer(url, port)
            peaks = stack.enter_context(_ConnectionPeaks(admin, name))
            started = time.monotonic()
            procs = _start_workers(worker_url, workers, run)
            errs = [p.communicate()[1] for p in procs]
            seconds = time.monotonic() - started
        result = LoadResult("postgresql", workers, n_trials, round(seconds, 1), round(n_trials / seconds, 1),
                            [p.returncode for p in procs], {}, 0, 0, 0, peaks.database_peak, max_connections,
                            pooler="pgbouncer" if run.pooler else None, peak_server_connections=peaks.server_peak,
                            worker_errors=_error_lines(errs))
        _check(url, "load", n_trials, result, "".join(errs))
        if peaks.database_peak >= max_connections:
            result.problems.append(f"peak connections {peaks.database_peak} >= max_connections {max_connections}")
        return result
    finally:
        from tuner.storage import dispose_engines

        dispose_engines(url)
        admin.dispose()
        drop_database(url, PG_SERVER)


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
    parser.add_argument("--pooler", action="store_true", help="workers connect through a PgBouncer started here")
    parser.add_argument("--pool-size", type=int, help="PgBouncer's default_pool_size (default: compose's)")
    parser.add_argument("--stagger", type=float, default=0.0, help="seconds between two workers' starts")
    parser.add_argument("--heartbeat-interval", type=int, default=10)
    parser.add_argument("--grace-period", type=int, default=60)
    parser.add_argument("--sqlite-jobs", type=int, default=2)
    parser.add_argument("--sqlite-trials", type=int, default=200)
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    run = WorkerRun(pooler=args.pooler, pool_size=args.pool_size, stagger=args.stagger,
                    heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_postgresql:
            results.append(run_postgresql(args.workers, args.trials, Path(tmp), run))
        if not args.skip_sqlite:
            results.append(run_sqlite(args.sqlite_jobs, args.sqlite_trials, Path(tmp)))
    for r in results:
        print(json.dumps(asdict(r)) if args.json else _describe(r))
    return 0 if all(r.ok for r in results) else 1


def _describe(r: LoadResult) -> str:
    via = " through pgbouncer" if r.pooler else ""
    peak = ""
    if r.peak_connections is not None:
        peak = (f", peak connections {r.peak_connections} to the study's database, {r.peak_server_connections} "
                f"to the server, of max_connections {r.max_connections}")
    failed = sum(1 for code in r.exit_codes if code)
    errors = f"; {failed} workers failed: {r.worker_errors}" if failed else ""
    return (f"{r.backend}{via}: {r.workers} workers, {r.trials} trials in {r.seconds} s = {r.trials_per_s} "
            f"trials/s{peak}; states {r.counts}{errors}; {'OK' if r.ok else 'PROBLEMS: ' + '; '.join(r.problems)}")


if __name__ == "__main__":
    sys.exit(main())
