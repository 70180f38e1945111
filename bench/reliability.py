"""Reliability figures on a real PostgreSQL: the stall bound of a paused lock holder, and a soak under faults.

    python bench/reliability.py stall --rounds 5
    python bench/reliability.py soak --workers 4 --minutes 10 --fault-every 20

stall: a process takes a study's claim lock and pauses itself (SIGSTOP), as a worker paused mid-claim;
two workers are started; the figure is the time from their start until the study's first trial exists
(their start-up included), per round, then median and max.

soak: `--workers` worker processes (one BLAS thread each, heartbeat 2 s, grace 10 s) run a study of
tiny trials while, every `--fault-every` seconds, one fault is injected in turn: SIGKILL of a worker
(a new one is started in its place), SIGSTOP of a worker for longer than the grace period then SIGCONT,
and `pg_terminate_backend` of one of the workers' database sessions. After `--minutes` the faults stop,
the study's total is set to what it has reached plus 50, and the workers finish it. Checks: exactly N
finished, no duplicate numbers, nothing RUNNING or WAITING, no curve row without a trial, no worker row
still `running`, no traceback in any worker's stderr.

Each run makes a database `tuner_bench_<random>` on the server (`--server`, default the local one as
postgres) and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy
from scratch_db import SERVER, scratch_database
from sqlalchemy.pool import NullPool

SPEC = """[study]
name = "{name}"
n_trials = {n_trials}
seed = 1
sampler = "random"
pruner = "none"
[data]
source = "synthetic_classification"
[model]
hidden = [16]
[train]
epochs = {epochs}
batch_size = 64
[search]
optimizer = ["sgd", "momentum"]
eps0 = {{ low = 1e-3, high = 0.1, log = true }}
alpha = {{ low = 0.5, high = 0.9 }}
"""
HOLDER = """
import os, signal, sys
from tuner.storage import make_engine, study_lock
with study_lock(make_engine(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
"""
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def tuner(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuner", *args]


def create(url: str, folder: Path, name: str, n_trials: int, epochs: int) -> None:
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(name=name, n_trials=n_trials, epochs=epochs))
    subprocess.run(tuner("study", "create", str(path), "--storage", url, "--quiet"), check=True, env=ENV)


def scalar(url: str, sql: str, **params: object) -> object:
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as c:  # committed: the soak's end sets the study's total with it
            return c.execute(sqlalchemy.text(sql), params).scalar()
    finally:
        engine.dispose()


def stall(server: str, rounds: int) -> None:
    times = []
    for r in range(rounds):
        with scratch_database("tuner_bench", server) as url, tempfile.TemporaryDirectory() as folder:
            create(url, Path(folder), "stall", 4, 2)
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, "stall"], stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline() == "held\n"
            time.sleep(0.5)
            started = time.monotonic()
            workers = [subprocess.Popen(tuner("worker", "stall", "--storage", url, "--quiet"), env=ENV,
                                        stderr=subprocess.PIPE, text=True) for _ in range(2)]
            while not scalar(url, "SELECT count(*) FROM trials"):
                time.sleep(0.1)
            times.append(time.monotonic() - started)
            codes = [w.wait(timeout=300) for w in workers]
            holder.kill()
            holder.wait()
            print(f"round {r + 1}: the others went on after {times[-1]:.1f} s; worker exit codes {codes}", flush=True)
    print(f"stall bound: median {statistics.median(times):.1f} s, max {max(times):.1f} s, over {rounds} rounds")


class Fleet:
    """The soak's workers: started, faulted, replaced, and their stderr kept."""

    def __init__(self, url: str, name: str, size: int, folder: Path) -> None:
        self.url, self.name, self.folder = url, name, folder
        self.workers: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.killed: set[int] = set()  # pids this fleet killed on purpose
        for _ in range(size):
            self.start()

    def start(self) -> None:
        log = self.folder / f"worker-{len(self.logs)}.err"
        self.logs.append(log)
        args = tuner("worker", self.name, "--storage", self.url, "--heartbeat-interval", "2", "--grace-period", "10")
        self.workers.append(subprocess.Popen(args, env=ENV, stderr=open(log, "w")))  # noqa: SIM115

    def live(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def fault(self, kind: str, rng: random.Random) -> str:
        live = self.live()
        if not live:
            return "no live worker"
        victim = rng.choice(live)
        if kind == "kill":
            victim.send_signal(signal.SIGKILL)
            self.killed.add(victim.pid)
            victim.wait()
            self.start()
            return f"SIGKILL pid {victim.pid}, started a replacement"
        if kind == "pause":
            victim.send_signal(signal.SIGSTOP)
            time.sleep(15)  # longer than the grace period: its trial is failed by the others
            victim.send_signal(signal.SIGCONT)
            return f"SIGSTOP pid {victim.pid} for 15 s"
        pid = scalar(self.url, "SELECT pid FROM pg_stat_activity WHERE application_name = :a ORDER BY random() LIMIT 1",
                     a=f"tuner pid {victim.pid}")
        if pid is None:
            return "no session to terminate"
        scalar(self.url, "SELECT pg_terminate_backend(:p)", p=pid)
        return f"terminated a database session of pid {victim.pid}"


def soak(server: str, n_workers: int, minutes: float, every: float, seed: int) -> None:
    rng = random.Random(seed)
    with scratch_database("tuner_bench", server) as url, tempfile.TemporaryDirectory() as folder:
        create(url, Path(folder), "soak", 100_000, 3)
        fleet = Fleet(url, "soak", n_workers, Path(folder))
        started, faults = time.monotonic(), {"kill": 0, "pause": 0, "terminate": 0}
        kinds = ("kill", "pause", "terminate")
        while time.monotonic() - started < minutes * 60:
            time.sleep(every)
            kind = kinds[sum(faults.values()) % 3]
            faults[kind] += 1
            print(f"{time.monotonic() - started:6.0f} s: {fleet.fault(kind, rng)}", flush=True)
        reached = int(scalar(url, "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"))
        total = reached + 50
        scalar(url, "UPDATE tuner_studies SET n_trials = :n WHERE name = 'soak' RETURNING id", n=total)
        codes = [w.wait(timeout=900) for w in fleet.workers if w.poll() is None]
        ended = {w.pid: w.returncode for w in fleet.workers if w.pid not in fleet.killed}
        report(url, total, faults, codes, fleet.logs, time.monotonic() - started)
        print(f"  exit codes of the workers not killed on purpose: {sorted(ended.values())}")
        for worker, log in zip(fleet.workers, fleet.logs):  # what a worker that ended on its own said last
            if worker.pid not in fleet.killed:
                lines = [line for line in log.read_text().splitlines() if line.strip()]
                print(f"  {log.name} (exit {worker.returncode}): {' | '.join(lines[-2:])[:400]}")


def report(url: str, total: int, faults: dict, codes: list[int], logs: list[Path], seconds: float) -> None:
    def count(sql: str) -> int:
        return int(scalar(url, sql))

    finished = count("SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')")
    checks = {
        "finished": f"{finished} of {total}",
        "duplicate numbers": count("SELECT count(*) - count(DISTINCT number) FROM trials"),
        "RUNNING": count("SELECT count(*) FROM trials WHERE state = 'RUNNING'"),
        "WAITING": count("SELECT count(*) FROM trials WHERE state = 'WAITING'"),
        "FAIL": count("SELECT count(*) FROM trials WHERE state = 'FAIL'"),
        "curve rows without a trial": count(
            "SELECT count(*) FROM tuner_curves c LEFT JOIN trials t ON t.number = c.trial_number "
            "WHERE t.trial_id IS NULL"),
        "worker rows still running": count("SELECT count(*) FROM tuner_workers WHERE status = 'running'"),
        "tracebacks": sum(p.read_text().count("Traceback") for p in logs),
    }
    print(f"soak: {seconds / 60:.1f} min, faults {faults}, last workers' exit codes {codes}")
    for key, value in checks.items():
        print(f"  {key}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("stall", "soak"))
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--fault-every", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.mode == "stall":
        stall(args.server, args.rounds)
    else:
        soak(args.server, args.workers, args.minutes, args.fault_every, args.seed)


if __name__ == "__main__":
    main()
