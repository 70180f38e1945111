"""A fleet under faults, with real processes, real signals and real databases: a paused lock holder, a stop
while waiting, lifecycle races (delete, cleanup, a long pause, an interrupted create, two creators at once),
errors that do not heal, and the `--jobs` supervisor's children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from tests.integration.conftest import (
    start_worker,
    tuner_cmd,
    wait_for,
    wait_until_training,
)
from tuner.storage import (
    get_study,
    list_workers,
    load_curves,
    make_engine,
    trial_state_counts,
)
from tuner.storage.engine import IDLE_IN_TRANSACTION_S

pytestmark = pytest.mark.slow

SPEC = """[study]
name = "{name}"
n_trials = {n_trials}
seed = 2
sampler = "random"
pruner = "none"
[data]
source = "synthetic_classification"
[model]
hidden = [16]
[train]
epochs = {epochs}
batch_size = 64
[search]
optimizer = "sgd"
eps0 = {{ low = 1e-3, high = 0.1, log = true }}
init_scale = 1.0            # no probe: these tests are about faults, not the search
"""

# Takes the study's claim lock in a process of its own, says so, then pauses itself (SIGSTOP) or sleeps.
HOLDER = """
import os, signal, sys, time
from tuner.storage import make_engine, study_lock
url, name, how = sys.argv[1:4]
with study_lock(make_engine(url), name, max_hold_s=None if how == "sleep" else 15):
    print("held", flush=True)
    if how == "pause":
        os.kill(os.getpid(), signal.SIGSTOP)
    time.sleep(120)
