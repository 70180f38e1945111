"""Workers as real processes on a real database: the study total, killed workers, clean stops."""

from __future__ import annotations

import signal
import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from tests.integration.conftest import start_worker, tuner_cmd, wait_until_training
from tuner.storage import make_engine, trial_state_counts

pytestmark = pytest.mark.slow


def create(url: str, spec) -> None:
    subprocess.run(tuner_cmd("study", "create", str(spec), "--storage", url, "--quiet"), check=True)


def trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


@pytest.mark.postgres
def test_three_workers_complete_exactly_the_study_total(pg_url, write_spec):
    spec = write_spec("exact", n_trials=12, epochs=2)
    create(pg_url, spec)
    workers = [start_worker(pg_url, "exact", "--quiet") for _ in range(3)]
    outputs = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs

    finished = trials(pg_url, "exact")
    assert sum(t.state == TrialState.COMPLETE for t in finished) == 12
    assert not [t for t in finished if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    numbers = [t.number for t in finished]
    assert len(numbers) == len(set(numbers))
    # every worker took part, and the workers table says so
    from tuner.storage import list_workers

    rows = list_workers(make_engine(pg_url), "exact")
    assert len(rows) == 3
    assert sum(r.trials_done for r in rows) == len(finished)
    assert {r.status for r in rows} == {"stopped"}


@pytest.mark.postgres
def test_a_killed_workers_trial_is_failed_retried_and_the_total_still_holds(pg_url, write_spec):
    spec = write_spec("killed", n_trials=4, epochs=150)
    create(pg_url, spec)
    victim = start_worker(pg_url, "killed", "--quiet", "--heartbeat-interval", "1", "--grace-period", "3")
    wait_until_training(pg_url, "killed")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    running = [t for t in trials(pg_url, "killed") if t.state == TrialState.RUNNING]
    assert len(running) == 1
    killed = running[0]

    rescuer = start_worker(pg_url, "killed", "--quiet", "--heartbeat-interval", "1", "--grace-period", "3",
                           "--n-trials", "2")
    out, err = rescuer.communicate(timeout=300)
    assert rescuer.returncode == 0, err

    by_number = {t.number: t for t in trials(pg_url, "killed")}
    assert by_number[killed.number].state == TrialState.FAIL
    retries = [t for t in by_number.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1
    assert retries[0].params == killed.params
    assert retries[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in by_number.values()) == 2


def test_sigterm_fails_the_running_trial_requeues_it_and_exits_zero(sqlite_url, write_spec):
    spec = write_spec("term", n_trials=3, epochs=2000)
    create(sqlite_url, spec)
    engine = make_engine(sqlite_url)
    worker = start_worker(sqlite_url, "term", "--quiet")
    wait_until_training(sqlite_url, "term")
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=15)
    assert worker.returncode == 0, err

    counts = trial_state_counts(engine, "term")
    assert counts.get("RUNNING", 0) == 0
    assert counts.get("FAIL") == 1 and counts.get("WAITING") == 1
    failed = next(t for t in trials(sqlite_url, "term") if t.state == TrialState.FAIL)
    assert failed.user_attrs["reason"].startswith("worker stopped by SIGTERM")
    from tuner.storage import list_workers

    (row,) = list_workers(engine, "term")
    assert row.status == "stopped"
