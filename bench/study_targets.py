"""The shipped specs at their default trial budgets: best validation metric and wall time.

Each spec runs as `tuner run` would (one worker, a fresh SQLite file), and the best value is compared with
its target: digits-mlp >= 0.98 validation accuracy, mnist1d-mlp > 0.68 (the MNIST-1D paper's MLP).

    python bench/study_targets.py                      # both
    python bench/study_targets.py --spec digits-mlp
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from tuner.study.create import create_study
from tuner.study.spec import load_spec
from tuner.study.worker import run_worker

STUDIES = Path(__file__).resolve().parents[1] / "studies"
TARGETS = {"digits-mlp": (0.98, ">="), "mnist1d-mlp": (0.68, ">")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", choices=sorted(TARGETS), action="append")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{'spec':14} {'trials':>6} {'best':>8} {'target':>8} {'met':>4} {'wall':>8}")
    for name in args.spec or sorted(TARGETS):
        spec = load_spec(STUDIES / f"{name}.toml")
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            started = time.perf_counter()
            create_study(url, spec)
            run_worker(url, spec.study.name)
            wall = time.perf_counter() - started
            best = optuna.load_study(study_name=spec.study.name, storage=url).best_value
        target, op = TARGETS[name]
        met = best >= target if op == ">=" else best > target
        print(f"{name:14} {spec.study.n_trials:6d} {best:8.4f} {op}{target:7.2f} {'yes' if met else 'NO':>4} {wall:7.1f}s")


if __name__ == "__main__":
    main()
