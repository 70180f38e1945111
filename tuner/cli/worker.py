"""`tuner worker NAME` and `tuner run SPEC`: run a study's trials in one or more processes."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from tuner.cli._common import (
    JsonOption,
    NameArgument,
    Output,
    QuietOption,
    SpecArgument,
    StorageOption,
    StudyNameOption,
    quiet_optuna,
    stderr,
    storage_url,
    to_json,
)
from tuner.study.limits import (
    MAX_DURATION_S,
    MAX_GRACE_S,
    MAX_HEARTBEAT_S,
    MAX_JOBS,
    MAX_TRIALS,
)
from tuner.text import printable

if TYPE_CHECKING:  # SQLAlchemy, Optuna and NumPy load when a worker starts, not for --help
    from tuner.study.worker.options import WorkerOptions

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


def _run_workers(url: str, name: str, jobs: int, options: WorkerOptions, output: Output) -> tuple[int, dict]:
    """One worker in this process, or `jobs` worker processes; returns the exit code and what ran, for --json."""
    quiet_optuna()
    if jobs > 1:
        return _run_processes(url, name, jobs, options, output)
    return _run_here(url, name, options, output)


def _run_here(url: str, name: str, options: WorkerOptions, output: Output) -> tuple[int, dict]:
    from tuner import stop
    from tuner.cli._progress import TrialProgress
    from tuner.study.catalog import require_study
    from tuner.study.worker import run_worker
    from tuner.study.worker.supervisor import follow_supervisor

    follow_supervisor(lambda: stop.requested.set())
    total = options.n_trials or require_study(url, name).total
    with TrialProgress(total, name, quiet=not output.human) as progress:
        report = run_worker(
            url,
            name,
            stop=stop.requested,
            on_progress=progress.update,
            install_interrupt=lambda interrupt: stop.forward_to(interrupt.interrupt),
            **asdict(options),
        )
    output.note(f"worker {report.worker_id}: ran {report.trials_run} trials, ended: {report.reason}")
    ran = {"worker_id": report.worker_id, "trials_run": report.trials_run, "states": report.states,
           "reason": report.reason, "message": report.message}
    if report.reason == "failures":
        stderr.print(f"error: {printable(report.message)}")
        return 1, ran
    return 0, ran


def _run_processes(url: str, name: str, jobs: int, options: WorkerOptions, output: Output) -> tuple[int, dict]:
    """Start `jobs` single-process workers, show the study's progress, forward SIGTERM/SIGINT to them."""
    from tuner import stop
    from tuner.cli._progress import TrialProgress
    from tuner.storage import open_storage, trial_state_counts
    from tuner.study.catalog import require_study
    from tuner.study.worker.supervisor import Supervisor
    from tuner.study.worker.threads import host_cores

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
    with TrialProgress(total, f"{name} ({jobs} workers)", quiet=not output.human) as progress:
        code = supervisor.watch(total, progress.update)
    return code, {"jobs": jobs, "exit_code": code, "counts": trial_state_counts(open_storage(url), name)}


def worker(
    name: NameArgument,
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
    again). A killed worker's trial is failed after --grace-period and retried by the others. The progress
    line shows the time spent, an estimate of the time left, and why each failed trial failed.

    Example: tuner worker digits-mlp --storage postgresql+psycopg://tuner@db/tuner --jobs 2
    """
    from tuner.study.worker.options import WorkerOptions

    output = Output(quiet, as_json)
    options = WorkerOptions(n_trials=n_trials, timeout=timeout, threads=threads,
                            heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    code, ran = _run_workers(storage_url(storage), name, jobs, options, output)
    output.emit({"study": name, **ran})
    raise typer.Exit(code)


def run(
    spec_path: SpecArgument,
    name: StudyNameOption = None,
    storage: StorageOption = None,
    n_trials: NTrialsOption = None,
    timeout: TimeoutOption = None,
    jobs: JobsOption = 1,
    threads: ThreadsOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """The quick start: create the study from SPEC (or resume it), run a worker, print a summary.

    With --json: one document with what ran, the best trial (number, value, params) and the summary per
    optimizer (the fields of `tuner study show --json`).

    Example: tuner run studies/digits-mlp.toml --json
    """
    from tuner.study.create import create_study
    from tuner.study.spec import load_spec
    from tuner.study.worker.options import WorkerOptions

    output = Output(quiet, as_json)
    quiet_optuna()
    url = storage_url(storage)
    study_name, created = create_study(url, load_spec(spec_path), name=name, load_if_exists=True)
    output.note(f"{'created' if created else 'resuming'} study '{printable(study_name)}'")
    options = WorkerOptions(n_trials=n_trials, timeout=timeout, threads=threads)
    code, ran = _run_workers(url, study_name, jobs, options, output)
    overview = _finish(url, study_name) if code == 0 else None
    if overview is not None:
        from tuner.cli.summary import print_overview

        output.emit({**overview, "created": created, "run": ran}, lambda: print_overview(study_name, overview))
    elif as_json:
        typer.echo(to_json({"study": study_name, "created": created, "run": ran}))
    raise typer.Exit(code)


def _finish(url: str, study_name: str) -> dict:
    """The study's overview. Its dashboard note and chart are written by `tuner dashboard` (at its start and
    at every refresh), not here: optuna-dashboard and plotly take over a second to import."""
    from tuner.analysis.overview import study_overview
    from tuner.storage import open_study

    return study_overview(open_study(url, study_name))


def register(app: typer.Typer) -> None:
    """Add `worker` and `run` to the root app."""
    app.command("worker")(worker)
    app.command("run")(run)
