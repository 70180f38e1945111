"""`study_lock`: a lock shared by every process on every machine that uses one database.

Workers take it to claim a trial, so that "count the study's trials, then ask for one more" is atomic
across processes and the study total is exact.

- PostgreSQL: a session-level `pg_advisory_lock` on a stable 64-bit hash of the study name, held on one
  connection for the duration (a dead holder's connection closes and the server releases the lock).
- MySQL / MariaDB: `GET_LOCK` on a name derived from the same hash (lock names are limited to 64 chars).
- SQLite (one machine by nature): `flock` on `<database file>.lock`, one lock for every study of the file
  (SQLite serialises its writers anyway); flock locks belong to an open file, so threads of one process
  exclude each other too. In-memory SQLite: a lock local to the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tuner.errors import StorageError
from tuner.storage.engine import is_sqlite_memory
from tuner.storage.url import redact

MYSQL_WAIT_S = 10  # GET_LOCK waits this long per call; the loop below retries, so this only bounds one call

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def lock_key(study_name: str) -> int:
    """A stable signed 64-bit key for `study_name` (the same on every machine and Python version)."""
    digest = hashlib.blake2b(f"tuner:{study_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def study_lock(engine: Engine, study_name: str) -> Iterator[None]:
    """Hold the database-wide lock of `study_name` for the body of the `with` block."""
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        lock = _postgresql_lock
    elif backend in ("mysql", "mariadb"):
        lock = _mysql_lock
    elif backend == "sqlite":
        lock = _memory_lock if is_sqlite_memory(engine.url) else _sqlite_file_lock
    else:
        raise StorageError(f"no cross-process lock for the {backend} database at {redact(engine.url)}")
    with lock(engine, study_name):
        yield


@contextlib.contextmanager
def _postgresql_lock(engine: Engine, study_name: str) -> Iterator[None]:
    key = lock_key(study_name)
    # Autocommit: the lock belongs to the session, and the connection must not sit idle in a transaction.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextlib.contextmanager
def _mysql_lock(engine: Engine, study_name: str) -> Iterator[None]:
    name = f"tuner:{lock_key(study_name) & (2**64 - 1):016x}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        while True:
            got = connection.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": MYSQL_WAIT_S})
            result = got.scalar()
            if result == 1:
                break
            if result is None:
                raise StorageError(f"GET_LOCK failed for study '{study_name}' on {redact(engine.url)}")
        try:
            yield
        finally:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine, study_name: str) -> Iterator[None]:
    fd = os.open(os.path.abspath(engine.url.database) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _memory_lock(engine: Engine, study_name: str) -> Iterator[None]:
    with _local_guard:
        lock = _local_locks.setdefault(study_name, threading.Lock())
    with lock:
        yield
