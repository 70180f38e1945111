"""Fixtures for tests that run real worker processes against real databases."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from pathlib import Path


def tuner_cmd(*args: str) -> list[str]:
    """The `tuner` console script of the running interpreter's environment."""
    return [sys.executable, "-m", "tuner", *args]


def tuner_in_process(*args: str) -> subprocess.CompletedProcess:
    """The same root command as a `tuner` process, run in this one (no ~2 s interpreter start-up), without
    TUNER_STORAGE; an exception that escaped the CLI is appended to stderr as the process would print it."""
    from typer.testing import CliRunner

    from tuner.cli import app

    result = CliRunner().invoke(app, list(args), prog_name="tuner", env={"TUNER_STORAGE": None})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, stderr)


def start_worker(url: str, *args: str, cwd: Path | None = None) -> subprocess.Popen:
    """A real worker process; the URL goes by environment, as the CLI's own --jobs does."""
    env = dict(os.environ, TUNER_STORAGE=url, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen(
        tuner_cmd("worker", *args), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2) -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def wait_until_training(url: str, study_name: str, timeout: float = 60.0) -> None:
    """Wait until a RUNNING trial is training: all its parameters are suggested and stored (its `config`
    attribute is written right after the last suggestion; its epochs' reports are written together, at
    most every second, so they are no sign of an early epoch).

    Killing a worker before that would catch it half-way through suggesting, and a retried trial would
    rightly sample the parameters the killed one never had.
    """
    import optuna
    from optuna.trial import TrialState

    def training() -> bool:
        study = optuna.load_study(study_name=study_name, storage=url)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return any("config" in t.user_attrs for t in running)

    wait_for(training, timeout=timeout)
