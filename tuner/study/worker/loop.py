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

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import optuna
from optuna.trial import TrialState

from tuner.errors import StorageError, StudyDeletedError
from tuner.storage import (
    list_workers,
    open_storage,
    optuna_storage,
    register_worker,
    save_curve,
    stop_worker,
    touch_worker,
)
from tuner.storage.optuna_adapter import (
    best_value,
    load_study,
    record_heartbeat,
    stored_user_attrs,
    trial_id,
)
from tuner.storage.records import study_exists, study_total, update_study
from tuner.storage.reserve import ensure_reserve, is_disk_full, release_reserve
from tuner.storage.retry import RetryPolicy
from tuner.storage.workers import fail_stale_workers, see_worker
from tuner.study.budget import DataShape, check_training_memory
from tuner.study.catalog import load_study_record
from tuner.study.data import load_study_data
from tuner.study.objective import make_objective
from tuner.study.share import share_hook
from tuner.study.space import make_pruner, make_sampler
from tuner.study.spec import spec_from_dict
from tuner.study.worker.claim import Claim, claim_trial
from tuner.study.worker.interrupt import TrainingInterrupt
from tuner.study.worker.options import Progress, WorkerOptions, WorkerReport
from tuner.study.worker.progress import ProgressTracker
from tuner.study.worker.threads import host_share, set_blas_threads
from tuner.study.worker.trial import Outcome, run_trial

