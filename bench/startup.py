"""Start-up time of the `tuner` command against a bare `import typer`, in interleaved rounds.

    python bench/startup.py --rounds 9
    python bench/startup.py --rounds 9 --baseline main    # and `python -m tuner` as of main, interleaved

Each round runs, in a rotated order, `python -c "import typer"` (the floor: the CLI library alone),
`tuner --help` and `tuner study list --storage sqlite:///<tmp>` (on a migrated, empty database) as fresh
processes, and times each wall clock to exit. Interleaving spreads a shared machine's noise over all three;
the median, min and max of each are reported, with the ratio of the medians to `import typer`.
`--baseline REV` adds the same two tuner commands run from `tuner/` and `alembic/` as of a git revision
(`python -m tuner` with PYTHONPATH on that copy). `--json` prints the figures as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _tuner() -> list[str]:
    """The console script beside this Python, else `python -m tuner` (the same entry point)."""
    script = Path(sys.executable).with_name("tuner")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tuner"]


Run = tuple[list[str], dict[str, str] | None]  # argv, and the environment (None: this one)
_CWD: list[Path] = []  # where the commands run: a scratch directory, so `python -m` finds no ./tuner


def commands(url: str, baseline: tuple[str, Path] | None = None) -> dict[str, Run]:
    runs: dict[str, Run] = {
        "import typer": ([sys.executable, "-c", "import typer"], None),
        "tuner --help": ([*_tuner(), "--help"], None),
        "tuner study list": ([*_tuner(), "study", "list", "--storage", url], None),
    }
    if baseline is not None:
        label, tree = baseline
        env = dict(os.environ, PYTHONPATH=str(tree))
        runs[f"--help @{label}"] = ([sys.executable, "-m", "tuner", "--help"], env)
        runs[f"study list @{label}"] = ([sys.executable, "-m", "tuner", "study", "list", "--storage", url], env)
    return runs


def wall(run: Run) -> float:
    """Seconds from start to exit of one run; its output is discarded, a failure stops the benchmark."""
    args, env = run
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   cwd=_CWD[0] if _CWD else None)
    return time.perf_counter() - start


def measure(rounds: int, runs: dict[str, Run]) -> dict[str, list[float]]:
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm the file cache (.pyc files) once before measuring
        wall(runs[name])
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(wall(runs[name]))
    return times


def extract(revision: str, into: Path) -> str:
    """`tuner/` and `alembic/` as of `revision` into `into` (the package finds its migrations beside it)."""
    repo = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "--short", f"{revision}^{{commit}}"], cwd=repo, check=True,
                            capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", commit, "tuner", "alembic"], cwd=repo, check=True,
                             capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def summary(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    floor = statistics.median(times["import typer"])
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),
                   "ratio_to_import_typer": statistics.median(t) / floor, "runs": len(t)}
            for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (at least 5)")
    parser.add_argument("--baseline", metavar="REV", help="also time `python -m tuner` as of this git revision")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5")
    work = Path(tempfile.mkdtemp(prefix="tuner-startup-"))
    try:
        url = f"sqlite:///{work / 'tuner.db'}"
        _CWD.append(work)
        subprocess.run([*_tuner(), "db", "upgrade", "--storage", url, "--quiet"], check=True)
        baseline = None
        if args.baseline:
            (work / "base").mkdir()
            baseline = (extract(args.baseline, work / "base"), work / "base")
        result = summary(measure(args.rounds, commands(url, baseline)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{args.rounds} interleaved rounds, wall time to exit (python {sys.version.split()[0]})")
    print(f"{'command':<26} {'median':>8} {'min':>8} {'max':>8} {'x import typer':>15}")
    for name, s in result.items():
        print(f"{name:<26} {s['median_s']:>7.3f}s {s['min_s']:>7.3f}s {s['max_s']:>7.3f}s "
              f"{s['ratio_to_import_typer']:>14.1f}x")


if __name__ == "__main__":
    main()
