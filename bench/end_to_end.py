"""End to end: a spec's whole study run three ways, each as a user runs it, on the same kind of storage.

    python bench/end_to_end.py                                   # digits-mlp, 60 trials, SQLite, 3 rounds
    python bench/end_to_end.py --storage postgresql
    python bench/end_to_end.py --spec studies/mnist1d-mlp.toml --n-trials 40 --rounds 2 --thresholds 0.68 0.75
    python bench/end_to_end.py --rounds 5 --vary-seed                # a study seed per round

Contenders, each in a fresh process with one BLAS thread (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS = 1), on a fresh storage of its own (a new SQLite file, or a new PostgreSQL database on
127.0.0.1:5432, dropped afterwards):

- tuner: `python -m tuner run SPEC --n-trials N --storage URL --threads 1`, the quick start as the README
  gives it: the wall time includes the interpreter's start, imports, migrations and the final summary.
  Its spec searches the peers' space: where the shipped spec says `"auto"`, the wide range a user writes
  without probes (`wide_ranges`: the shipped specs' ranges before `"auto"` became their default).
- tuner-auto: the same command on the shipped spec itself, `"auto"` included: its probes run at the
  study's creation (inside the wall time) and anchor its search; the peers cannot do this.
- optuna+torch and optuna+sklearn: `python bench/peers.py PEER PLAN URL`, plain Optuna on its own
  `RDBStorage` with a PyTorch or scikit-learn objective over the same search space where the library has
  it, the spec's sampler and pruner settings, the same data, epochs, batch size and metric (`peers.py`
  says what each leaves out). The plan is read from the spec as tuner parses it (`peer_plan`).

The contenders alternate in rounds, the order rotated every round, so that a burst of load from other
processes hits all of them alike. Per run: wall time (the parent's clock around the process); the time to
the first COMPLETE trial whose value reaches each threshold (its `datetime_complete` against the moment the
process was started); the start-up (the first trial's `datetime_start` against that moment: interpreter,
imports, data, storage); the time after the last trial's end (tuner's summary); tuner's training time (the
epochs' seconds in `tuner_curves`); the best value at the end; the process's peak resident memory
(`ru_maxrss` from `os.wait4`). The table gives the median and the min-max over rounds, and the ratios
tuner / peer taken round by round. `--json PATH` also writes every run.

The searches are seeded, so with one seed every round of a contender finds the same best value: one draw
of its search, where a single validation example can decide. `--vary-seed` runs round r at the spec's
seed + r - 1 (every contender of a round at the same seed: its data split, sampler and trials' training),
and the best value is then also given as the mean ± standard error over the rounds, and the difference
tuner - peer as the mean ± standard error of the per-round differences.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
from heuristic_vs_search import DEFAULT_WIDE_EPS0, WIDE_EPS0, WIDE_INIT, mean_se
from machine import blas_summary, load_average
from scratch_db import create_database, drop_database

from tuner.storage import dispose_engines, load_curves, make_engine
from tuner.study.params import Auto
from tuner.study.spec import StudySpec, load_spec

BENCH = Path(__file__).resolve().parent
CONTENDERS = ("tuner", "tuner-auto", "optuna+torch", "optuna+sklearn")
TUNERS = ("tuner", "tuner-auto")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def wide_ranges(spec: StudySpec) -> dict[str, tuple[float, float]]:
    """What a user writes without probes where the spec says "auto": the shipped specs' ranges before "auto"
    became their default, as the heuristic-vs-search benchmark's wide arm searches them."""
    return {"eps0": WIDE_EPS0.get(spec.study.name, DEFAULT_WIDE_EPS0), "init_scale": WIDE_INIT}


def peer_plan(spec: StudySpec, n_trials: int) -> dict:
    """What a peer needs of the spec, with the defaults of `tuner.study.space.make_sampler`/`make_pruner`."""
    study, search = spec.study, spec.search
    if study.sampler != "tpe" or study.pruner != "median" or study.objective != "val_accuracy":
        raise SystemExit(f"{spec.label}: the peers implement the TPE sampler, the median pruner and val_accuracy")
    optimizers = search.optimizer.values if hasattr(search.optimizer, "values") else (search.optimizer.value,)
    space = {"optimizer": list(optimizers), "init_scale_shared": search.init_scale_shared}
    for name in ("eps0", "alpha", "rho", "rho1", "rho2", "init_scale"):
        param = getattr(search, name)
        if isinstance(param, Auto):  # the peers have no probes: the wide range a user would write
            low, high = wide_ranges(spec)[name]
            space[name] = {"low": low, "high": high, "log": True}
        elif param is not None:
            ranged = hasattr(param, "low")
            space[name] = {"low": param.low, "high": param.high, "log": param.log} if ranged else param.value
    return {
        "name": study.name, "seed": study.seed, "n_trials": n_trials,
        "sampler_startup_trials": 10 if study.n_startup_trials is None else study.n_startup_trials,
        "pruner_startup_trials": 5 if study.n_startup_trials is None else study.n_startup_trials,
        "warmup_epochs": spec.train.epochs // 10 if study.n_warmup_epochs is None else study.n_warmup_epochs,
        "data": {"source": spec.data.source, "val_fraction": spec.data.val_fraction,
                 "standardize": spec.data.standardize},
        "hidden": list(spec.model.hidden), "epochs": spec.train.epochs, "batch_size": spec.train.batch_size,
        "clip_norm": spec.train.clip_norm, "eps_tau_ratio": search.eps_tau_ratio.value,
        "tau_fraction": search.tau_fraction.value, "search": space,
    }


