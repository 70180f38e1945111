"""`study_lock`: a lock shared by every process on every machine that uses one database.

Workers take it to claim a trial, so that "count the study's trials, then ask for one more" is atomic
across processes and the study total is exact. No wait is unbounded, and no holder keeps it for ever:

- PostgreSQL: a transaction-level `pg_advisory_xact_lock` on a stable 64-bit hash of the study name, held
  by one transaction for the body of the block (its commit releases it; so does the server ending the
  session). Waiting is done in 1 s attempts (`lock_timeout`), and between attempts `stop()` is asked, so
  a worker told to stop while it waits ends within a second. The holder's session carries
  `idle_in_transaction_session_timeout` (`max_hold_s`, 15 s by default): a holder paused by SIGSTOP, a
  sleeping laptop or a dead network loses the lock when the server ends its session, and the fleet goes
  on. A transaction-level lock also works through PgBouncer in transaction mode, where session-level
  locks do not. Through a pooler (`?pooler=pgbouncer`), the lock is tried without waiting
  (`pg_try_advisory_xact_lock`), and a worker sleeps between tries outside any transaction: a waiter
  must not pin one of the pooler's server connections (see `_poll_for_lock`).
- MySQL / MariaDB: `GET_LOCK` on a name derived from the same hash, in 1 s attempts; the holding session
  has a `wait_timeout` of `max_hold_s`, after which the server closes it and releases the lock.
- SQLite (one machine by nature): `flock` on `<database file>.lock`, polled without blocking (flock
  locks belong to an open file, so threads of one process exclude each other too); in-memory SQLite: a
  lock local to the process. A paused process keeps a file lock, as it keeps SQLite's own write lock:
  for a fleet, use PostgreSQL.

`held()` on the lock says whether it is still held (PostgreSQL: the session is alive); releasing a lock
whose session the server ended raises `LockLostError`, so a claim made under it can be checked again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError

from tuner.errors import StorageError
from tuner.storage.engine import IDLE_IN_TRANSACTION_S, through_pooler
from tuner.storage.url import is_sqlite_memory, redact

ATTEMPT_S = 1.0  # one bounded wait for the lock; `stop()` is asked between attempts
SQLITE_POLL_S = 0.02
POLL_FIRST_S = 0.01  # through a pooler: the first sleep between tries of the lock
_jitter = random.Random()

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


class LockWaitInterrupted(StorageError):
    """`stop()` became true while waiting for the lock: the lock was not taken."""


class LockLostError(StorageError):
    """The server ended the holder's session (it was paused or cut off for too long): the lock was lost."""


class HeldLock:
    """What the body of `study_lock` holds: `held()` tells whether the lock is still its own."""

    def __init__(self, connection: Connection | None = None) -> None:
        self._connection = connection

    def held(self) -> bool:
        if self._connection is None:
            return True
        try:
            self._connection.execute(text("SELECT 1"))
        except DBAPIError:
            return False
        return True


