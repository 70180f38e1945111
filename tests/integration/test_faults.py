"""Faults with real processes and real databases: a database restart, trials that diverge, time out or
cannot run, workers killed and cleaned up after."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.integration.conftest import (
    start_worker,
    tuner_cmd,
    wait_for,
    wait_until_training,
)
from tuner.storage import list_workers, load_curves, make_engine, trial_state_counts
from tuner.study.stale import UNBEATEN_REASON

pytestmark = pytest.mark.slow

SPEC = """[study]
name = "{name}"
objective = "val_accuracy"
n_trials = {n_trials}
seed = {seed}
sampler = "random"
pruner = "none"
{extra}
[data]
source = "synthetic_classification"

[model]
hidden = {hidden}

[train]
epochs = {epochs}
batch_size = 32

[search]
optimizer = "sgd"
eps0 = {{ low = {low}, high = {high}, log = true }}
init_scale = 1.0            # no probe: these tests are about faults, not the search
"""


def write_spec(tmp_path: Path, name: str, *, n_trials: int, epochs: int, seed: int = 1, low: float = 1e-3,
               high: float = 0.1, extra: str = "", hidden: str = "[16]") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, n_trials=n_trials, epochs=epochs, seed=seed, low=low, high=high, extra=extra,
                                hidden=hidden))
    return path


def create(url: str, spec: Path) -> None:
    subprocess.run(tuner_cmd("study", "create", str(spec), "--storage", url, "--quiet"), check=True)


def trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def assert_whole(url: str, name: str, total: int) -> list[optuna.trial.FrozenTrial]:
    """Exactly `total` COMPLETE trials, unique numbers, nothing left running, a full curve for each."""
    finished = trials(url, name)
    numbers = [t.number for t in finished]
    assert len(numbers) == len(set(numbers))
    assert sum(t.state == TrialState.COMPLETE for t in finished) == total
    assert not [t for t in finished if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    epochs: dict[int, int] = {}
    for row in load_curves(make_engine(url), name):
        epochs[row["trial_number"]] = epochs.get(row["trial_number"], 0) + 1
    for t in finished:
        if t.state == TrialState.COMPLETE:
            assert epochs.get(t.number) == 3, t.number
    return finished


# ---- the database restarts -----------------------------------------------------------------------------

def _cluster() -> tuple[str, str] | None:
    root = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or not root.is_dir():
        return None
    for version in sorted(root.iterdir(), reverse=True):
        for cluster in sorted(version.iterdir()):
            return version.name, cluster.name
    return None


@pytest.mark.postgres
@pytest.mark.pg_restart
@pytest.mark.skipif(os.environ.get("TUNER_TEST_PG_RESTART") != "1",
                    reason="restarts the local PostgreSQL server: set TUNER_TEST_PG_RESTART=1 to run it (CI does)")
def test_workers_ride_out_a_postgresql_restart_and_the_total_holds(pg_url, tmp_path):
    cluster = _cluster()
    if cluster is None:
        pytest.skip("no local PostgreSQL cluster to restart (pg_ctlcluster)")
    total = 60
    create(pg_url, write_spec(tmp_path, "restart", n_trials=total, epochs=3, hidden="[256, 256]"))
    engine = make_engine(pg_url)
    args = ("restart", "--quiet", "--heartbeat-interval", "1", "--grace-period", "20")
    workers = [start_worker(pg_url, *args) for _ in range(2)]
    wait_for(lambda: trial_state_counts(engine, "restart").get("COMPLETE", 0) >= 5, timeout=120)
    restarted = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"],
                               capture_output=True, text=True, timeout=60)
    assert restarted.returncode == 0, restarted.stderr
    assert trial_state_counts(engine, "restart").get("COMPLETE", 0) < total  # the restart came mid-study
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (_, err) in zip(workers, outputs):
        if worker.returncode != 0:  # allowed: one clear line, and a restart finishes the study
            assert worker.returncode == 75 and "Traceback" not in err and err.count("\n") == 1, err
            assert err.startswith("error: lost the database connection"), err
    if any(w.returncode != 0 for w in workers):
        again = start_worker(pg_url, *args)
        _, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
    finished = assert_whole(pg_url, "restart", total)
    lost = [t for t in finished if t.state == TrialState.FAIL]
    for t in lost:  # a trial cut by the restart is failed with the reason, and a copy of it completed
        # by the worker that lost the connection, or (claimed just as the server went down, so it never
        # got a heartbeat) by another worker after the grace period
        reason = t.user_attrs["reason"]
        assert reason.startswith("lost the database connection: ") or reason == UNBEATEN_REASON, t.user_attrs
        assert "Traceback" not in t.user_attrs["reason"] and "\n" not in t.user_attrs["reason"]
        copies = [c for c in finished if c.system_attrs.get("failed_trial") == t.number]
        assert len(copies) == 1, (t, copies)
        if t.params:  # cut after its parameters were stored: the copy retries them
            assert copies[0].params == t.params, (t, copies)
    assert {r.status for r in list_workers(engine, "restart")} <= {"stopped", "failed"}


# ---- trials that diverge, time out, or cannot run ----------------------------------------------------

def test_diverged_and_timed_out_trials_are_recorded_and_the_worker_finishes(sqlite_url, tmp_path):
    # Seed 3 of the random sampler proposes eps0 = 20, 177, 0.56, 11.6: three runs blow up in epoch 1
    # (PRUNED, diverged) and the stable one cannot finish 3000 epochs in its 1 s budget (FAIL, timeout).
    spec = write_spec(tmp_path, "mixed", n_trials=3, epochs=3000, seed=3, low=1e-2, high=1e4,
                      extra="time_budget = 1.0\n")
    create(sqlite_url, spec)
    worker = start_worker(sqlite_url, "mixed", "--quiet")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert err == ""
    by_state: dict[TrialState, list] = {}
    for t in trials(sqlite_url, "mixed"):
        by_state.setdefault(t.state, []).append(t)
    assert len(by_state[TrialState.PRUNED]) == 3
    for t in by_state[TrialState.PRUNED]:
        assert t.user_attrs["diverged"] is True
        assert re.fullmatch(r"diverged: loss \S+ at epoch 1, batch \d+ exceeds 1000 x the first batch's loss \(\S+\)",
                            t.user_attrs["reason"]), t.user_attrs["reason"]
    (timed_out,) = by_state[TrialState.FAIL]
    # a busy host (load above its cores) is named as the likely cause
    busy = r"(; the host was overloaded \(load \d+\.\d on \d+ cores\): the time budget may be too tight for it)?"
    # checked at an epoch's end, or inside one every few minibatches
    when = r"(after \d+ epochs|during epoch \d+ \(after \d+ minibatches\))"
    assert re.fullmatch(r"timeout: time budget of 1 s exceeded " + when + r" \(1\.\d s\)" + busy,
                        timed_out.user_attrs["reason"]), timed_out.user_attrs["reason"]
    assert "diverged" not in timed_out.user_attrs
    assert set(by_state) == {TrialState.PRUNED, TrialState.FAIL}


def test_a_worker_whose_every_trial_fails_stops_after_five_with_the_reason(sqlite_url, tmp_path):
    spec = write_spec(tmp_path, "hopeless", n_trials=10, epochs=100000, extra="time_budget = 0.05\n")
    create(sqlite_url, spec)
    worker = start_worker(sqlite_url, "hopeless", "--quiet")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 1
    assert re.fullmatch(r"error: 5 trials in a row failed; the last: timeout: time budget of 0\.05 s exceeded "
                        r"(after \d+ epochs|during epoch \d+ \(after \d+ minibatches\)) "
                        r"\(\d+\.\d s\)(; the host was overloaded \(load \d+\.\d on \d+ cores\): "
                        r"the time budget may be too tight for it)?\n", err), err
    counts = trial_state_counts(make_engine(sqlite_url), "hopeless")
    assert counts == {"FAIL": 5}
    (row,) = list_workers(make_engine(sqlite_url), "hopeless")
    assert row.status == "failed" and row.message == err.removeprefix("error: ").strip()


# ---- dead workers, heartbeats and cleanup --------------------------------------------------------------

def test_a_live_worker_refreshes_last_seen_during_a_long_trial(sqlite_url, tmp_path):
    create(sqlite_url, write_spec(tmp_path, "alive", n_trials=1, epochs=100000))
    engine = make_engine(sqlite_url)
    worker = start_worker(sqlite_url, "alive", "--quiet", "--heartbeat-interval", "1")
    try:
        wait_for(lambda: trial_state_counts(engine, "alive").get("RUNNING", 0) == 1)
        (first,) = list_workers(engine, "alive")
        time.sleep(2.5)
        (later,) = list_workers(engine, "alive")
        assert later.trials_done == 0 and later.status == "running"
        assert (later.last_seen - first.last_seen).total_seconds() >= 1
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)


def test_a_trial_claimed_but_never_beaten_is_failed_and_requeued_by_the_next_worker(sqlite_url, tmp_path):
    # A worker that dies (or loses the database) between `ask` and its first heartbeat leaves a RUNNING trial
    # that Optuna's stale check never sees; the next worker fails it after the grace period.
    create(sqlite_url, write_spec(tmp_path, "orphan", n_trials=2, epochs=3))
    orphan = optuna.load_study(study_name="orphan", storage=sqlite_url).ask()  # claimed, no heartbeat row
    time.sleep(1.5)
    worker = start_worker(sqlite_url, "orphan", "--quiet", "--heartbeat-interval", "1", "--grace-period", "1")
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err

    finished = assert_whole(sqlite_url, "orphan", 2)
    by_number = {t.number: t for t in finished}
    assert by_number[orphan.number].state == TrialState.FAIL
    assert by_number[orphan.number].user_attrs["reason"] == UNBEATEN_REASON
    copies = [t for t in finished if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(copies) == 1 and copies[0].state == TrialState.COMPLETE


def test_cleanup_fails_a_killed_workers_trial_requeues_it_and_marks_the_worker_failed(storage_url, tmp_path):
    create(storage_url, write_spec(tmp_path, "dead", n_trials=2, epochs=100000))
    engine = make_engine(storage_url)
    victim = start_worker(storage_url, "dead", "--quiet", "--heartbeat-interval", "1")
    wait_until_training(storage_url, "dead")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    (running,) = [t for t in trials(storage_url, "dead") if t.state == TrialState.RUNNING]

    def cleanup(grace: int) -> subprocess.CompletedProcess:
        return subprocess.run(tuner_cmd("study", "cleanup", "dead", "--storage", storage_url, "--grace-period", str(grace)),
                              capture_output=True, text=True, timeout=60)

    early = cleanup(60)  # the worker was seen within the grace period: it may be alive, nothing is touched
    assert early.returncode == 1 and early.stdout == ""
    assert early.stderr.startswith("error: 1 worker(s) of study 'dead' look alive (")
    assert early.stderr.endswith("); stop them first, or add --force to clean it up anyway\n")
    assert list_workers(engine, "dead")[0].status == "running"
    assert [t.state for t in trials(storage_url, "dead")].count(TrialState.RUNNING) == 1

    time.sleep(3)
    result = cleanup(2)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"failed and re-queued 1 stale trials: [{running.number}]\n"
    by_number = {t.number: t for t in trials(storage_url, "dead")}
    assert by_number[running.number].state == TrialState.FAIL
    copies = [t for t in by_number.values() if t.system_attrs.get("failed_trial") == running.number]
    assert len(copies) == 1 and copies[0].state == TrialState.WAITING
    assert copies[0].params == running.params
    (row,) = list_workers(engine, "dead")
    assert row.status == "failed" and row.stopped_at is not None
    assert row.message == "not seen for 2 s: marked failed by 'tuner study cleanup'"