def fresh_storage(kind: str, workdir: Path) -> str:
    """The URL of an empty storage: a new SQLite file, or a new PostgreSQL database (`drop_database` it)."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / (uuid.uuid4().hex + '.db')}"
    return create_database("tuner_e2e")


def spec_file(spec_path: Path, workdir: Path, seed: int, *, wide: bool) -> Path:
    """The spec as a file with the study's seed set to `seed` and, when `wide`, `"auto"` replaced by the peers'
    wide ranges (`wide_ranges`): "tuner" searches the peers' space, "tuner-auto" the shipped spec's."""
    text = spec_path.read_text()
    if wide:
        for name, (low, high) in wide_ranges(load_spec(spec_path)).items():
            text = re.sub(rf'(?m)^{name}\s*=\s*"auto"', f'{name} = {{ low = {low}, high = {high}, log = true }}', text)
    text, found = re.subn(r"(?m)^seed\s*=\s*\d+", f"seed = {seed}", text, count=1)  # [study] comes first
    if not found:
        raise SystemExit(f"{spec_path}: no study seed to set")
    path = workdir / f"{'wide-' if wide else ''}{spec_path.name}"
    path.write_text(text)
    return path


def command(contender: str, spec_path: Path, plan_path: Path, url: str, n_trials: int) -> list[str]:
    if contender in TUNERS:
        seed = json.loads(plan_path.read_text())["seed"]
        spec = spec_file(spec_path, plan_path.parent, seed, wide=contender == "tuner")
        return [sys.executable, "-m", "tuner", "run", str(spec), "--n-trials", str(n_trials),
                "--storage", url, "--threads", "1"]
    return [sys.executable, str(BENCH / "peers.py"), contender.split("+")[1], str(plan_path), url]


def reach_times(trials: list[optuna.trial.FrozenTrial], started: datetime.datetime,
                thresholds: list[float]) -> dict[str, float | None]:
    """Seconds from the start to the first COMPLETE trial at or above each threshold (None: never)."""
    done = sorted((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.datetime_complete)
    times: dict[str, float | None] = {}
    for threshold in thresholds:
        first = next((t for t in done if t.value >= threshold), None)
        times[f"{threshold:g}"] = None if first is None else (first.datetime_complete - started).total_seconds()
    return times


def run_one(contender: str, args: argparse.Namespace, plan_path: Path, workdir: Path) -> dict:
    """One contender's whole study in a fresh process on a fresh storage: wall, reach times, best, memory."""
    url = fresh_storage(args.storage, workdir)
    out, err = workdir / "stdout", workdir / "stderr"
    try:
        with out.open("w") as stdout, err.open("w") as stderr:
            started = datetime.datetime.now()
            t0 = time.perf_counter()
            proc = subprocess.Popen(command(contender, args.spec, plan_path, url, args.n_trials),
                                    stdout=stdout, stderr=stderr, env={**os.environ, **ONE_THREAD})
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"{contender} exited {proc.returncode}:\n{err.read_text()[-3000:]}")
        study_name = json.loads(plan_path.read_text())["name"]
        trials = optuna.load_study(study_name=study_name, storage=url).get_trials(deepcopy=False)
        training = None
        if contender in TUNERS:
            training = sum(r["seconds"] for r in load_curves(make_engine(url), study_name))
        dispose_engines()
    finally:
        if args.storage == "postgresql":
            drop_database(url)
    complete = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    first_start = min(t.datetime_start for t in trials)
    last_end = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    result = {"contender": contender, "wall": wall, "startup": (first_start - started).total_seconds(),
              "wind_down": wall - (last_end - started).total_seconds(),
              "training": training, "rss_mb": usage.ru_maxrss / 1024, "best": max(complete),
              "trials": len(trials), "complete": len(complete), "reach": reach_times(trials, started, args.thresholds)}
    if contender not in TUNERS:
        result.update(json.loads(out.read_text().splitlines()[-1]))
    return result


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """'median (min-max)' of the values, or '-' when there are none."""
    if not values:
        return "-"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def mean_and_se(values: list[float], fmt: str) -> str:
    mean, se = mean_se(values)
    return f"{fmt.format(mean)} ± {se:.4f}"


