"""Everything tuner needs from Optuna beyond its public API, in one place.

Optuna's storage objects, a trial's database id, a study's system attributes, the stale-trial machinery
(experimental in Optuna 5), a trial's reports written together and pruned in the process (`EpochReports`),
and reads of Optuna's own tables (`studies`, `trials`, `trial_heartbeats`) by
SQL: each is used here and nowhere else, so an Optuna upgrade that moves one of them is fixed in this
module. The SQL only reads, and only the columns named below; Optuna's schema is Optuna's to change.

`optuna_storage` builds `RDBStorage` with the same pool settings as `make_engine` (cached per process).
With `create_tables=False` it never creates Optuna's tables: a read-only command on a mistyped URL must
not leave a new schema behind.
"""

from __future__ import annotations

import copy as _copy
import datetime as dt
import time
import warnings
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.storages._rdb import models as _models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import String, cast, func, select
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from tuner.errors import StorageError, StudyNotFoundError
from tuner.storage.engine import (
    configure_sqlite,
    driver_reason,
    driver_url,
    engine_kwargs,
    make_engine,
    process_cached,
)
from tuner.storage.optuna_tables import HEARTBEATS as _heartbeats
from tuner.storage.optuna_tables import STUDIES as _studies
from tuner.storage.optuna_tables import TRIALS as _trials
from tuner.storage.url import is_sqlite_memory, parse_url, redact


# How optuna-dashboard names the study system attributes a saved chart is split into
# (`optuna_dashboard/_custom_plot_data.py`, private in optuna-dashboard 0.21).
DASHBOARD_PLOT_DATA = "dashboard:plot_data:"


def optuna_storage(
    url: str | URL,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 3,
    create_tables: bool = True,
) -> RDBStorage:
    """Optuna's `RDBStorage` for `url` with the same pool settings as `make_engine` (cached per process).

    With `heartbeat_interval`, running trials record heartbeats, a trial without one for `grace_period` s
    is failed as stale, and `RetryHeartbeatStaleTrialCallback(max_retry)` queues a copy of it (same
    parameters) as WAITING. Keep the grace period generous: a live but slow worker whose trial was failed
    by another dies on an assertion.
    """
    parsed = parse_url(url)
    options = (heartbeat_interval, grace_period, max_retry, create_tables)
    return process_cached("optuna", parsed, options, lambda: _build_storage(parsed, *options))


def _build_storage(
    url: URL, heartbeat_interval: int | None, grace_period: int | None, max_retry: int | None, create_tables: bool
) -> RDBStorage:
    engine = make_engine(url)  # a clear StorageError for an unknown dialect or a missing driver
    if url.get_backend_name() == "sqlite" and not is_sqlite_memory(url):
        # Our engine's connect event switches the file to WAL before Optuna's engine first opens it.
        with engine.connect():
            pass
    storage = _rdb_storage(url, heartbeat_interval, grace_period, max_retry, create_tables)
    configure_sqlite(storage.engine, foreign_keys=False)  # Optuna's connections get tuner's SQLite settings too
    return storage


def _rdb_storage(
    url: URL, heartbeat_interval: int | None, grace_period: int | None, max_retry: int | None, create_tables: bool
) -> RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = None
        if heartbeat_interval is not None:
            callback = _RetryCopy(max_retry=max_retry)
        try:
            return RDBStorage(
                # RDBStorage runs str.format on the URL: braces (in a database name, say) must be doubled.
                url=driver_url(url).render_as_string(hide_password=False).replace("{", "{{").replace("}", "}}"),
                engine_kwargs=engine_kwargs(url),
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=callback,
                skip_table_creation=not create_tables,
            )
        except ImportError as err:
            raise StorageError(f"the driver of {redact(url)} is not installed ({err})") from None
        except SQLAlchemyError as err:
            raise StorageError(f"cannot open the Optuna storage at {redact(url)}: {driver_reason(err, url)}") from None


OUTCOME_ATTRS = ("reason", "diverged")  # how a trial ended: a retried copy has not ended yet


class _RetryCopy(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a failed trial (a WAITING copy with its parameters and attributes), without the
    attributes that say how the failed one ended: a copy that completes must not carry "worker stopped by
    SIGTERM" as its reason."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        copy = _copy.deepcopy(trial)
        copy.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in OUTCOME_ATTRS}
        super().__call__(study, copy)


def load_study(storage: RDBStorage, study_name: str, **kwargs: Any) -> optuna.Study:
    """`optuna.load_study`; a missing study raises StudyNotFoundError naming the studies that exist."""
    try:
        return optuna.load_study(study_name=study_name, storage=storage, **kwargs)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        known = ", ".join(sorted(names)) if names else "none"
        raise StudyNotFoundError(f"no study named '{study_name}' (studies: {known})") from None


