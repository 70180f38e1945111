"""Equal share: does every optimizer get floor(N/k) or more of N trials, with worker processes in parallel?

The spec is run twice on a fresh SQLite file by `tuner worker NAME --jobs J` (J real processes claiming
trials under the study's lock): once with `optimizer_share = "sampler"` (TPE picks the optimizer) and once
with `optimizer_share = "equal"`. Printed per mode: the finished (COMPLETE + PRUNED) trials of each
optimizer, floor(N/k), whether every optimizer got at least that, each optimizer's best value, and its
best over its first m trials (m = the fewest any optimizer had: the comparison at equal budget).

    OPENBLAS_NUM_THREADS=1 nice -n 5 python bench/equal_share.py studies/digits-mlp.toml --jobs 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tuner.analysis import open_study, optimizer_summary, trials_frame
from tuner.study.create import create_study
from tuner.study.spec import StudySpec, load_spec


def with_share(spec: StudySpec, share: str, n_trials: int | None) -> StudySpec:
    update = {"optimizer_share": share, "name": f"{spec.study.name}-{share}"}
    if n_trials is not None:
        update["n_trials"] = n_trials
    return spec.model_copy(update={"study": spec.study.model_copy(update=update)})


def run(spec: StudySpec, url: str, jobs: int) -> tuple[float, str]:
    """Create the study, run J worker processes to its total; the wall time and the table."""
    name, _ = create_study(url, spec)
    env = dict(os.environ, TUNER_STORAGE=url)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tuner", "worker", name, "--jobs", str(jobs), "--quiet"], env=env,
                   check=True)
    seconds = time.perf_counter() - started
    handle = open_study(url, name)
    finished = [t for t in handle.study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    n, k = len(finished), len(spec.search.optimizers)
    counts = Counter(t.user_attrs["config"]["optimizer"] for t in finished)
    summary = optimizer_summary(trials_frame(handle)).set_index("optimizer")
    lines = [f"#### optimizer_share = \"{spec.study.optimizer_share}\": {n} trials, k = {k}, floor(N/k) = {n // k}, "
             f"{jobs} worker processes, {seconds:.0f} s",
             "", f"| optimizer | finished trials | >= floor(N/k) | best | best of first {summary.attrs['equal_budget']} |",
             "| --- | ---: | --- | --- | --- |"]
    for name in spec.search.optimizers:
        best = summary["best"].get(name, float("nan"))
        equal = summary["best_at_equal_budget"].get(name, float("nan"))
        lines.append(f"| {name} | {counts[name]} | {'yes' if counts[name] >= n // k else 'no'} | {best:.4f} | "
                     f"{equal:.4f} |")
    return seconds, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", default="studies/digits-mlp.toml")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--n-trials", type=int, default=None, help="default: the spec's")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = load_spec(args.spec)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'share.db'}"
        for share in ("sampler", "equal"):
            print(run(with_share(base, share, args.n_trials), url, args.jobs)[1], end="\n\n", flush=True)


if __name__ == "__main__":
    main()
