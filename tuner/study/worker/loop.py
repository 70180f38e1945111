"""The worker: claim a trial, train it, record it, until the study's total is reached.

Any number of these run in processes on any number of machines against one database. What makes that
safe lives in the modules beside this one: the exact total (`claim`), the heartbeats of a running trial
(`heartbeat`), the failing and re-queueing of dead workers' trials (`tuner.study.stale`), a stop by signal
that never cuts a write (`interrupt`), and the retry of database calls across a server restart
(`tuner.storage.retry`). This module strings them together:

- a trial that completes, is pruned or fails on its own is told to the study as such, with the reason;
- a trial stopped by a signal, or whose own writes lost the database, is failed and queued again with the
  same parameters: it is not the trial's fault;
- `max_failures` trials in a row failing on their own end the worker (something is wrong beyond one
  trial); a database lost for longer than `db_patience` seconds ends it with one StorageError line.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import optuna
from optuna.trial import TrialState

from tuner.errors import StorageError, TrialTimeoutError
from tuner.storage import (
    finished_count,
    list_workers,
    open_storage,
    optuna_storage,
    register_worker,
    save_curve,
    stop_worker,
    touch_worker,
    trial_state_counts,
)
from tuner.storage.optuna_adapter import best_value, load_study, record_heartbeat, requeue, stored_user_attrs, trial_id
from tuner.storage.records import see_worker
from tuner.storage.retry import DB_PATIENCE_S, RetryPolicy, connection_reason, is_connection_error
from tuner.study.catalog import load_study_spec
from tuner.study.data import load_study_data
from tuner.study.objective import WorkerStopping, make_objective
from tuner.study.share import share_hook
from tuner.study.space import make_pruner, make_sampler
from tuner.study.worker.claim import claim_trial
from tuner.study.worker.heartbeat import heartbeat
from tuner.study.worker.interrupt import TrainingInterrupt

_T = TypeVar("_T")


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs. `n_trials` is the study's total across every worker (default: the spec's)."""

    n_trials: int | None = None
    timeout: float | None = None  # stop claiming new trials after this many seconds
    heartbeat_interval: int = 10
    grace_period: int = 60
    poll_interval: float = 1.0  # wait between claims while the rest of the total runs elsewhere
    max_failures: int = 5
    db_patience: float = DB_PATIENCE_S


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


@dataclass(frozen=True)
class _Outcome:
    state: TrialState
    requeued: bool  # failed for a reason outside the trial (a stop, a lost database): not the trial's fault