def table(runs: list[dict], thresholds: list[float], rounds: int, *, seeds: bool = False) -> str:
    """The Markdown table: each contender's figures, then the ratios tuner / peer round by round; with
    `seeds` (a seed per round) the best values as mean ± standard error instead of median (min-max)."""
    by = {c: [r for r in runs if r["contender"] == c] for c in CONTENDERS if any(r["contender"] == c for r in runs)}
    keys = [f"{t:g}" for t in thresholds]
    head = ["contender", "wall s", "start-up s", *(f"time to {k} s (reached)" for k in keys), "best value",
            "peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "| --- " + "| ---: " * (len(head) - 1) + "|"]
    for c, rs in by.items():
        reach = [[r["reach"][k] for r in rs if r["reach"][k] is not None] for k in keys]
        cells = [c, spread([r["wall"] for r in rs]), spread([r["startup"] for r in rs]),
                 *(f"{spread(v)} ({len(v)}/{len(rs)})" for v in reach),
                 (mean_and_se if seeds else spread)([r["best"] for r in rs], "{:.4f}"),
                 spread([r["rss_mb"] for r in rs], "{:.0f}")]
        lines.append("| " + " | ".join(cells) + " |")
    for ours, peer in ((t, p) for t in TUNERS if t in by for p in by if p not in TUNERS):
        pairs = list(zip(by[ours], by[peer], strict=True))
        cells = [f"{ours} / {peer}", spread([t["wall"] / p["wall"] for t, p in pairs], "{:.2f}"),
                 spread([t["startup"] / p["startup"] for t, p in pairs], "{:.2f}")]
        for k in keys:
            ratios = [t["reach"][k] / p["reach"][k] for t, p in pairs if t["reach"][k] and p["reach"][k]]
            cells.append(f"{spread(ratios, '{:.2f}')} ({len(ratios)}/{rounds})")
        cells += [(mean_and_se if seeds else spread)([t["best"] - p["best"] for t, p in pairs], "{:+.4f}")
                  + " (difference)",
                  spread([t["rss_mb"] / p["rss_mb"] for t, p in pairs], "{:.2f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=Path("studies/digits-mlp.toml"))
    parser.add_argument("--n-trials", type=int, default=60)
    parser.add_argument("--storage", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.97, 0.98],
                        help="validation accuracies whose first reaching is timed")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every run here")
    parser.add_argument("--vary-seed", action="store_true",
                        help="run round r at the spec's seed + r - 1 (default: every round at the spec's seed)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(args.spec)
    print(f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}: {args.spec} x {args.n_trials} trials, "
          f"{args.storage}, {args.rounds} rounds; load average before: {load_average()}", flush=True)
    print(f"this process's BLAS (the contenders are limited to 1 thread): {blas_summary()}", flush=True)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        plan_path = workdir / "plan.json"
        plan = peer_plan(spec, args.n_trials)
        jobs = list(args.contenders)
        for r in range(args.rounds):
            plan_path.write_text(json.dumps({**plan, "seed": plan["seed"] + r if args.vary_seed else plan["seed"]}))
            for contender in jobs[r % len(jobs):] + jobs[: r % len(jobs)]:
                result = run_one(contender, args, plan_path, workdir)
                result["round"], result["seed"] = r + 1, json.loads(plan_path.read_text())["seed"]
                runs.append(result)
                reach = ", ".join(f"{k}: {'-' if v is None else f'{v:.1f} s'}" for k, v in result["reach"].items())
                extra = ""
                if "blas" in result:
                    extra = f"; imports {result['import_s']:.2f} s, setup {result['setup_s']:.2f} s, " \
                            f"BLAS {result['blas']}"
                if result["training"] is not None:
                    extra = f"; training (tuner_curves' epoch seconds) {result['training']:.1f} s"
                print(f"round {r + 1} (seed {result['seed']}): {contender}: wall {result['wall']:.1f} s, start-up {result['startup']:.1f} s, "
                      f"after the last trial {result['wind_down']:.1f} s, "
                      f"best {result['best']:.4f}, {result['complete']}/{result['trials']} complete, reach {reach}, "
                      f"RSS {result['rss_mb']:.0f} MB{extra}", flush=True)
    print(f"load average after: {load_average()}\n")
    if any(c in TUNERS for c in args.contenders):
        print(table(runs, args.thresholds, args.rounds, seeds=args.vary_seed))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