def best_value(study: optuna.Study) -> float | None:
    """The study's best value so far, or None before its first complete trial."""
    try:
        return float(study.best_value)
    except ValueError:
        return None


def storage_of(study: optuna.Study) -> RDBStorage:
    """The storage a study was loaded from."""
    return study._storage


def trial_id(trial: optuna.trial.BaseTrial) -> int | None:
    """The database id of a trial (None for a trial without one, such as `FixedTrial`)."""
    return getattr(trial, "_trial_id", None)


def stored_user_attrs(study: optuna.Study, trial: optuna.Trial) -> dict:
    """The trial's user attributes as stored: after a lost connection the trial's own cache may be behind."""
    return storage_of(study).get_trial(trial._trial_id).user_attrs


def record_heartbeat(study: optuna.Study, trial: optuna.Trial) -> None:
    """Write the trial's heartbeat row now."""
    storage_of(study).record_heartbeat(trial._trial_id)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a WAITING copy of a failed trial (same parameters), through the storage's stale-trial callback."""
    retry = storage_of(study).get_heartbeat_stale_trial_callback()
    if retry is not None:
        retry(study, trial)


def fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's stale-trial check: fail (and queue a copy of) each RUNNING trial whose heartbeat is stale."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def fail_unbeaten_trials(study: optuna.Study, engine: Engine, grace_period: float, reason: str) -> list[int]:
    """Fail and re-queue RUNNING trials without any heartbeat that started over `grace_period` s ago.

    Optuna's stale-trial check skips trials without a heartbeat row: a worker that died (or lost the
    database) between `ask` and its first heartbeat would leave one RUNNING for good. Start times are
    Optuna's (local clock). Returns the numbers of the trials failed here.
    """
    storage = storage_of(study)
    cutoff = dt.datetime.now() - dt.timedelta(seconds=grace_period)
    failed = []
    for tid in running_trials_without_heartbeat(engine, study):
        frozen = storage.get_trial(tid)
        if frozen.datetime_start is None or frozen.datetime_start.replace(tzinfo=None) > cutoff:
            continue
        storage.set_trial_user_attr(tid, "reason", reason)
        if storage.set_trial_state_values(tid, TrialState.FAIL):
            requeue(study, storage.get_trial(tid))
            failed.append(frozen.number)
    return failed


def _of(study: optuna.Study | str) -> Any:
    """The condition that picks a study's trials: by the loaded study's id, else by its name.

    A worker counts by id: if its study is deleted and another made under the same name, it must not count
    (or fail) the new study's trials.
    """
    if isinstance(study, str):
        return _trials.c.study_id == select(_studies.c.study_id).where(_studies.c.study_name == study).scalar_subquery()
    return _trials.c.study_id == study._study_id


def running_trials_without_heartbeat(engine: Engine, study: optuna.Study | str) -> list[int]:
    """Trial ids of the study's RUNNING trials that have no heartbeat row (read-only)."""
    query = (
        select(_trials.c.trial_id)
        .select_from(_trials.outerjoin(_heartbeats, _heartbeats.c.trial_id == _trials.c.trial_id))
        .where(_of(study), cast(_trials.c.state, String) == "RUNNING", _heartbeats.c.trial_id.is_(None))
        .order_by(_trials.c.trial_id)
    )
    with engine.begin() as connection:
        return [int(i) for i in connection.execute(query).scalars()]


def trial_state_counts(engine: Engine, study: optuna.Study | str) -> dict[str, int]:
    """{state name: count} of the study's trials (a loaded study, or a name), by one COUNT(*) GROUP BY.

    States with no trial are absent; an unknown study gives {}.
    """
    query = select(_trials.c.state, func.count()).where(_of(study)).group_by(_trials.c.state)
    with engine.begin() as connection:
        rows = connection.execute(query).all()
    return {getattr(state, "name", str(state)): int(count) for state, count in rows}


def stored_chart(study: optuna.Study, graph_object_id: str) -> str | None:
    """The JSON of the optuna-dashboard chart saved under `graph_object_id`, or None.

    optuna-dashboard saves a chart one chunk per study system attribute, not in one transaction: read
    while a refresh rewrites it, the text can join old and new chunks.
    """
    prefix = f"{DASHBOARD_PLOT_DATA}{graph_object_id}:"
    attrs = storage_of(study).get_study_system_attrs(study._study_id)
    chunks = {int(key.removeprefix(prefix)): value for key, value in attrs.items() if key.startswith(prefix)}
    return "".join(chunks[i] for i in sorted(chunks)) if chunks else None


