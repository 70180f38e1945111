"""The rows of `tuner_workers`: one per worker process, refreshed while it lives, marked when it stops or dies.

Every function takes an engine and runs one transaction. Rows belong to a study by its id: a row whose
study was deleted is gone with it, and a worker touching it learns so (StudyDeletedError).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from tuner.errors import StorageError, StudyDeletedError
from tuner.storage.records import study_id_of, study_deleted
from tuner.storage.tables import WORKER_STATUSES, utcnow, workers

DEFAULT_HEARTBEAT_S = 10
LIVE_SLACK_S = 1.0


@dataclass(frozen=True)
class WorkerRecord:
    """A row of `tuner_workers`: one worker process of a study."""

    id: int
    study_id: int
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime
    trials_done: int
    status: str
    stopped_at: datetime | None
    message: str | None
    threads: int | None
    heartbeat_s: int | None

    def live(self, now: datetime) -> bool:
        """Running and seen within two of its heartbeats (plus slack): it refreshes its row at each one."""
        if self.status != "running":
            return False
        window = 2 * (self.heartbeat_s or DEFAULT_HEARTBEAT_S) + LIVE_SLACK_S
        return (now - self.last_seen).total_seconds() <= window


def register_worker(engine: Engine, study_id: int, host: str, pid: int, *, threads: int | None = None,
                    heartbeat_s: int | None = None) -> int:
    """Record a starting worker (status `running`); return its id."""
    now = utcnow()
    values = dict(study_id=study_id, host=host, pid=int(pid), started_at=now, last_seen=now, trials_done=0,
                  status="running", threads=threads, heartbeat_s=heartbeat_s)
    with engine.begin() as connection:
        if study_deleted(connection, study_id):
            raise StudyDeletedError(f"the study (id {study_id}) was deleted")
        return int(connection.execute(insert(workers).values(**values)).inserted_primary_key[0])


def _touch(engine: Engine, worker_id: int, **values: Any) -> None:
    """Update the live worker's row, `running` again if others marked it failed while it was paused (a
    laptop asleep, SIGSTOP: it is alive after all); a row that is gone went with its deleted study."""
    with engine.begin() as connection:
        result = connection.execute(update(workers).where(workers.c.id == worker_id)
                                    .values(status="running", stopped_at=None, message=None, **values))
    if result.rowcount == 0:
        raise StudyDeletedError(f"the row of worker {worker_id} is gone: its study was deleted")


def touch_worker(engine: Engine, worker_id: int, *, trials_done: int, threads: int | None = None) -> None:
    """Record that the worker is alive, how many trials it has run, and (if given) its BLAS threads."""
    values: dict[str, Any] = dict(last_seen=utcnow(), trials_done=int(trials_done))
    if threads is not None:
        values["threads"] = int(threads)
    _touch(engine, worker_id, **values)


def see_worker(engine: Engine, worker_id: int) -> None:
    """Refresh the worker's `last_seen` only (its heartbeat thread calls this while a long trial runs)."""
    _touch(engine, worker_id, last_seen=utcnow())


def stop_worker(engine: Engine, worker_id: int, *, status: str = "stopped", message: str | None = None,
                trials_done: int | None = None) -> None:
    """Record how the worker ended: `stopped` (cleanly) or `failed`, with an optional message and its final
    count of trials. A row already gone (its study deleted) is left gone.
    """
    if status not in WORKER_STATUSES or status == "running":
        raise StorageError(f"worker status must be 'stopped' or 'failed', got {status!r}")
    now = utcnow()
    values: dict[str, Any] = dict(status=status, message=message, stopped_at=now, last_seen=now)
    if trials_done is not None:
        values["trials_done"] = int(trials_done)
    with engine.begin() as connection:
        connection.execute(update(workers).where(workers.c.id == worker_id).values(**values))


def fail_stale_workers(engine: Engine, study_name: str, *, grace_period: float, message: str | None = None) -> list[int]:
    """Mark `failed` the study's workers still `running` but not seen for `grace_period` s; return their ids.

    A live worker refreshes `last_seen` at every trial heartbeat and while it waits, so only dead ones
    (killed, machine lost) fall behind.
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=grace_period)
    stale = (workers.c.study_id == study_id_of(study_name)) & (workers.c.status == "running") & (workers.c.last_seen < cutoff)
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
            select(workers).where(workers.c.study_id == study_id_of(study_name)).order_by(workers.c.id)
        ).mappings().all()
    return [WorkerRecord(**row) for row in rows]


def live_workers_on_host(engine: Engine, host: str) -> list[WorkerRecord]:
    """The live workers of every study of this database on `host` (`WorkerRecord.live`)."""
    now = utcnow()
    with engine.begin() as connection:
        rows = connection.execute(
            select(workers).where(workers.c.host == host, workers.c.status == "running").order_by(workers.c.id)
        ).mappings().all()
    return [w for w in (WorkerRecord(**row) for row in rows) if w.live(now)]


def live_workers(engine: Engine, study_name: str) -> list[WorkerRecord]:
    """The study's workers that look alive (`WorkerRecord.live`)."""
    now = utcnow()
    return [w for w in list_workers(engine, study_name) if w.live(now)]
