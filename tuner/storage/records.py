"""Reading and writing the project's records: studies, learning curves, workers.

Every function takes an engine and runs one transaction (`engine.begin()`), all SQL through SQLAlchemy
Core with bound parameters. Curve values that are not finite are stored as NULL (see `tables`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

import tuner
from tuner.errors import StorageError, StudyExistsError, StudyNotFoundError
from tuner.storage.tables import WORKER_STATUSES, curves, studies, utcnow, workers

CURVE_FIELDS = ("train_loss", "val_loss", "val_accuracy", "lr", "seconds")

_UNSET: Any = object()


@dataclass(frozen=True)
class StudyRecord:
    """A row of `tuner_studies`: the validated spec (as a dict), its TOML text, and what probes found."""

    name: str
    spec: dict
    spec_toml: str
    source_path: str | None
    created_at: datetime
    tuner_version: str
    init_guess: dict | None
    lr_probe: dict | None


@dataclass(frozen=True)
class WorkerRecord:
    """A row of `tuner_workers`: one worker process of a study."""

    id: int
    study_name: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
    trials_done: int
    status: str
    stopped_at: datetime | None
    message: str | None


def insert_study(
    engine: Engine,
    name: str,
    spec: dict,
    spec_toml: str,
    source_path: str | None,
    *,
    init_guess: dict | None = None,
    lr_probe: dict | None = None,
) -> None:
    """Add the record of a new study; an existing name raises StudyExistsError."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(studies).values(
                    name=name,
                    spec=spec,
                    spec_toml=spec_toml,
                    source_path=source_path or None,
                    created_at=utcnow(),
                    tuner_version=tuner.__version__,
                    init_guess=init_guess,
                    lr_probe=lr_probe,
                )
            )
    except IntegrityError:
        if get_study(engine, name) is None:  # another constraint: a bug, not a duplicate
            raise
        raise StudyExistsError(f"study '{name}' already exists") from None


def get_study(engine: Engine, name: str) -> StudyRecord | None:
    """The record of study `name`, or None."""
    with engine.begin() as connection:
        row = connection.execute(select(studies).where(studies.c.name == name)).mappings().first()
    return StudyRecord(**row) if row is not None else None


def update_study(engine: Engine, name: str, *, init_guess: dict | None = _UNSET, lr_probe: dict | None = _UNSET) -> None:
    """Set the init-scale guess and/or the learning-rate probe result of a study (None clears one)."""
    values = {k: v for k, v in (("init_guess", init_guess), ("lr_probe", lr_probe)) if v is not _UNSET}
    if not values:
        return
    with engine.begin() as connection:
        result = connection.execute(update(studies).where(studies.c.name == name).values(**values))
        if result.rowcount == 0:
            raise StudyNotFoundError(f"no study named '{name}'")


def delete_study_records(engine: Engine, name: str) -> None:
    """Delete the study's curves, workers and record (Optuna's own study is the caller's to delete)."""
    with engine.begin() as connection:
        connection.execute(delete(curves).where(curves.c.study_name == name))
        connection.execute(delete(workers).where(workers.c.study_name == name))
        connection.execute(delete(studies).where(studies.c.name == name))


def list_study_records(engine: Engine) -> list[StudyRecord]:
    """Every study record, by name."""
    with engine.begin() as connection:
        rows = connection.execute(select(studies).order_by(studies.c.name)).mappings().all()
    return [StudyRecord(**row) for row in rows]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def save_curve(
    engine: Engine, study_name: str, trial_number: int, trial_id: int | None, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Store a trial's learning curve, one row per epoch, replacing any rows it already had.

    `rows` hold `epoch` and the `CURVE_FIELDS`; NaN and inf become NULL. A retried write of the same
    trial replaces its rows rather than failing on the (study, trial, epoch) unique key.
    """
    params = []
    for row in rows:
        if "epoch" not in row:
            raise StorageError(f"curve row of trial {trial_number} has no 'epoch': {dict(row)}")
        params.append(
            {
                "study_name": study_name,
                "trial_number": int(trial_number),
                "trial_id": None if trial_id is None else int(trial_id),
                "epoch": int(row["epoch"]),
                **{name: _finite(row.get(name)) for name in CURVE_FIELDS},
            }
        )
    with engine.begin() as connection:
        connection.execute(
            delete(curves).where(curves.c.study_name == study_name, curves.c.trial_number == int(trial_number))
        )
        if params:
            connection.execute(insert(curves), params)


def load_curves(engine: Engine, study_name: str) -> list[dict]:
    """Every curve row of the study, by trial number and epoch (NULL values come back as None)."""
    columns = [curves.c.trial_number, curves.c.trial_id, curves.c.epoch, *(curves.c[n] for n in CURVE_FIELDS)]
    with engine.begin() as connection:
        rows = connection.execute(
            select(*columns)
            .where(curves.c.study_name == study_name)
            .order_by(curves.c.trial_number, curves.c.epoch)
        ).mappings().all()
    return [dict(row) for row in rows]


def register_worker(engine: Engine, study_name: str, host: str, pid: int) -> int:
    """Record a starting worker (status `running`); return its id."""
    now = utcnow()
    with engine.begin() as connection:
        result = connection.execute(
            insert(workers).values(
                study_name=study_name, host=host, pid=int(pid), started_at=now, last_seen=now,
                trials_done=0, status="running",
            )
        )
        return int(result.inserted_primary_key[0])


def touch_worker(engine: Engine, worker_id: int, *, trials_done: int) -> None:
    """Record that the worker is alive and how many trials it has run."""
    with engine.begin() as connection:
        connection.execute(
            update(workers).where(workers.c.id == worker_id).values(last_seen=utcnow(), trials_done=int(trials_done))
        )


def stop_worker(engine: Engine, worker_id: int, *, status: str = "stopped", message: str | None = None) -> None:
    """Record how the worker ended: `stopped` (cleanly) or `failed`, with an optional message."""
    if status not in WORKER_STATUSES or status == "running":
        raise StorageError(f"worker status must be 'stopped' or 'failed', got {status!r}")
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            update(workers)
            .where(workers.c.id == worker_id)
            .values(status=status, message=message, stopped_at=now, last_seen=now)
        )


def see_worker(engine: Engine, worker_id: int) -> None:
    """Refresh the worker's `last_seen` only (its heartbeat thread calls this while a long trial runs)."""
    with engine.begin() as connection:
        connection.execute(update(workers).where(workers.c.id == worker_id).values(last_seen=utcnow()))


def fail_stale_workers(engine: Engine, study_name: str, *, grace_period: float, message: str | None = None) -> list[int]:
    """Mark `failed` the study's workers still `running` but not seen for `grace_period` s; return their ids.

    A live worker refreshes `last_seen` at every trial heartbeat and while it waits, so only dead ones
    (killed, machine lost) fall behind.
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=grace_period)
    stale = (workers.c.study_name == study_name) & (workers.c.status == "running") & (workers.c.last_seen < cutoff)
    with engine.begin() as connection:
        ids = [int(i) for i in connection.execute(select(workers.c.id).where(stale).order_by(workers.c.id)).scalars()]
        if ids:
            connection.execute(
                update(workers).where(workers.c.id.in_(ids)).values(status="failed", stopped_at=now, message=message)
            )
    return ids


def list_workers(engine: Engine, study_name: str) -> list[WorkerRecord]:
    """The workers of a study, in the order they started."""
    with engine.begin() as connection:
        rows = connection.execute(
            select(workers).where(workers.c.study_name == study_name).order_by(workers.c.id)
        ).mappings().all()
    return [WorkerRecord(**row) for row in rows]
