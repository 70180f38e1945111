"""Database calls that survive a restarting server: which errors heal, and the retry policy for them.

`is_connection_error` says whether an error can heal by waiting: a lost or refused connection, a server
shutting down or restarting, too many connections, a lock or statement timeout, a serialization failure
or deadlock, SQLite's "database is locked". Everything else a database raises is permanent (a dropped
table, a full disk, a malformed or read-only file, a permission): retrying it for a minute per trial would
only hide it, so `RetryPolicy` raises it at once as one StorageError line (`is_database_error` finds it);
a healing error that outlasts the patience becomes a DatabaseUnavailableError (exit code 75).
The classes follow PostgreSQL's SQLSTATE codes (class 08 connection exceptions, 57P0x shutdowns, 53300,
55P03, 57014, 40001, 40P01), MySQL's client and server error numbers, and SQLite's result codes as its
messages say them.

`RetryPolicy` retries a call on healing errors with exponential backoff (0.5 s doubling to 5 s) for up to
`patience` seconds, using tenacity; each retry is logged on the `tuner.storage.retry` logger (`tuner -v`
shows it). Past the patience, StorageError names what was being done and the driver's reason, never the
password. The clock and the sleep are injectable, so the policy is tested without waiting.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from tuner.errors import DatabaseUnavailableError, StorageError
from tuner.storage.engine import driver_reason

DB_PATIENCE_S = 60.0  # how long a worker keeps retrying a lost database before it gives up
log = logging.getLogger(__name__)
_T = TypeVar("_T")


def _causes(err: BaseException) -> list[BaseException]:
    """`err` and every error it was raised from or while handling, each once."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [err]
    while pending:
        current = pending.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return seen


_PG_HEALING = {"40001", "40P01", "53300", "55P03", "57014", "57P01", "57P02", "57P03", "25P03"}
_MYSQL_HEALING = {1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055}
_SQLITE_HEALING = ("database is locked", "database table is locked")


def _heals(orig: BaseException) -> bool:
    """Whether the driver's error `orig` (under an OperationalError) can heal by waiting."""
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate.startswith("08") or sqlstate in _PG_HEALING
    if isinstance(orig, sqlite3.Error):
        return any(m in str(orig).lower() for m in _SQLITE_HEALING)
    code = orig.args[0] if orig.args and isinstance(orig.args[0], int) else None
    if code is not None:
        return code in _MYSQL_HEALING
    return True  # no code at all: the driver lost or could not open the connection


def is_connection_error(err: BaseException) -> bool:
    """True when `err`, or an error it was raised from, can heal by waiting (see the module docstring).

    Optuna wraps database errors in `StorageInternalError ... from err`, and a rollback on a dead
    connection raises a new error while handling the first (its `__context__`): the whole chain is read.
    """
    for e in _causes(err):
        if isinstance(e, PoolTimeoutError) or (isinstance(e, DBAPIError) and e.connection_invalidated):
            return True
        if isinstance(e, PendingRollbackError):  # a connection that died inside a transaction: a new one heals
            return True
        if isinstance(e, OperationalError) and _heals(e.orig):
            return True
    return False


def is_database_error(err: BaseException) -> bool:
    """True when `err`, or an error it was raised from, came from the database."""
    return any(isinstance(e, DBAPIError) for e in _causes(err))


def connection_reason(err: BaseException, url: URL) -> str:
    """The driver's one-line reason for a database error (password hidden)."""
    inner = next((e for e in _causes(err) if isinstance(e, DBAPIError)), err)
    return driver_reason(inner, url)


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a database call on connection errors, with backoff, for up to `patience` seconds in all.

    A retry that would start after the patience is not made: the last error becomes a StorageError.
    """

    url: URL
    patience: float = DB_PATIENCE_S
    first_delay: float = 0.5
    max_delay: float = 5.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def call(self, fn: Callable[[], _T], *, what: str) -> _T:
        """`fn()`, retried while it fails with a connection error and the patience lasts."""
        started = self.clock()
        retrying = tenacity.Retrying(
            sleep=self.sleep,
            wait=tenacity.wait_exponential(multiplier=self.first_delay, max=self.max_delay),
            stop=lambda state: self.clock() - started + state.upcoming_sleep > self.patience,
            retry=tenacity.retry_if_exception(is_connection_error),
            before_sleep=lambda state: self._log(state, what),
            reraise=True,
        )
        try:
            return retrying(fn)
        except Exception as err:
            if not is_database_error(err):
                raise
            if not is_connection_error(err):
                raise StorageError(f"the database failed while {what}: {connection_reason(err, self.url)}") from None
            raise DatabaseUnavailableError(
                f"lost the database connection for {self.patience:g} s while {what}: "
                f"{connection_reason(err, self.url)}; start the worker again when the database is back"
            ) from None

    def _log(self, state: tenacity.RetryCallState, what: str) -> None:
        err = state.outcome.exception() if state.outcome is not None else None
        reason = connection_reason(err, self.url) if err is not None else "unknown"
        log.info("lost the database connection while %s (%s); retry %d in %.1f s",
                    what, reason, state.attempt_number, state.upcoming_sleep)
