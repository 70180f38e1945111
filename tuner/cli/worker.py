"""`tuner worker NAME` and `tuner run SPEC`: run a study's trials in one or more processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from tuner.cli._common import JsonOption, QuietOption, StorageOption, TrialProgress, stderr, storage_url
from tuner.cli.study import print_summary
from tuner.storage import make_engine, trial_state_counts
from tuner.study.catalog import create_study, load_optuna_study, require_study
from tuner.study.spec import load_spec
from tuner.study.worker import FINISHED, Progress, run_worker

NTrialsOption = Annotated[
    int | None,
    typer.Option("--n-trials", "-n", min=1, help="The study's total of finished trials across ALL workers "
                 "(default: the spec's study.n_trials).", show_default=False),
]
TimeoutOption = Annotated[
    float | None, typer.Option("--timeout", min=0, help="Stop claiming new trials after this many seconds.")
]
JobsOption = Annotated[
    int, typer.Option("--jobs", "-j", min=1, help="Worker processes to start here; the BLAS threads are split between them.")
]
HeartbeatOption = Annotated[
    int, typer.Option("--heartbeat-interval", min=1, help="Seconds between a running trial's heartbeats.")
]
GraceOption = Annotated[
    int, typer.Option("--grace-period", min=1, help="Seconds without a heartbeat before a trial counts as dead.")
]

BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def _install_signal_handlers(interrupt) -> None:  # noqa: ANN001 - the worker's _TrainingInterrupt
    def handler(signum: int, frame: object) -> None:
        interrupt.interrupt(f"worker stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _run_here(url: str, name: str, *, n_trials, timeout, quiet, as_json, heartbeat_interval, grace_period) -> int:  # noqa: ANN001
    total = n_trials or require_study(url, name).study.n_trials
    with TrialProgress(total, name, quiet=quiet or as_json) as progress:

        def on_progress(p: Progress) -> None:
            progress.update(p.finished, p.best, p.counts)

        report = run_worker(
            url,
            name,
            n_trials=n_trials,
            timeout=timeout,
            on_progress=on_progress,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            install_interrupt=_install_signal_handlers,
        )
    if as_json:
        typer.echo(json.dumps({"study": name, "worker_id": report.worker_id, "trials_run": report.trials_run,
                               "states": report.states, "reason": report.reason, "message": report.message}))
    elif not quiet:
        stderr.print(f"worker {report.worker_id}: ran {report.trials_run} trials, ended: {report.reason}")
    if report.reason == "failures":
        stderr.print(f"error: {report.message}")
        return 1
    return 0


def _run_processes(url: str, name: str, jobs: int, *, n_trials, timeout, quiet, as_json, heartbeat_interval, grace_period) -> int:  # noqa: ANN001
    """Start `jobs` single-process workers, show the study's progress, forward SIGTERM/SIGINT to them."""
    spec = require_study(url, name)
    total = n_trials or spec.study.n_trials
    env = dict(os.environ, TUNER_STORAGE=url)  # the URL goes by environment: argv is visible in `ps`
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env.update({var: threads for var in BLAS_THREAD_VARS})
    args = [sys.executable, "-m", "tuner", "worker", name, "--jobs", "1", "--quiet",
            "--heartbeat-interval", str(heartbeat_interval), "--grace-period", str(grace_period)]
    if n_trials is not None:
        args += ["--n-trials", str(n_trials)]
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    children = [subprocess.Popen(args, env=env) for _ in range(jobs)]
    stopping = threading.Event()

    def forward(signum: int, frame: object) -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    engine = make_engine(url)
    study = load_optuna_study(url, name)
    with TrialProgress(total, f"{name} ({jobs} workers)", quiet=quiet or as_json) as progress:
        last = None
        while any(child.poll() is None for child in children):
            counts = trial_state_counts(engine, name)
            finished = sum(counts.get(s, 0) for s in FINISHED)
            if finished != last:
                last = finished
                try:
                    best = study.best_value
                except ValueError:
                    best = None
                progress.update(finished, best, counts)
            time.sleep(0.5)
    codes = [child.wait() for child in children]
    if as_json:
        typer.echo(json.dumps({"study": name, "jobs": jobs, "exit_codes": codes,
                               "counts": trial_state_counts(engine, name)}))
    return max(codes)


def worker(
    name: Annotated[str, typer.Argument(help="The study's name.")],
    storage: StorageOption = None,
    n_trials: NTrialsOption = None,
    timeout: TimeoutOption = None,
    jobs: JobsOption = 1,
    heartbeat_interval: HeartbeatOption = 10,
    grace_period: GraceOption = 60,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run trials of a study until it has N finished trials in all, then exit.

    Start as many workers as you like, on as many machines, against one database: N is the study's total
    across all of them. SIGTERM or Ctrl-C stops a worker cleanly (its running trial is failed and queued
    again). A killed worker's trial is failed after --grace-period and retried by the others.

    Example: tuner worker digits-mlp --storage postgresql+psycopg://tuner@db/tuner --jobs 2
    """
    url = storage_url(storage)
    options = dict(n_trials=n_trials, timeout=timeout, quiet=quiet, as_json=as_json,
                   heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    code = _run_processes(url, name, jobs, **options) if jobs > 1 else _run_here(url, name, **options)
    raise typer.Exit(code)


def run(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="A study spec file (TOML).")],
    name: Annotated[str | None, typer.Option("--name", help="Study name (default: the spec's study.name).")] = None,
    storage: StorageOption = None,
    n_trials: NTrialsOption = None,
    timeout: TimeoutOption = None,
    jobs: JobsOption = 1,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """The quick start: create the study from SPEC (or resume it), run a worker, print a summary.

    Example: tuner run studies/digits-mlp.toml
    """
    url = storage_url(storage)
    spec = load_spec(spec_path)
    study_name, created = create_study(url, spec, name=name, load_if_exists=True)
    if not quiet and not as_json:
        stderr.print(f"{'created' if created else 'resuming'} study '{study_name}'")
    options = dict(n_trials=n_trials, timeout=timeout, quiet=quiet, as_json=as_json,
                   heartbeat_interval=10, grace_period=60)
    code = _run_processes(url, study_name, jobs, **options) if jobs > 1 else _run_here(url, study_name, **options)
    if code == 0:
        from tuner.analysis.notes import publish  # plotly and optuna-dashboard load only here

        publish(url, study_name)  # the study's note and curve chart, for `tuner dashboard`
        if not quiet and not as_json:
            print_summary(url, study_name)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `worker` and `run` to the root app."""
    app.command("worker")(worker)
    app.command("run")(run)
