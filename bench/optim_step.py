"""Microseconds per optimizer step (the update alone), this tree's `tuner.optim` against a git revision's.

    python bench/optim_step.py [--baseline REV] [--rounds 15] [--optimizer NAME ...] [--case large|small|all]

Every optimizer of `tuner.optim.OPTIMIZERS` at its default hyperparameters, float32, on two flat
parameter arrays the size of `bench/train_speed.py`'s networks:

    large   669,706 parameters (784-512-512-10)
    small    15,210 parameters (40-100-100-10)

One measurement is `opt.step(params, grad, closure)` repeated for ~20 ms and divided by the count; the
closure returns 0.0 and leaves a fixed random gradient in `grad`, so what is timed is the update (and, for
the Nesterov variants, the look-ahead move before the closure and the schedule's rate), not a network.
The arrays stay in cache between steps here, unlike in training, where the matrix products in between
evict them: `train_speed.py` is the end-to-end check.

With `--baseline REV`, the package at that revision (`git archive REV tuner`) runs beside this tree's,
each implementation in a worker process of its own (two copies of `tuner` cannot share a process). The
rounds interleave everything (for each round, each optimizer and case, each implementation in turn), so
a burst of load from other processes hits all alike; the table gives the median over the rounds, the
interquartile range, and after/before. BLAS threads: whatever the environment sets
(`OPENBLAS_NUM_THREADS`); the workers report their BLAS from threadpoolctl.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import blas_pools, load_average
from revision import REPO, extract_package

CASES = {"large": 669_706, "small": 15_210}
TARGET_SECONDS = 0.02  # one measurement: enough steps to take this long


def build(name: str, size: int) -> Callable[[], None]:
    """One step of optimizer `name` on `size` float32 parameters with a fixed gradient, ready to repeat."""
    from tuner.optim import make

    rng = np.random.default_rng(0)
    params = rng.standard_normal(size).astype(np.float32)
    fixed = (0.01 * rng.standard_normal(size)).astype(np.float32)
    grad = fixed.copy()
    opt = make(name, eps0=1e-3)
    opt.start(params, 1_000_000)

    def closure() -> float:
        return 0.0

    def step() -> None:
        opt.step(params, grad, closure)

    return step


def measure(step: Callable[[], None]) -> float:
    """Microseconds per call of `step`, over as many calls as fill TARGET_SECONDS."""
    started = time.perf_counter()
    step()
    once = max(time.perf_counter() - started, 1e-7)
    count = max(1, int(TARGET_SECONDS / once))
    started = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - started) / count * 1e6


def serve() -> None:
    """Worker: report where `tuner` came from and the BLAS, then answer "NAME CASE" lines with µs/step."""
    import tuner
    from tuner.optim import OPTIMIZERS

    info = {"tuner": tuner.__file__, "numpy": np.__version__, "blas": blas_pools(), "optimizers": OPTIMIZERS}
    print(json.dumps(info), flush=True)
    steps = {}
    for line in sys.stdin:
        name, case = line.split()
        if (name, case) not in steps:
            steps[name, case] = build(name, CASES[case])
            measure(steps[name, case])  # warm-up: first touch of the arrays, caches
        print(f"{measure(steps[name, case]):.3f}", flush=True)


def start_worker(source: Path) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=source)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def ask(proc: subprocess.Popen, name: str, case: str) -> float:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{name} {case}\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return q1, median, q3


def report(times: dict[tuple[str, str, str], list[float]], impls: list[str]) -> None:
    header = "| optimizer | case |" + "".join(f" {i} µs (q1–q3) |" for i in impls)
    ratio = len(impls) == 2
    print("\n" + header + (" after / before |" if ratio else ""))
    print("| --- | --- |" + " ---: |" * (len(impls) + ratio))
    for name, case in dict.fromkeys((n, c) for n, c, _ in times):
        cells, medians = [], []
        for impl in impls:
            q1, median, q3 = quartiles(times[name, case, impl])
            cells.append(f" {median:.1f} ({q1:.1f}–{q3:.1f}) |")
            medians.append(median)
        tail = f" {medians[1] / medians[0]:.2f} |" if ratio else ""
        print(f"| {name} | {case} |" + "".join(cells) + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REV", help="git revision to compare against (e.g. HEAD~3, main)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (median over them)")
    parser.add_argument("--optimizer", nargs="+", help="optimizers to time (default: all)")
    parser.add_argument("--case", choices=("large", "small", "all"), default="all")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve()
        return
    print(f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {os.cpu_count()} CPUs")
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as scratch:
        sources = {"current": REPO}
        if args.baseline:
            sources = {f"before ({extract_package(args.baseline, Path(scratch))})": Path(scratch), "after": REPO}
        workers = {}
        for impl, source in sources.items():
            workers[impl], info = start_worker(source)
            print(f"{impl}: {info['tuner']}, numpy {info['numpy']}, BLAS {info['blas']}")
        names = args.optimizer or info["optimizers"]  # this tree's, the last worker started
        cases = list(CASES) if args.case == "all" else [args.case]
        times: dict[tuple[str, str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name in names:
                for case in cases:
                    for impl, proc in workers.items():
                        times.setdefault((name, case, impl), []).append(ask(proc, name, case))
        for proc in workers.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
    report(times, list(workers))
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
