"""`tuner worker NAME` and `tuner run SPEC`: run a study's trials in one or more processes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from tuner import stop
from tuner.cli._common import (
    JsonOption,
    QuietOption,
    StorageOption,
    TrialProgress,
    stderr,
    storage_url,
)
from tuner.cli.study import print_summary
from tuner.storage import open_storage, open_study, trial_state_counts
from tuner.study.catalog import require_study
from tuner.study.create import create_study
from tuner.study.limits import (
    MAX_DURATION_S,
    MAX_GRACE_S,
    MAX_HEARTBEAT_S,
    MAX_JOBS,
    MAX_TRIALS,
)
from tuner.study.spec import load_spec
from tuner.study.worker import WorkerOptions, run_worker
from tuner.study.worker.supervisor import Supervisor, follow_supervisor
from tuner.study.worker.threads import host_cores
from tuner.text import printable

NTrialsOption = Annotated[
    int | None,
    typer.Option("--n-trials", "-n", min=1, max=MAX_TRIALS, help="The study's total of finished trials across ALL "
                 "workers (default: the spec's study.n_trials).", show_default=False),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", min=0, max=MAX_DURATION_S, help="Stop claiming new trials after this many seconds."),
]
JobsOption = Annotated[
    int, typer.Option("--jobs", "-j", min=1, max=MAX_JOBS, help="Worker processes to start here; the BLAS threads "
                      f"are split between them. At most {MAX_JOBS}: 4 x this machine's cores.")
]
HeartbeatOption = Annotated[
    int, typer.Option("--heartbeat-interval", min=1, max=MAX_HEARTBEAT_S,
                      help="Seconds between a running trial's heartbeats.")
]
ThreadsOption = Annotated[
    int | None,
    typer.Option("--threads", min=1, show_default=False,
                 help="BLAS threads per worker process (default: a share of this host's cores, from the live "
                      "workers the database records here; with --jobs J, cores / J)."),
]
GraceOption = Annotated[
    int, typer.Option("--grace-period", min=1, max=MAX_GRACE_S,
                      help="Seconds without a heartbeat before a trial counts as dead.")
]



@dataclass(frozen=True)
class _Output:
    quiet: bool
    as_json: bool

    @property
    def progress(self) -> bool:
        return not (self.quiet or self.as_json)


def _run_workers(url: str, name: str, jobs: int, options: WorkerOptions, output: _Output) -> int:
    """One worker in this process, or `jobs` worker processes; returns the exit code."""
    if jobs > 1:
        return _run_processes(url, name, jobs, options, output)
    return _run_here(url, name, options, output)


def _run_here(url: str, name: str, options: WorkerOptions, output: _Output) -> int:
    follow_supervisor(lambda: stop.requested.set())
    total = options.n_trials or require_study(url, name).total
    with TrialProgress(total, name, quiet=not output.progress) as progress:
        report = run_worker(
            url,
            name,
            stop=stop.requested,
            on_progress=lambda p: progress.update(p.finished, p.best, p.counts),
            install_interrupt=lambda interrupt: stop.forward_to(interrupt.interrupt),
            **asdict(options),
        )
    if output.as_json:
        typer.echo(json.dumps({"study": name, "worker_id": report.worker_id, "trials_run": report.trials_run,
                               "states": report.states, "reason": report.reason, "message": report.message}))
    elif not output.quiet:
        stderr.print(f"worker {report.worker_id}: ran {report.trials_run} trials, ended: {report.reason}")
    if report.reason == "failures":
        stderr.print(f"error: {printable(report.message)}")
        return 1
    return 0


def _run_processes(url: str, name: str, jobs: int, options: WorkerOptions, output: _Output) -> int:
    """Start `jobs` single-process workers, show the study's progress, forward SIGTERM/SIGINT to them."""
    total = options.n_trials or require_study(url, name).total
    args = ["--heartbeat-interval", str(options.heartbeat_interval), "--grace-period", str(options.grace_period)]
    if options.n_trials is not None:
        args += ["--n-trials", str(options.n_trials)]
    if options.timeout is not None:
        args += ["--timeout", str(options.timeout)]
    args += ["--threads", str(options.threads or max(1, host_cores() // jobs))]
    supervisor = Supervisor(url, name, jobs, args)
    supervisor.start()
    stop.forward_to(lambda reason: supervisor.stop())
    with TrialProgress(total, f"{name} ({jobs} workers)", quiet=not output.progress) as progress:
        code = supervisor.watch(total, lambda p: progress.update(p.finished, p.best, p.counts))
    if output.as_json:
        typer.echo(json.dumps({"study": name, "jobs": jobs, "exit_code": code,
                               "counts": trial_state_counts(open_storage(url), name)}))
    return code


def worker(
    name: Annotated[str, typer.Argument(help="The study's name.")],
    storage: StorageOption = None,
    n_trials: NTrialsOption = None,
    timeout: TimeoutOption = None,
    jobs: JobsOption = 1,
    threads: ThreadsOption = None,
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
    options = WorkerOptions(n_trials=n_trials, timeout=timeout, threads=threads,
                            heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    raise typer.Exit(_run_workers(storage_url(storage), name, jobs, options, _Output(quiet, as_json)))


def run(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="A study spec file (TOML).")],
    name: Annotated[str | None, typer.Option("--name", help="Study name (default: the spec's study.name).")] = None,
    storage: StorageOption = None,
    n_trials: NTrialsOption = None,
    timeout: TimeoutOption = None,
    jobs: JobsOption = 1,
    threads: ThreadsOption = None,
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
        stderr.print(f"{'created' if created else 'resuming'} study '{printable(study_name)}'")
    options = WorkerOptions(n_trials=n_trials, timeout=timeout, threads=threads)
    code = _run_workers(url, study_name, jobs, options, _Output(quiet, as_json))
    if code == 0:
        from tuner.analysis.notes import (
            publish,  # plotly and optuna-dashboard load only here
        )

        publish(open_study(url, study_name))  # the study's note and curve chart, for `tuner dashboard`
        if not quiet and not as_json:
            print_summary(url, study_name)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `worker` and `run` to the root app."""
    app.command("worker")(worker)
    app.command("run")(run)