_T = TypeVar("_T")


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
        self._swept = -float("inf")
        self._trial: optuna.Trial | None = None  # claimed and not yet told
        self._progress: ProgressTracker | None = None

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
        except Exception as err:
            status, message = "failed", str(err)
            self._make_room(message)
            self._abandon_trial(message)
            raise self._deleted(err) or err
        finally:
            self._record_stop(status, message)
        return self.report

    def _apply_threads(self, worker_id: int | None) -> int:
        """The BLAS threads to use now (`--threads`, else the host's share), applied to this process."""
        threads = self.options.threads
        if threads is None:
            threads = self.db(lambda: host_share(self.engine, self.host, worker_id), what="sharing the host's cores")
        set_blas_threads(threads)
        return threads

    def _abandon_trial(self, reason: str) -> None:
        """The worker ends with a trial claimed and not told: fail it, as far as the database allows (if it
        cannot, the other workers fail it once its heartbeat is stale)."""
        trial, self._trial = self._trial, None
        if trial is None:
            return
        with contextlib.suppress(Exception):
            trial.set_user_attr("reason", f"its worker ended: {reason}")
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

    def _make_room(self, reason: str) -> None:
        """On a full disk, free the ballast beside a SQLite database for the last writes."""
        if is_disk_full(reason):
            release_reserve(self.engine.url)

    def _deleted(self, err: Exception) -> StudyDeletedError | None:
        """A StudyDeletedError naming this study when `err` came from the study being deleted under us."""
        deleted = StudyDeletedError(f"study '{self.name}' was deleted while this worker ran; it stopped")
        if isinstance(err, StudyDeletedError):
            return deleted
        try:
            return None if study_exists(self.engine, self.study_id) else deleted
        except Exception:  # noqa: BLE001 - the database itself may be the problem: the first error says more
            return None

    def _open(self) -> None:
        self.engine = open_storage(self.url)
        ensure_reserve(self.engine.url)
        self._retry = RetryPolicy(self.engine.url, patience=self.options.db_patience)
        record = load_study_record(self.engine, self.name)
        self.study_id, self.spec = record.id, spec_from_dict(record.spec)
        self.total = record.total
        if self.options.n_trials is not None and self.options.n_trials != record.total:
            # the study's total for every worker, stored: `study list` shows it, and the others follow it
            update_study(self.engine, self.name, n_trials=self.options.n_trials)
            self.total = self.options.n_trials
        data = load_study_data(self.spec)
        check_training_memory(self.spec, DataShape.of(data))  # refused here, not by five failed trials
        storage = optuna_storage(self.url, heartbeat_interval=self.options.heartbeat_interval,
                                 grace_period=self.options.grace_period)
        index = len(list_workers(self.engine, self.name))
        self.host = socket.gethostname()
        self.threads = self._apply_threads(None)
        self.report = WorkerReport(register_worker(self.engine, self.study_id, self.host, os.getpid(),
                                                   heartbeat_s=self.options.heartbeat_interval, threads=self.threads))
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
        if self.on_progress is not None:
            self._progress = ProgressTracker(self.on_progress, maximize=self.spec.study.direction == "maximize",
                                             read_best=lambda: self.db(lambda: best_value(self.study),
                                                                       what="reading the best value"))

    def _loop(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            if self.options.timeout is not None and time.monotonic() - started > self.options.timeout:
                self.report.reason = "timeout"
                return
            self._sweep_dead_workers()
            claim = self.db(self._claim, what="claiming a trial")
            if claim.stopped:
                break
            if claim.trial is None:
                if claim.finished >= self.total:
                    self._sweep_dead_workers(force=True)  # the last retry may have ended inside a grace period
                    self.report.reason = "done"
                    return
                self._wait_for_others()
                continue
            if self._progress is not None:
                self._progress.claimed(claim.counts)
            outcome = self._run_trial(claim.trial)
            if self._count(claim.trial, outcome):
                return
            if self._progress is not None:
                self._progress.trial_done(outcome, total=self.total, done_here=self.report.trials_run)
        self.report.reason = "stopped"

    def _sweep_dead_workers(self, *, force: bool = False) -> None:
        """Mark `failed` the rows of this study's workers not seen for a grace period, once per grace period
        (and once more, `force`, as the study ends): their trials are failed by the claim; their rows should
        not claim to run either."""
        grace = self.options.grace_period
        if not force and time.monotonic() - self._swept < grace:
            return
        self._swept = time.monotonic()
        message = f"not seen for {grace} s: marked failed by worker {self.report.worker_id}"
        self.db(lambda: fail_stale_workers(self.engine, self.name, grace_period=grace, message=message),
                what="marking dead workers")

    def _claim(self) -> Claim:
        total = study_total(self.engine, self.study_id, self.spec.study.n_trials)
        if total is None:
            raise StudyDeletedError(f"study '{self.name}' was deleted")
        self.total = total  # another worker may have grown the study
        return claim_trial(self.study, self.engine, total, self.options.grace_period, stop=self.stop.is_set,
                           before_ask=self._before_ask)

    def _wait_for_others(self) -> None:
        """The rest of the total runs elsewhere; one of those trials may still fail and need a retry."""
        self.stop.wait(self.options.poll_interval)
        if time.monotonic() - self._last_seen >= self.options.heartbeat_interval:
            self._last_seen = time.monotonic()
            self.db(self._seen, what="recording that the worker is alive")

    def _run_trial(self, trial: optuna.Trial) -> Outcome:
        def beat() -> None:
            record_heartbeat(self.study, trial)
            self._seen()

        self._trial = trial
        outcome = run_trial(self.study, trial, self.objective, interrupt=self.interrupt, db=self.db, beat=beat,
                            interval=self.options.heartbeat_interval, url=self.engine.url, make_room=self._make_room)
        if outcome.fatal is not None:
            raise outcome.fatal  # the trial stays `_trial`: `_abandon_trial` tries its tell once more
        self._trial = None
        return outcome

    def _count(self, trial: optuna.Trial, outcome: Outcome) -> bool:
        """Book the trial in the report and the worker's row; True when too many failed in a row."""
        report, state = self.report, outcome.state
        report.trials_run += 1
        report.states[state.name] = report.states.get(state.name, 0) + 1
        if time.monotonic() - self._last_seen >= self.options.heartbeat_interval:  # not after every short trial
            threads = self.threads = self._apply_threads(report.worker_id)
            self.db(lambda: touch_worker(self.engine, report.worker_id, trials_done=report.trials_run, threads=threads),
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

    def _write_curve(self, trial: optuna.trial.BaseTrial, rows: list[dict]) -> None:
        with self.interrupt.writing():
            self.db(lambda: save_curve(self.engine, self.study_id, trial.number, trial_id(trial), rows),
                    what=f"saving the curve of trial {trial.number}")

    def _seen(self) -> None:
        see_worker(self.engine, self.report.worker_id)

    def _record_stop(self, status: str, message: str | None) -> None:
        policy = RetryPolicy(self.engine.url, patience=min(self.options.db_patience, 10.0))
        try:
            policy.call(lambda: stop_worker(self.engine, self.report.worker_id, status=status, message=message,
                                            trials_done=self.report.trials_run),
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
