"""The worker loop: claim a trial, train it, record it, until the study's total is reached.

Any number of these run in processes on any number of machines against one database. Three things make
that safe:

- **An exact study total.** `study.optimize(n_trials=N)` counts per process, and `MaxTrialsCallback`
  overshoots. Here a trial is claimed under `study_lock` (a database-wide lock): the worker counts the
  study's finished (COMPLETE + PRUNED) and RUNNING trials and asks for a new trial only while
  finished + running < N. When the rest are running elsewhere it waits, because one of them may still
  fail and need a replacement.
- **Heartbeats.** Each running trial records a heartbeat every `heartbeat_interval` seconds. Under the
  claim lock, `fail_stale_trials` fails the trials of dead workers, and the storage's
  `RetryHeartbeatStaleTrialCallback` queues a copy of each (same parameters) as WAITING; `study.ask`
  takes waiting trials first. Ask/tell gets no heartbeat from Optuna, so the worker runs its own thread.
- **Clean stops.** SIGTERM or Ctrl-C sets `stop`; a trial in training is interrupted at once, told FAIL
  with the reason, and queued again; the worker marks itself stopped in `tuner_workers`.
- **A database that restarts.** Every write of the loop (claim, tell, curve, worker row) is retried with
  backoff for up to `db_patience` seconds when the connection is lost (`is_connection_error`); a trial
  whose own writes failed that way is failed and queued again, like a stopped one. A database gone for
  longer ends the worker with one StorageError line; it can simply be started again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import DBAPIError, OperationalError

from tuner.errors import StorageError, TrialTimeoutError, TunerError
from tuner.nn.data import Dataset, load_dataset
from tuner.storage.engine import driver_reason
from tuner.storage.records import running_trials_without_heartbeat, see_worker
from tuner.storage import (
    check_connection,
    ensure_schema,
    list_workers,
    make_engine,
    optuna_storage,
    register_worker,
    save_curve,
    stop_worker,
    study_lock,
    touch_worker,
    trial_state_counts,
)
from tuner.study.catalog import load_study_spec
from tuner.study.objective import WorkerStopping, make_objective
from tuner.study.space import make_pruner, make_sampler
from tuner.study.spec import StudySpec

FINISHED = ("COMPLETE", "PRUNED")
UNBEATEN_REASON = "no heartbeat since it was claimed: its worker died or lost the database"
DB_PATIENCE_S = 60.0  # how long a worker keeps retrying a lost database before it gives up
_T = TypeVar("_T")


@dataclass(frozen=True)
class Progress:
    """What a worker knows after each trial: the study's counts, its own count, the best value so far."""

    total: int
    finished: int
    running: int
    counts: dict[str, int]
    done_here: int
    best: float | None
    last_state: str | None = None


@dataclass
class WorkerReport:
    """How a worker's run ended."""

    worker_id: int
    trials_run: int = 0
    states: dict[str, int] = field(default_factory=dict)
    reason: str = "done"  # done | timeout | stopped | failures
    message: str | None = None


class WorkerFailingError(TunerError):
    """Too many trials in a row failed in this worker: something is wrong beyond one trial."""


def load_study_data(spec: StudySpec) -> Dataset:
    """The study's dataset, split with the study's seed so every worker sees the same split."""
    return load_dataset(
        spec.data.source,
        seed=spec.study.seed,
        val_fraction=spec.data.val_fraction,
        target=spec.data.target,
        standardize=spec.data.standardize,
        dtype=np.dtype(spec.train.dtype),
    )


