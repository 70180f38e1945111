"""One claimed trial: trained with a heartbeat beside it, then told to the study with how it ended.

- COMPLETE, PRUNED (a prune or a divergence), or FAIL on its own (a timeout, a bug, bad values) is told as
  such, with the reason;
- a stop by signal, or a lost database connection during its own writes, fails it and queues a copy with
  the same parameters: it is not the trial's fault;
- a trial finished by another process meanwhile (failed as stale while this worker was paused longer than
  the grace period, or by `study cleanup --force`) is left as it is: the worker logs it and goes on;
- a permanent database error (a full disk, a dropped table) is told as far as the database still allows,
  and then ends the worker (`Outcome.fatal`): every next trial would fail the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from sqlalchemy.engine import URL

from tuner.errors import StorageError, StudyDeletedError, TrialTimeoutError
from tuner.storage.optuna_adapter import requeue
from tuner.storage.retry import (
    connection_reason,
    is_connection_error,
    is_database_error,
)
from tuner.study.objective import WorkerStopping
from tuner.study.worker.heartbeat import heartbeat
from tuner.study.worker.interrupt import TrainingInterrupt
from tuner.study.worker.threads import load_note

log = logging.getLogger(__name__)
Db = Callable[..., object]  # `db(call, what=...)`: a database call with the worker's retry policy


@dataclass(frozen=True)
class Outcome:
    """How a trial ended for the worker's books."""

    state: TrialState
    requeued: bool  # failed for a reason outside the trial: not counted against it
    fatal: StorageError | None = None  # the database failed for good: the worker must end
    value: float | None = None
    reason: str | None = None


@dataclass
class _Ending:
    value: float | None = None
    state: TrialState = TrialState.FAIL
    reason: str | None = None
    requeue: bool = False
    fatal: StorageError | None = None


def run_trial(study: optuna.Study, trial: optuna.Trial, objective: Callable[[optuna.Trial], float], *,
              interrupt: TrainingInterrupt, db: Db, beat: Callable[[], None], interval: float, url: URL,
              make_room: Callable[[str], None] = lambda reason: None) -> Outcome:
    """Train one claimed trial and tell the study how it ended (see the module docstring).

    `make_room(reason)` runs before the last writes after a permanent database error (see
    `tuner.storage.reserve`).
    """
    # No heartbeat is written at the start: a trial shorter than `interval` never needs one, and a trial
    # whose worker dies before its first beat is failed by the next claim all the same (`tuner.study.stale`).
    with heartbeat(beat, interval, f"trial {trial.number}"):
        try:
            with interrupt.training():
                ending = _Ending(value=objective(trial), state=TrialState.COMPLETE)
        except optuna.TrialPruned as err:
            ending = _Ending(state=TrialState.PRUNED, reason=str(err) or "pruned")
        except WorkerStopping as err:
            # a signal during a write only set `stop`; the trial then ended at its epoch's end
            ending = _Ending(reason=interrupt.stop_reason(err), requeue=True)
        except TrialTimeoutError as err:
            ending = _Ending(reason=f"timeout: {err}{load_note()}")
        except UpdateFinishedTrialError:
            return _taken(trial)
        except StudyDeletedError:
            raise
        except Exception as err:  # noqa: BLE001 - any error of a trial is recorded, the worker goes on
            ending = _classify(err, url)
    if ending.fatal is not None:
        make_room(str(ending.fatal))
    return _tell(study, trial, ending, db)


def _classify(err: Exception, url: URL) -> _Ending:
    if is_connection_error(err):
        return _Ending(reason=f"lost the database connection: {connection_reason(err, url)}", requeue=True)
    if is_database_error(err):
        # No copy is queued: the write would need what the database lacks (space, a table), and a FAIL
        # does not count towards the total, so the study still gets its trials once the database is mended.
        reason = connection_reason(err, url)
        return _Ending(reason=f"the database failed: {reason}",
                       fatal=StorageError(f"the database failed while running a trial: {reason}"))
    return _Ending(reason=f"{type(err).__name__}: {err}")


TAKEN_REASON = "finished by another process while this worker was paused or cut off"


def _taken(trial: optuna.Trial) -> Outcome:
    log.warning("trial %d was finished by another process (failed as stale: was this worker paused for longer "
                "than the grace period?); this worker goes on", trial.number)
    return Outcome(TrialState.FAIL, requeued=True, reason=TAKEN_REASON)


def _tell(study: optuna.Study, trial: optuna.Trial, ending: _Ending, db: Db) -> Outcome:
    """Record the reason, the state, and the copy to retry; a trial another process finished is left alone.

    Each write is idempotent, so a retry after a lost connection cannot record anything twice: the reason
    is one attribute, `tell` skips a finished trial, and the copy is queued only after this `tell` took.
    """
    n = trial.number
    try:
        if ending.reason is not None:  # writing to a trial another process finished raises here
            db(lambda: trial.set_user_attr("reason", ending.reason), what=f"recording why trial {n} ended")
        frozen = db(lambda: study.tell(trial, ending.value, state=ending.state, skip_if_finished=True),
                    what=f"recording trial {n}")
        if frozen.state != ending.state:  # it was finished elsewhere before our tell
            return _taken(trial)
        if ending.requeue and frozen.state == TrialState.FAIL:
            db(lambda: requeue(study, frozen), what=f"queueing trial {n} again")
    except UpdateFinishedTrialError:
        return _taken(trial)
    except StorageError:
        if ending.fatal is None:
            raise
        return Outcome(TrialState.FAIL, requeued=False, fatal=ending.fatal, reason=ending.reason)
    return Outcome(frozen.state, ending.requeue, ending.fatal, ending.value, ending.reason)
