"""Trials per minute of 1 and 2 worker processes on one PostgreSQL study (`tuner worker --jobs J`).

Each run gets a fresh database and the same spec (digits, a 64-128-10 net, 10 epochs by default: trials
of a fifth of a second or less, so the database's share of the work is large; `--epochs 30` is what
`studies/digits-mlp.toml` trains), runs `tuner worker NAME --jobs J --timeout SECONDS` as a real command,
and counts the finished (COMPLETE + PRUNED) trials two ways:

- wall: finished trials / the command's whole wall time (process start-up and imports included);
- steady: trials finished between the first trial's start and the last trial's end / that span (what
  workers that run for hours deliver).

`--jobs J` gives each process cores/J BLAS threads, so a lone worker process also trains on every core;
`--blas-threads 1` gives the lone process one BLAS thread too, which measures how trials per minute
grow with processes alone. Runs of 1 and 2 processes alternate for `--rounds` rounds (a busy neighbour
then hits both alike); the speed-ups are of the medians.

    python bench/scaling.py --seconds 60 --rounds 3
    python bench/scaling.py --seconds 60 --rounds 3 --epochs 30
    python bench/scaling.py --seconds 60 --rounds 3 --blas-threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from scratch_db import create_database, drop_database

from tuner.study.worker.supervisor import BLAS_THREAD_VARS

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
epochs = {epochs}
batch_size = 64

[search]
optimizer = ["momentum", "adam"]
eps0 = { low = 1e-3, high = 0.1, log = true }
alpha = 0.9
init = "he"
init_scale = { low = 0.5, high = 2.0, log = true }
"""

def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by the local PostgreSQL server: its live processes, plus the exited backends
    that the postmaster has reaped (its children's times)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            parent = Path(f"/proc/{fields[1]}/comm")
            is_postmaster = not (parent.exists() and parent.read_text().strip() == "postgres")
        except OSError:  # the process (or its parent) exited while we looked
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if is_postmaster:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime of reaped backends
    return total / tick


def trials_per_minute(jobs: int, seconds: float, spec: Path, blas_threads: int | None) -> tuple[float, float, float]:
    """(wall, steady) trials per minute of one `tuner worker --jobs J` run on a fresh database, and the
    cores the PostgreSQL server kept busy meanwhile (its CPU seconds / the run's wall time)."""
    url = create_database("tuner_scaling")
    try:
        env = dict(os.environ, TUNER_STORAGE=url)
        if blas_threads is not None:  # `--jobs J` > 1 sets cores/J in its children whatever this says
            env.update({var: str(blas_threads) for var in BLAS_THREAD_VARS})
        tuner = [sys.executable, "-m", "tuner"]
        subprocess.run([*tuner, "study", "create", str(spec), "--quiet"], env=env, check=True)
        started, server_before = time.monotonic(), postgres_cpu_seconds()
        subprocess.run([*tuner, "worker", "scaling", "--jobs", str(jobs), "--timeout", str(seconds), "--quiet"],
                       env=env, check=True)
        elapsed = time.monotonic() - started
        server = (postgres_cpu_seconds() - server_before) / elapsed
        study = optuna.load_study(study_name="scaling", storage=url)
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        finished = study.get_trials(deepcopy=False, states=states)
        span = (max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)).total_seconds()
        return 60.0 * len(finished) / elapsed, 60.0 * len(finished) / span, server
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="BLAS threads of the lone worker process (default: the library's own, every core)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial (10: about 0.15-0.2 s)")
    args = parser.parse_args()
    runs: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "scaling.toml"
        spec.write_text(SPEC.replace("{epochs}", str(args.epochs)))
        for _ in range(args.rounds):
            for jobs in (1, 2):
                runs[jobs].append(trials_per_minute(jobs, args.seconds, spec, args.blas_threads))
                wall, steady, server = runs[jobs][-1]
                print(f"  {jobs} process(es): {wall:6.1f} trials/min wall, {steady:6.1f} steady; "
                      f"PostgreSQL busy {server:.2f} cores", flush=True)
    threads = args.blas_threads or "default"
    print(f"{os.cpu_count()} cores, {args.epochs} epochs per trial, {args.seconds:g} s per run, {args.rounds} rounds, "
          f"BLAS threads of the lone process: {threads}, PostgreSQL; medians:")
    for kind, index in (("wall", 0), ("steady", 1)):
        one = statistics.median(r[index] for r in runs[1])
        two = statistics.median(r[index] for r in runs[2])
        print(f"{kind:>6}: 1 process {one:6.1f} trials/min, 2 processes {two:6.1f} trials/min ({two / one:.2f}x)")
    one, two = (statistics.median(r[2] for r in runs[j]) for j in (1, 2))
    print(f"PostgreSQL server: {one:.2f} cores busy beside 1 process, {two:.2f} beside 2")


if __name__ == "__main__":
    main()