def is_connection_error(err: BaseException) -> bool:
    """True when `err`, or an error it was raised from, is a lost or refused database connection.

    SQLAlchemy raises `OperationalError` for those (server restarting, connection reset, SQLite's
    `database is locked`) and marks others `connection_invalidated`; Optuna wraps them in
    `StorageInternalError ... from err`, and a rollback on a dead connection raises a new error while
    handling the first (its `__context__`). Anything else is a bug or bad data, and is not retried.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [err]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OperationalError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def _connection_reason(err: BaseException, engine) -> str:  # noqa: ANN001 - an Engine
    current: BaseException | None = err
    while current is not None and not isinstance(current, DBAPIError):
        current = current.__cause__ or current.__context__
    return driver_reason(current or err, engine.url)


def retrying(call: Callable[[], _T], engine, *, what: str, patience: float = DB_PATIENCE_S) -> _T:  # noqa: ANN001
    """`call()`, retried with backoff (0.5 s doubling to 5 s) for up to `patience` s on connection errors.

    Past that, StorageError names what was being done and the driver's reason (never the password).
    """
    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            return call()
        except Exception as err:
            if not is_connection_error(err):
                raise
            if time.monotonic() + delay > deadline:
                raise StorageError(
                    f"lost the database connection for {patience:g} s while {what}: {_connection_reason(err, engine)}; "
                    "start the worker again when the database is back"
                ) from None
            time.sleep(delay)
            delay = min(2 * delay, 5.0)


@contextlib.contextmanager
def heartbeat(
    storage: optuna.storages.RDBStorage,
    trial_id: int,
    interval: float,
    on_beat: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Record the trial's heartbeat every `interval` seconds while the block runs; call `on_beat` after each.

    The caller records the first beat (with its retries) before entering. A failed beat (the database
    restarting) is not fatal: the next one retries, and the grace period covers the gap. The worker passes
    `on_beat` to refresh its own `last_seen` in `tuner_workers`.
    """
    done = threading.Event()

    def beat() -> None:
        while not done.wait(interval):
            with contextlib.suppress(Exception):
                storage.record_heartbeat(trial_id)
                if on_beat is not None:
                    on_beat()

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class _TrainingInterrupt:
    """Lets a signal handler interrupt training at once, but never a database write.

    The handler calls `interrupt()`: inside a `training()` block it raises `WorkerStopping` right away
    (like Ctrl-C's KeyboardInterrupt would); elsewhere it only sets `stop`, which the loop checks.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.reason: str | None = None  # the signal's, once one came
        self._in_training = False

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        self._in_training = True
        try:
            if self.stop.is_set():
                raise WorkerStopping("worker stopped before the trial started training")
            yield
        finally:
            self._in_training = False

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """A database write inside training (the curve): a signal during it only sets `stop`."""
        was_training, self._in_training = self._in_training, False
        try:
            yield
        finally:
            self._in_training = was_training and not self.stop.is_set()

    def interrupt(self, reason: str) -> None:
        self.reason = reason
        self.stop.set()
        if self._in_training:
            self._in_training = False
            raise WorkerStopping(reason)


def _claim(study: optuna.Study, engine, study_name: str, total: int, grace_period: float):  # noqa: ANN001, ANN202
    """Under the study lock: fail stale trials, then ask for a trial if the total allows one.

    Returns (trial or None, counts). A connection lost while the lock is released after a successful ask
    does not lose the trial: the server drops the lock with the connection, and the trial is returned.
    """
    claimed: list[optuna.Trial] = []
    counts: dict[str, int] = {}
    try:
        with study_lock(engine, study_name):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            _fail_unbeaten_trials(study, engine, study_name, grace_period)
            counts = trial_state_counts(engine, study_name)
            finished = sum(counts.get(s, 0) for s in FINISHED)
            if finished + counts.get("RUNNING", 0) >= total:
                return None, counts
            with warnings.catch_warnings():
                # Ask/tell with heartbeats is what this module is for: the heartbeat thread is ours.
                warnings.simplefilter("ignore", UserWarning)
                claimed.append(study.ask())
    except Exception as err:
        if claimed and is_connection_error(err):
            return claimed[0], counts
        raise
    return claimed[0], counts


def _fail_unbeaten_trials(study: optuna.Study, engine, study_name: str, grace_period: float) -> None:  # noqa: ANN001
    """Fail and re-queue RUNNING trials that never got a heartbeat and started over `grace_period` s ago.

    Optuna's stale-trial check skips trials without a heartbeat row: a worker that died (or lost the
    database) between `ask` and its first heartbeat would leave one RUNNING for good, and the study total,
    which counts running trials, would never be reached. Start times are Optuna's (local clock).
    """
    ids = running_trials_without_heartbeat(engine, study_name)
    if not ids:
        return
    storage = study._storage
    retry = storage.get_heartbeat_stale_trial_callback()
    cutoff = dt.datetime.now() - dt.timedelta(seconds=grace_period)
    for trial_id in ids:
        frozen = storage.get_trial(trial_id)
        if frozen.datetime_start is None or frozen.datetime_start.replace(tzinfo=None) > cutoff:
            continue
        storage.set_trial_user_attr(trial_id, "reason", UNBEATEN_REASON)
        if storage.set_trial_state_values(trial_id, TrialState.FAIL) and retry is not None:
            retry(study, storage.get_trial(trial_id))


def _best(study: optuna.Study) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Outcome:
    state: TrialState
    requeued: bool  # failed for a reason outside the trial (a stop, a lost database): not the trial's fault


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    objective: Callable[[optuna.Trial], float],
    storage: optuna.storages.RDBStorage,
    interrupt: _TrainingInterrupt,
    heartbeat_interval: float,
    db: Callable[..., object],
    on_beat: Callable[[], None] | None = None,
) -> _Outcome:
    """Train one claimed trial and tell the study how it ended, with the reason when it did not complete.

    `db(call, what=...)` runs a database call with retries. A trial stopped by a signal, or whose own writes
    (parameters, reports) lost the database, is failed and queued again with the same parameters.
    """
    value: float | None = None
    reason: str | None = None
    requeue = False
    db(lambda: storage.record_heartbeat(trial._trial_id), what=f"starting trial {trial.number}")
    with heartbeat(storage, trial._trial_id, heartbeat_interval, on_beat):
        try:
            with interrupt.training():
                value = objective(trial)
            state = TrialState.COMPLETE
        except optuna.TrialPruned as err:
            state, reason = TrialState.PRUNED, str(err) or "pruned"
        except WorkerStopping as err:
            # a signal during a write only set `stop`; the trial then ended at its epoch's end
            said = interrupt.reason
            reason = str(err) if said is None or str(err).startswith(said) else f"{said} ({err})"
            state, requeue = TrialState.FAIL, True
        except TrialTimeoutError as err:
            state, reason = TrialState.FAIL, f"timeout: {err}"
        except Exception as err:  # noqa: BLE001 - any error of a trial is recorded, the worker goes on
            if is_connection_error(err):
                reason = f"lost the database connection: {_connection_reason(err, storage.engine)}"
                state, requeue = TrialState.FAIL, True
            else:
                state, reason = TrialState.FAIL, f"{type(err).__name__}: {err}"
    if reason is not None:
        db(lambda: trial.set_user_attr("reason", reason) if "reason" not in _user_attrs(storage, trial) else None,
           what=f"recording why trial {trial.number} ended")
    frozen = db(lambda: study.tell(trial, value, state=state, skip_if_finished=True),
                what=f"recording trial {trial.number}")
    if requeue and frozen.state == TrialState.FAIL:
        retry = storage.get_heartbeat_stale_trial_callback()
        if retry is not None:
            db(lambda: retry(study, frozen), what=f"queueing trial {trial.number} again")
    return _Outcome(frozen.state, requeue)


def _user_attrs(storage: optuna.storages.RDBStorage, trial: optuna.Trial) -> dict:
    # From the storage, not the trial's cache: after a lost connection the cache may be behind.
    return storage.get_trial(trial._trial_id).user_attrs


def run_worker(
    storage_url: str,
    study_name: str,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    heartbeat_interval: int = 10,
    grace_period: int = 60,
    poll_interval: float = 1.0,
    max_failures: int = 5,
    install_interrupt: Callable[[_TrainingInterrupt], None] | None = None,
    db_patience: float = DB_PATIENCE_S,
) -> WorkerReport:
    """Run trials of `study_name` until it has `n_trials` finished (COMPLETE + PRUNED) trials in all.

    `n_trials` defaults to the spec's `study.n_trials`; it is the study's total across every worker, not
    this process's share. `timeout` (seconds) stops claiming new trials after that long. `stop` ends the
    worker cleanly; `install_interrupt` receives the object whose `interrupt(reason)` a signal handler
    calls to stop a trial mid-training. A database lost for longer than `db_patience` seconds raises
    StorageError (the running trial, if any, is left to the stale-trial check of the other workers).
    """
    stop = stop or threading.Event()
    interrupt = _TrainingInterrupt(stop)
    if install_interrupt is not None:
        install_interrupt(interrupt)

    engine = make_engine(storage_url)
    check_connection(engine)
    ensure_schema(engine)
    spec = load_study_spec(engine, study_name)
    total = n_trials if n_trials is not None else spec.study.n_trials
    data = load_study_data(spec)
    storage = optuna_storage(storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)

    def db(call: Callable[[], _T], *, what: str) -> _T:
        return retrying(call, engine, what=what, patience=db_patience)

    index = len(list_workers(engine, study_name))
    worker_id = register_worker(engine, study_name, socket.gethostname(), os.getpid())
    report = WorkerReport(worker_id=worker_id)
    # The first worker of a study samples with the study's seed (a single-worker run is reproducible);
    # later ones get derived seeds so that parallel workers do not propose the same points.
    seed = spec.study.seed if index == 0 else int(np.random.SeedSequence([spec.study.seed, index]).generate_state(1)[0])
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=make_sampler(spec, seed=seed), pruner=make_pruner(spec)
    )

    def write_curve(number: int, trial_id: int | None, rows: list[dict]) -> None:
        with interrupt.writing():
            db(lambda: save_curve(engine, study_name, number, trial_id, rows), what=f"saving the curve of trial {number}")

    def seen() -> None:
        see_worker(engine, worker_id)

    objective = make_objective(spec, data, write_curve=write_curve, stop=stop, guard=interrupt.writing)
    started = time.monotonic()
    last_seen = started
    failures_in_a_row = 0
    status, message = "stopped", None
    try:
        while not stop.is_set():
            if timeout is not None and time.monotonic() - started > timeout:
                report.reason = "timeout"
                break
            trial, counts = db(lambda: _claim(study, engine, study_name, total, grace_period), what="claiming a trial")
            finished = sum(counts.get(s, 0) for s in FINISHED)
            if trial is None:
                if finished >= total:
                    report.reason = "done"
                    break
                stop.wait(poll_interval)  # the rest are running elsewhere; one may fail and need a retry
                if time.monotonic() - last_seen >= heartbeat_interval:
                    last_seen = time.monotonic()
                    db(seen, what="recording that the worker is alive")
                continue
            outcome = _run_trial(study, trial, objective, storage, interrupt, heartbeat_interval, db, on_beat=seen)
            state = outcome.state
            report.trials_run += 1
            report.states[state.name] = report.states.get(state.name, 0) + 1
            db(lambda: touch_worker(engine, worker_id, trials_done=report.trials_run), what="updating the worker's row")
            last_seen = time.monotonic()
            if state == TrialState.FAIL and not outcome.requeued:
                failures_in_a_row += 1
                if failures_in_a_row >= max_failures:
                    reason = db(lambda: _user_attrs(storage, trial), what="reading the last failure").get("reason", "unknown")
                    report.reason = "failures"
                    report.message = f"{failures_in_a_row} trials in a row failed; the last: {reason}"
                    status, message = "failed", report.message
                    break
            elif state != TrialState.FAIL:
                failures_in_a_row = 0
            if on_progress is not None:
                counts = db(lambda: trial_state_counts(engine, study_name), what="counting trials")
                on_progress(
                    Progress(
                        total=total,
                        finished=sum(counts.get(s, 0) for s in FINISHED),
                        running=counts.get("RUNNING", 0),
                        counts=counts,
                        done_here=report.trials_run,
                        best=db(lambda: _best(study), what="reading the best value"),
                        last_state=state.name,
                    )
                )
        else:
            report.reason = "stopped"
    except StorageError as err:
        status, message = "failed", str(err)
        raise
    finally:
        try:
            retrying(lambda: stop_worker(engine, worker_id, status=status, message=message), engine,
                     what="recording that the worker stopped", patience=min(db_patience, 10.0))
        except StorageError:
            if message is None or status != "failed":
                raise
    return report