def ask_quietly(study: optuna.Study) -> optuna.Trial:
    """`study.ask()` without Optuna's warning that ask/tell gets no heartbeat: tuner beats for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return study.ask()


class EpochReports:
    """One trial's per-epoch reports and pruning decisions without a database round trip per epoch.

    `trial.report` writes each value in its own transaction and `trial.should_prune` re-reads the study's
    trials every epoch: with short epochs those two round trips cost more than the training. Here

    - values are kept in the process and written together (`flush`, one transaction): at the end of the
      trial, before it is told, and at most every `flush_every` seconds while it runs, so a live view lags
      by that much;
    - the percentile pruners (`MedianPruner`, `PercentilePruner`) decide in the process, on the trial's
      own values and the study's COMPLETE trials as read at the trial's start and again at most every
      `refresh_every` seconds. They read nothing else, and a COMPLETE trial's values never change, so a
      decision differs from Optuna's only by a trial that completed in another process within that
      interval (Optuna's own decision depends on such timing too). `NopPruner` reads nothing.

    Any other pruner (successive halving and Hyperband write the trial's rungs as they go), or a trial
    that is not a stored `optuna.Trial`, takes Optuna's own path: `report` and `should_prune` per epoch.
    """

    def __init__(self, trial: optuna.trial.BaseTrial, *, flush_every: float = 1.0,
                 refresh_every: float = 1.0) -> None:
        self.trial = trial
        study = getattr(trial, "study", None)
        pruner = getattr(study, "pruner", None)
        local = isinstance(trial, optuna.Trial) and isinstance(
            pruner, optuna.pruners.NopPruner | optuna.pruners.PercentilePruner)
        self._local, self._study, self._pruner = local, study, pruner
        self._prunes = local and not isinstance(pruner, optuna.pruners.NopPruner)  # NopPruner: nothing to read
        self._flush_every, self._refresh_every = flush_every, refresh_every
        self._values: dict[int, float] = {}
        self._pending: dict[int, float] = {}
        self._flushed_at = self._read_at = time.monotonic()
        self._finished: list[FrozenTrial] | None = None
        self._frozen = FrozenTrial(
            number=trial.number, state=TrialState.RUNNING, value=None, datetime_start=None,
            datetime_complete=None, params={}, distributions={}, user_attrs={}, system_attrs={},
            intermediate_values=self._values, trial_id=getattr(trial, "_trial_id", -1),
        )

    def report(self, value: float, step: int) -> bool:
        """Record `value` at `step` (an epoch); whether the trial should be pruned now."""
        if not self._local:
            self.trial.report(value, step)
            return self.trial.should_prune()
        value, step = float(value), int(step)
        if step in self._values:  # as Optuna: the first report of a step stands
            return False
        self._values[step] = self._pending[step] = value
        now = time.monotonic()
        if now - self._flushed_at >= self._flush_every:
            self.flush()
        if not self._prunes:
            return False
        if self._finished is None or now - self._read_at >= self._refresh_every:
            self._finished = self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            self._read_at = now
        return self._pruner.prune(_FinishedTrials(self._study.direction, self._finished), self._frozen)

    def flush(self) -> None:
        """Write the values not yet stored, in one transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._flushed_at = time.monotonic()
        storage = self._study._storage
        backend = getattr(storage, "_backend", storage)
        if isinstance(backend, RDBStorage):
            # Optuna's own write reads the trial and looks the step up per value; these steps were never
            # written (`report` keeps the first value of a step), so one check and one multi-row insert.
            trial_id, rows = self.trial._trial_id, _models.TrialIntermediateValueModel
            with _create_scoped_session(backend.scoped_session, True) as session:
                trial = _models.TrialModel.find_or_raise_by_id(trial_id, session)
                backend.check_trial_is_updatable(trial_id, trial.state)
                for step, value in pending.items():
                    stored, kind = rows.intermediate_value_to_stored_repr(value)
                    session.add(rows(trial_id=trial_id, step=step, intermediate_value=stored,
                                     intermediate_value_type=kind))
        else:
            for step, value in pending.items():
                storage.set_trial_intermediate_value(self.trial._trial_id, step, value)
        # The trial object's own copy, which Optuna's report reads to skip a step reported twice.
        self.trial._cached_frozen_trial.intermediate_values.update(pending)


class _FinishedTrials:
    """What a percentile pruner reads of a study: its direction and its COMPLETE trials (a snapshot)."""

    def __init__(self, direction: optuna.study.StudyDirection, finished: list[FrozenTrial]) -> None:
        self.direction, self._finished = direction, finished

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        trials = [t for t in self._finished if states is None or t.state in states]
        return [_copy.deepcopy(t) for t in trials] if deepcopy else trials