class Worker:
    """One worker process's run over one study; `run()` returns its report. See the module docstring."""

    def __init__(
        self,
        url: str,
        study_name: str,
        options: WorkerOptions = WorkerOptions(),
        *,
        stop: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.url, self.name, self.options = url, study_name, options
        self.stop = stop or threading.Event()
        self.interrupt = TrainingInterrupt(self.stop)
        self.on_progress = on_progress
        self._failures_in_a_row = 0
        self._last_seen = time.monotonic()

    def db(self, call: Callable[[], _T], *, what: str) -> _T:
        """A database call, retried across a lost connection for up to `db_patience` seconds."""
        return self._retry.call(call, what=what)

    def run(self) -> WorkerReport:
        """Open the study, register this worker, and run trials until the total, a stop or a failure."""
        self._open()
        status, message = "stopped", None
        try:
            self._loop()
            if self.report.reason == "failures":
                status, message = "failed", self.report.message
        except StorageError as err:
            status, message = "failed", str(err)
            raise
        finally:
            self._record_stop(status, message)
        return self.report

    def _open(self) -> None:
        self.engine = open_storage(self.url)
        self._retry = RetryPolicy(self.engine.url, patience=self.options.db_patience)
        self.spec = load_study_spec(self.engine, self.name)
        self.total = self.options.n_trials or self.spec.study.n_trials
        data = load_study_data(self.spec)
        storage = optuna_storage(self.url, heartbeat_interval=self.options.heartbeat_interval,
                                 grace_period=self.options.grace_period)
        index = len(list_workers(self.engine, self.name))
        self.report = WorkerReport(register_worker(self.engine, self.name, socket.gethostname(), os.getpid()))
        # The first worker of a study samples with the study's seed (a single-worker run is reproducible);
        # later ones get derived seeds so that parallel workers do not propose the same points.
        seed = self.spec.study.seed
        if index > 0:
            seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        self.study = load_study(storage, self.name, sampler=make_sampler(self.spec, seed=seed),
                                pruner=make_pruner(self.spec))
        self.objective = make_objective(self.spec, data, write_curve=self._write_curve, stop=self.stop,
                                        guard=self.interrupt.writing)
        self._before_ask = share_hook(self.spec)

    def _loop(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            if self.options.timeout is not None and time.monotonic() - started > self.options.timeout:
                self.report.reason = "timeout"
                return
            grace = self.options.grace_period
            claim = self.db(lambda: claim_trial(self.study, self.engine, self.total, grace, self._before_ask),
                            what="claiming a trial")
            if claim.trial is None:
                if claim.finished >= self.total:
                    self.report.reason = "done"
                    return
                self._wait_for_others()
                continue
            outcome = self._run_trial(claim.trial)
            if self._count(claim.trial, outcome):
                return
            self._report_progress(outcome.state)
        self.report.reason = "stopped"

    def _wait_for_others(self) -> None:
        """The rest of the total runs elsewhere; one of those trials may still fail and need a retry."""
        self.stop.wait(self.options.poll_interval)
        if time.monotonic() - self._last_seen >= self.options.heartbeat_interval:
            self._last_seen = time.monotonic()
            self.db(self._seen, what="recording that the worker is alive")

    def _run_trial(self, trial: optuna.Trial) -> _Outcome:
        """Train one claimed trial and tell the study how it ended, with the reason when it did not complete."""
        value: float | None = None
        reason: str | None = None
        requeued = False
        self.db(lambda: record_heartbeat(self.study, trial), what=f"starting trial {trial.number}")

        def beat() -> None:
            record_heartbeat(self.study, trial)
            self._seen()

        with heartbeat(beat, self.options.heartbeat_interval, f"trial {trial.number}"):
            try:
                with self.interrupt.training():
                    value = self.objective(trial)
                state = TrialState.COMPLETE
            except optuna.TrialPruned as err:
                state, reason = TrialState.PRUNED, str(err) or "pruned"
            except WorkerStopping as err:
                # a signal during a write only set `stop`; the trial then ended at its epoch's end
                state, reason, requeued = TrialState.FAIL, self.interrupt.stop_reason(err), True
            except TrialTimeoutError as err:
                state, reason = TrialState.FAIL, f"timeout: {err}"
            except Exception as err:  # noqa: BLE001 - any error of a trial is recorded, the worker goes on
                state, reason, requeued = self._classify(err)
        return self._tell(trial, value, state, reason, requeued)

    def _classify(self, err: Exception) -> tuple[TrialState, str, bool]:
        """(state, reason, requeue) of a trial that raised `err`."""
        if is_connection_error(err):
            return TrialState.FAIL, f"lost the database connection: {connection_reason(err, self.engine.url)}", True
        return TrialState.FAIL, f"{type(err).__name__}: {err}", False

    def _tell(self, trial: optuna.Trial, value: float | None, state: TrialState, reason: str | None,
              requeued: bool) -> _Outcome:
        n = trial.number
        if reason is not None:
            def record_reason() -> None:
                if "reason" not in stored_user_attrs(self.study, trial):  # a retried write may have made it
                    trial.set_user_attr("reason", reason)

            self.db(record_reason, what=f"recording why trial {n} ended")
        frozen = self.db(lambda: self.study.tell(trial, value, state=state, skip_if_finished=True),
                         what=f"recording trial {n}")
        if requeued and frozen.state == TrialState.FAIL:
            self.db(lambda: requeue(self.study, frozen), what=f"queueing trial {n} again")
        return _Outcome(frozen.state, requeued)

    def _count(self, trial: optuna.Trial, outcome: _Outcome) -> bool:
        """Book the trial in the report and the worker's row; True when too many failed in a row."""
        report, state = self.report, outcome.state
        report.trials_run += 1
        report.states[state.name] = report.states.get(state.name, 0) + 1
        self.db(lambda: touch_worker(self.engine, report.worker_id, trials_done=report.trials_run),
                what="updating the worker's row")
        self._last_seen = time.monotonic()
        if state != TrialState.FAIL:
            self._failures_in_a_row = 0
            return False
        if outcome.requeued:
            return False
        self._failures_in_a_row += 1
        if self._failures_in_a_row < self.options.max_failures:
            return False
        last = self.db(lambda: stored_user_attrs(self.study, trial), what="reading the last failure")
        report.reason = "failures"
        report.message = f"{self._failures_in_a_row} trials in a row failed; the last: {last.get('reason', 'unknown')}"
        return True

    def _report_progress(self, state: TrialState) -> None:
        if self.on_progress is None:
            return
        counts = self.db(lambda: trial_state_counts(self.engine, self.name), what="counting trials")
        best = self.db(lambda: best_value(self.study), what="reading the best value")
        self.on_progress(Progress(total=self.total, finished=finished_count(counts), running=counts.get("RUNNING", 0),
                                  counts=counts, done_here=self.report.trials_run, best=best, last_state=state.name))

    def _write_curve(self, trial: optuna.trial.BaseTrial, rows: list[dict]) -> None:
        with self.interrupt.writing():
            self.db(lambda: save_curve(self.engine, self.name, trial.number, trial_id(trial), rows),
                    what=f"saving the curve of trial {trial.number}")

    def _seen(self) -> None:
        see_worker(self.engine, self.report.worker_id)

    def _record_stop(self, status: str, message: str | None) -> None:
        policy = RetryPolicy(self.engine.url, patience=min(self.options.db_patience, 10.0))
        try:
            policy.call(lambda: stop_worker(self.engine, self.report.worker_id, status=status, message=message),
                        what="recording that the worker stopped")
        except StorageError:
            if message is None or status != "failed":
                raise


def run_worker(
    storage_url: str,
    study_name: str,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    install_interrupt: Callable[[TrainingInterrupt], None] | None = None,
    **options: float | int | None,
) -> WorkerReport:
    """Run trials of `study_name` until it has `n_trials` finished (COMPLETE + PRUNED) trials in all.

    `options` are `WorkerOptions`' fields (n_trials, timeout, heartbeat_interval, grace_period,
    poll_interval, max_failures, db_patience). `stop` ends the worker cleanly; `install_interrupt`
    receives the object whose `interrupt(reason)` a signal handler calls to stop a trial mid-training,
    before anything else happens, so that a signal during start-up is handled too.
    """
    worker = Worker(storage_url, study_name, WorkerOptions(**options), stop=stop, on_progress=on_progress)
    if install_interrupt is not None:
        install_interrupt(worker.interrupt)
    return worker.run()