def lock_key(study_name: str) -> int:
    """A stable signed 64-bit key for `study_name` (the same on every machine and Python version)."""
    digest = hashlib.blake2b(f"tuner:{study_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _never() -> bool:
    return False


@contextlib.contextmanager
def study_lock(
    engine: Engine,
    study_name: str,
    *,
    stop: Callable[[], bool] = _never,
    max_hold_s: float | None = IDLE_IN_TRANSACTION_S,
) -> Iterator[HeldLock]:
    """Hold the database-wide lock of `study_name` for the body of the `with` block.

    `stop()` is asked between bounded waits; when it is true, LockWaitInterrupted is raised. `max_hold_s`
    bounds how long a silent holder keeps the lock (None: no bound, for migrations).
    """
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        lock = _postgresql_lock
    elif backend in ("mysql", "mariadb"):
        lock = _mysql_lock
    elif backend == "sqlite":
        lock = _memory_lock if is_sqlite_memory(engine.url) else _sqlite_file_lock
    else:
        raise StorageError(f"no cross-process lock for the {backend} database at {redact(engine.url)}")
    with lock(engine, study_name, stop, max_hold_s) as held:
        yield held


def _interrupted(study_name: str) -> LockWaitInterrupted:
    return LockWaitInterrupted(f"stopped while waiting for the lock of study '{study_name}'")


def _lock_timed_out(err: OperationalError) -> bool:
    return getattr(err.orig, "sqlstate", None) == "55P03"  # lock_not_available: our lock_timeout expired


@contextlib.contextmanager
def _postgresql_lock(engine: Engine, study_name: str, stop: Callable[[], bool],
                     max_hold_s: float | None) -> Iterator[HeldLock]:
    key = lock_key(study_name)
    hold_ms = "0" if max_hold_s is None else str(int(max_hold_s * 1000))
    take = _poll_for_lock if through_pooler(engine) else _wait_for_lock
    with engine.connect() as connection:
        transaction = take(connection, key, hold_ms, stop, study_name)
        try:
            yield HeldLock(connection)
        except BaseException:
            with contextlib.suppress(DBAPIError):
                transaction.rollback()
            raise
        try:
            transaction.commit()
        except (DBAPIError, PendingRollbackError):  # the latter: the body saw the connection die (`held()`)
            raise LockLostError(
                f"the lock of study '{study_name}' was lost: the database ended the session that held it "
                "(the process was paused or cut off while holding it)"
            ) from None


def _begin(connection: Connection, hold_ms: str, key: int) -> tuple[RootTransaction, bool]:
    """A transaction whose idle time is bounded by `hold_ms` and whose lock waits last one attempt, and
    whether the lock was free: it is tried in the same statement (one round trip when nobody holds it)."""
    transaction = connection.begin()
    got = connection.execute(text("SELECT set_config('idle_in_transaction_session_timeout', :ms, true), "
                                  "set_config('lock_timeout', :wait, true), pg_try_advisory_xact_lock(:key)"),
                             {"ms": hold_ms, "wait": str(int(ATTEMPT_S * 1000)), "key": key}).one()[2]
    return transaction, bool(got)


def _wait_for_lock(connection: Connection, key: int, hold_ms: str, stop: Callable[[], bool],
                   study_name: str) -> RootTransaction:
    """Wait for the lock in one transaction, in bounded attempts; returns the transaction that holds it."""
    transaction, got = _begin(connection, hold_ms, key)
    while not got:
        try:
            with connection.begin_nested():  # a timed-out attempt rolls back to here, not the whole
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            got = True
        except OperationalError as err:
            if not _lock_timed_out(err):
                raise
            if stop():
                transaction.rollback()
                raise _interrupted(study_name) from None
    return transaction


def _poll_for_lock(connection: Connection, key: int, hold_ms: str, stop: Callable[[], bool],
                   study_name: str) -> RootTransaction:
    """Through a pooler: try the lock in short transactions and sleep between tries outside any.

    A waiting transaction pins one of the pooler's few server connections; with more waiters than
    server connections, the holder would wait for a connection its claim needs while the waiters wait
    for its lock. The sleeps grow from 10 ms to ATTEMPT_S, each drawn at random below its bound (full
    jitter), so that the waiters do not try in step.
    """
    bound = POLL_FIRST_S
    while True:
        transaction, got = _begin(connection, hold_ms, key)
        if got:
            return transaction
        transaction.rollback()  # the pooler hands the server connection to someone else meanwhile
        if stop():
            raise _interrupted(study_name)
        time.sleep(_jitter.uniform(0, bound))
        bound = min(ATTEMPT_S, 2 * bound)


@contextlib.contextmanager
def _mysql_lock(engine: Engine, study_name: str, stop: Callable[[], bool],
                max_hold_s: float | None) -> Iterator[HeldLock]:
    name = f"tuner:{lock_key(study_name) & (2**64 - 1):016x}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if max_hold_s is not None:
            connection.execute(text("SET SESSION wait_timeout = :s"), {"s": max(1, int(max_hold_s))})
        while True:
            got = connection.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": ATTEMPT_S})
            result = got.scalar()
            if result == 1:
                break
            if result is None:
                raise StorageError(f"GET_LOCK failed for study '{study_name}' on {redact(engine.url)}")
            if stop():
                raise _interrupted(study_name)
        try:
            yield HeldLock(connection)
        finally:
            with contextlib.suppress(DBAPIError):
                connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            connection.invalidate()  # its wait_timeout is ours: the pool must not hand it out again


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine, study_name: str, stop: Callable[[], bool],
                      max_hold_s: float | None) -> Iterator[HeldLock]:
    fd = os.open(os.path.abspath(engine.url.database) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop():
                    raise _interrupted(study_name) from None
                time.sleep(SQLITE_POLL_S)
        try:
            yield HeldLock()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _memory_lock(engine: Engine, study_name: str, stop: Callable[[], bool],
                 max_hold_s: float | None) -> Iterator[HeldLock]:
    with _local_guard:
        lock = _local_locks.setdefault(study_name, threading.Lock())
    while not lock.acquire(timeout=ATTEMPT_S):
        if stop():
            raise _interrupted(study_name)
    try:
        yield HeldLock()
    finally:
        lock.release()