"""


def create(url: str, tmp_path: Path, name: str, *, n_trials: int = 4, epochs: int = 3) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, n_trials=n_trials, epochs=epochs))
    created = subprocess.run(tuner_cmd("study", "create", str(path), "--storage", url, "--quiet"),
                             capture_output=True, text=True)
    assert created.returncode == 0, created.stderr


def trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def assert_exactly(url: str, name: str, total: int) -> list[optuna.trial.FrozenTrial]:
    """`total` finished trials, unique numbers, none RUNNING or WAITING, no reason on a complete one."""
    found = trials(url, name)
    assert len({t.number for t in found}) == len(found)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in found) == total
    assert not [t for t in found if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert not [t for t in found if t.state == TrialState.COMPLETE and "reason" in t.user_attrs]
    return found


def hold_lock(url: str, name: str, how: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, name, how], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    if how == "pause":
        wait_for(lambda: Path(f"/proc/{holder.pid}/stat").read_text().split()[2] == "T", timeout=10)
    return holder


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return process.returncode, err


# ---- 1. one stuck worker must not stall the fleet --------------------------------------------------------

@pytest.mark.postgres
def test_a_paused_lock_holder_stalls_the_others_for_seconds_and_the_total_holds(pg_url, tmp_path):
    create(pg_url, tmp_path, "stall", n_trials=6)
    holder = hold_lock(pg_url, "stall", "pause")  # as a worker paused (SIGSTOP, a sleeping laptop) mid-claim
    try:
        started = time.monotonic()
        workers = [start_worker(pg_url, "stall", "--quiet") for _ in range(2)]
        wait_for(lambda: sum(trial_state_counts(make_engine(pg_url), "stall").values()) > 0, timeout=60)
        stalled = time.monotonic() - started
        # the server ends the paused holder's transaction after IDLE_IN_TRANSACTION_S; a waiter retries every
        # second; process start-up is ~2-4 s of it
        assert stalled < IDLE_IN_TRANSACTION_S + 10, stalled
        assert [finish(w)[0] for w in workers] == [0, 0]
    finally:
        holder.kill()
        holder.wait()
    assert_exactly(pg_url, "stall", 6)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_sigterm_ends_a_worker_waiting_for_the_lock_within_seconds(backend, request, tmp_path):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    create(url, tmp_path, "waiting")
    holder = hold_lock(url, "waiting", "sleep")  # a live holder that never lets go
    try:
        worker = start_worker(url, "waiting", "--quiet")
        wait_for(lambda: len(list_workers(make_engine(url), "waiting")) == 1, timeout=60)
        time.sleep(1.5)  # it is in its claim now, waiting for the lock
        worker.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code, _ = finish(worker, timeout=30)
        assert time.monotonic() - sent < 4
    finally:
        holder.kill()
        holder.wait()
    assert code == 0
    assert trials(url, "waiting") == []  # it never got the lock, so it claimed nothing
    assert [w.status for w in list_workers(make_engine(url), "waiting")] == ["stopped"]


# ---- 2. lifecycle races ----------------------------------------------------------------------------------

def test_delete_refuses_while_workers_run_and_with_force_stops_them_and_leaves_nothing(sqlite_url, tmp_path):
    create(sqlite_url, tmp_path, "doomed", n_trials=50, epochs=200)
    worker = start_worker(sqlite_url, "doomed", "--quiet", "--heartbeat-interval", "1")
    wait_until_training(sqlite_url, "doomed")
    refused = subprocess.run(tuner_cmd("study", "delete", "doomed", "--yes", "--storage", sqlite_url),
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "add --force to delete it anyway" in refused.stderr
    assert get_study(make_engine(sqlite_url), "doomed") is not None
    forced = subprocess.run(tuner_cmd("study", "delete", "doomed", "--yes", "--force", "--storage", sqlite_url),
                            capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr
    code, err = finish(worker, timeout=60)
    assert (code, err) == (1, "error: study 'doomed' was deleted while this worker ran; it stopped\n")
    create(sqlite_url, tmp_path, "doomed", n_trials=1, epochs=1)  # the same name again starts clean
    assert load_curves(make_engine(sqlite_url), "doomed") == []
    assert list_workers(make_engine(sqlite_url), "doomed") == []
    with make_engine(sqlite_url).connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM tuner_curves").scalar() == 0


@pytest.mark.postgres
def test_a_worker_whose_trial_was_failed_while_it_was_paused_says_so_and_goes_on(pg_url, tmp_path):
    create(pg_url, tmp_path, "paused", n_trials=4, epochs=2000)  # trials of seconds: the study outlasts the pause
    args = ("--heartbeat-interval", "1", "--grace-period", "3")
    sleeper = start_worker(pg_url, "paused", *args)
    wait_until_training(pg_url, "paused")
    (taken,) = [t for t in trials(pg_url, "paused") if t.state == TrialState.RUNNING]
    sleeper.send_signal(signal.SIGSTOP)
    other = start_worker(pg_url, "paused", *args, "--quiet")
    wait_for(lambda: trials(pg_url, "paused")[taken.number].state == TrialState.FAIL, timeout=60)

    def sleepers_row() -> str:
        return list_workers(make_engine(pg_url), "paused")[0].status  # the first registered

    wait_for(lambda: sleepers_row() == "failed", timeout=60)  # swept by the other as dead
    sleeper.send_signal(signal.SIGCONT)
    wait_for(lambda: sleepers_row() == "running", timeout=30)  # alive after all: its next beat says so
    codes = [finish(w, timeout=300) for w in (sleeper, other)]
    assert [c for c, _ in codes] == [0, 0], codes
    assert f"trial {taken.number} was finished by another process" in codes[0][1]
    found = assert_exactly(pg_url, "paused", 4)
    copies = [t for t in found if t.system_attrs.get("failed_trial") == taken.number]
    assert len(copies) == 1 and copies[0].params == taken.params


def test_cleanup_with_force_fails_a_live_workers_trial_and_the_worker_carries_on(sqlite_url, tmp_path):
    create(sqlite_url, tmp_path, "live", n_trials=2, epochs=3000)  # trials of many seconds
    worker = start_worker(sqlite_url, "live", "--heartbeat-interval", "30")  # one beat, at the start
    wait_until_training(sqlite_url, "live")
    (taken,) = [t for t in trials(sqlite_url, "live") if t.state == TrialState.RUNNING]
    refused = subprocess.run(tuner_cmd("study", "cleanup", "live", "--grace-period", "1", "--storage", sqlite_url),
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "add --force to clean it up anyway" in refused.stderr
    forced = subprocess.run(tuner_cmd("study", "cleanup", "live", "--grace-period", "1", "--force", "--storage",
                                      sqlite_url), capture_output=True, text=True)
    assert forced.returncode == 0 and forced.stdout == f"failed and re-queued 1 stale trials: [{taken.number}]\n"
    # the worker notices at its next epoch, and goes on with the next trial: the queued copy
    wait_for(lambda: any(t.state == TrialState.RUNNING and t.number != taken.number
                         for t in trials(sqlite_url, "live")), timeout=120)
    worker.send_signal(signal.SIGTERM)
    code, err = finish(worker, timeout=60)
    assert code == 0 and f"trial {taken.number} was finished by another process" in err
    found = trials(sqlite_url, "live")
    assert found[taken.number].state == TrialState.FAIL
    assert not [t for t in found if t.state == TrialState.RUNNING]


def test_an_interrupted_create_is_repaired_by_the_next(sqlite_url, tmp_path):
    from tuner.storage import insert_study, open_storage, optuna_storage

    create(sqlite_url, tmp_path, "other")  # the database exists
    engine = open_storage(sqlite_url)
    # what a `study create` killed after claiming the name leaves: a 'creating' record, an Optuna study
    insert_study(engine, "half", {"study": {"n_trials": 1}}, "", None, status="creating")
    optuna.create_study(study_name="half", storage=optuna_storage(sqlite_url))
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE tuner_studies SET created_at = '2020-01-01 00:00:00' "
                                           "WHERE name = 'half'"))
    worker = subprocess.run(tuner_cmd("worker", "half", "--storage", sqlite_url), capture_output=True, text=True)
    assert worker.returncode == 1 and "its creation was interrupted" in worker.stderr
    create(sqlite_url, tmp_path, "half", n_trials=2, epochs=1)
    record = get_study(engine, "half")
    assert record.status == "ready" and record.spec["study"]["n_trials"] == 2
    assert finish(start_worker(sqlite_url, "half", "--quiet"))[0] == 0
    assert_exactly(sqlite_url, "half", 2)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_runs_started_at_once_on_a_new_database_share_one_study(backend, request, tmp_path):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    path = tmp_path / "twin.toml"
    path.write_text(SPEC.format(name="twin", n_trials=6, epochs=2))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    runs = [subprocess.Popen(tuner_cmd("run", str(path), "--storage", url, "--quiet"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    assert [finish(r)[0] for r in runs] == [0, 0]
    assert_exactly(url, "twin", 6)


# ---- 3. errors that do not heal fail fast ----------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_dropped_table_ends_the_worker_in_seconds_with_one_line(backend, request, tmp_path):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    create(url, tmp_path, "dropped", n_trials=50, epochs=100)
    worker = start_worker(url, "dropped", "--quiet")
    wait_until_training(url, "dropped")
    with make_engine(url).begin() as connection:
        connection.exec_driver_sql("DROP TABLE tuner_curves")
    dropped = time.monotonic()
    code, err = finish(worker, timeout=60)
    assert time.monotonic() - dropped < 20  # not a minute of retries per trial
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: the database failed while "), err
    assert "tuner_curves" in err
    assert trial_state_counts(make_engine(url), "dropped").get("RUNNING", 0) == 0
    assert [w.status for w in list_workers(make_engine(url), "dropped")] == ["failed"]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MiB tmpfs to fill up; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_ends_the_worker_and_leaves_nothing_claiming_to_run(small_disk, tmp_path):
    url = f"sqlite:///{small_disk / 'tuner.db'}"
    create(url, tmp_path, "full", n_trials=1000, epochs=5)
    worker = start_worker(url, "full", "--quiet")
    wait_until_training(url, "full")
    filler = small_disk / "filler"
    with open(filler, "wb") as f:  # take every free byte
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    code, err = finish(worker, timeout=90)
    assert code == 1 and err.count("\n") == 1 and "database or disk is full" in err, err
    filler.unlink()  # space back: read what was left
    counts = trial_state_counts(make_engine(url), "full")
    assert counts.get("RUNNING", 0) == 0, counts
    assert [w.status for w in list_workers(make_engine(url), "full")] == ["failed"]


# ---- 8. processes ------------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_killing_the_jobs_parent_stops_its_children_cleanly(sqlite_url, tmp_path):
    create(sqlite_url, tmp_path, "parent", n_trials=50, epochs=200)
    parent = start_worker(sqlite_url, "parent", "--jobs", "2", "--quiet")
    wait_for(lambda: len(list_workers(make_engine(sqlite_url), "parent")) == 2, timeout=60)
    children = _children(parent.pid)
    assert len(children) == 2
    parent.send_signal(signal.SIGKILL)
    parent.communicate(timeout=10)
    wait_for(lambda: not any(_alive(c) for c in children), timeout=30)
    assert {w.status for w in list_workers(make_engine(sqlite_url), "parent")} == {"stopped"}
    assert trial_state_counts(make_engine(sqlite_url), "parent").get("RUNNING", 0) == 0


def test_a_child_killed_by_a_signal_makes_the_jobs_parent_fail(sqlite_url, tmp_path):
    create(sqlite_url, tmp_path, "child", n_trials=4, epochs=200)
    # a short grace period: the surviving child retries the killed one's trial in seconds, not a minute
    parent = start_worker(sqlite_url, "child", "--jobs", "2", "--quiet", "--heartbeat-interval", "1",
                          "--grace-period", "3")
    wait_for(lambda: len(list_workers(make_engine(sqlite_url), "child")) == 2, timeout=60)
    os.kill(_children(parent.pid)[0], signal.SIGKILL)
    code, _ = finish(parent, timeout=300)
    assert code == 128 + signal.SIGKILL


def test_sigterm_in_the_first_moments_stops_a_worker_cleanly(sqlite_url, tmp_path):
    create(sqlite_url, tmp_path, "early", n_trials=4, epochs=3)
    worker = start_worker(sqlite_url, "early")
    time.sleep(0.3)  # the interpreter is still importing the CLI and its libraries
    worker.send_signal(signal.SIGTERM)
    code, err = finish(worker, timeout=60)
    assert code == 0, err
    assert trial_state_counts(make_engine(sqlite_url), "early").get("RUNNING", 0) == 0
    assert {w.status for w in list_workers(make_engine(sqlite_url), "early")} <= {"stopped"}


def test_a_dead_workers_row_is_marked_failed_by_the_live_ones_without_a_cleanup(sqlite_url, tmp_path):
    # trials long enough that the survivor still claims a grace period after its first claim, when its
    # periodic sweep marks the row: with 100 epochs a fast host ran all six in about 2 s, and the last sweep,
    # as the survivor ends, could come a fraction of a second before the row was a grace period old
    create(sqlite_url, tmp_path, "rows", n_trials=6, epochs=400)
    victim = start_worker(sqlite_url, "rows", "--quiet", "--heartbeat-interval", "1")
    wait_until_training(sqlite_url, "rows")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    survivor = start_worker(sqlite_url, "rows", "--quiet", "--heartbeat-interval", "1", "--grace-period", "2")
    assert finish(survivor, timeout=300)[0] == 0
    statuses = sorted(w.status for w in list_workers(make_engine(sqlite_url), "rows"))
    assert statuses == ["failed", "stopped"]
    assert_exactly(sqlite_url, "rows", 6)
