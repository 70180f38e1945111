"""The retry policy for database calls (with a fake clock) and the classifier of errors that heal."""

from __future__ import annotations

import logging
import sqlite3

import optuna
import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DatabaseError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)

from tuner.errors import DatabaseUnavailableError, StorageError
from tuner.storage.retry import RetryPolicy, connection_reason, is_connection_error

URL = make_url("postgresql+psycopg://tuner:s3cret-pw@db.example.org:5432/tuner")


class FakeClock:
    """time.monotonic and time.sleep in one: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def lost_connection() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly (s3cret-pw)"))


def failing(times: int, error: Exception, result: str = "ok"):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result

    return call, calls


def policy(clock: FakeClock, patience: float = 60.0) -> RetryPolicy:
    return RetryPolicy(URL, patience=patience, clock=clock, sleep=clock.sleep)


def test_a_call_that_heals_is_retried_with_doubling_delays():
    clock = FakeClock()
    call, calls = failing(4, lost_connection())
    assert policy(clock).call(call, what="claiming a trial") == "ok"
    assert len(calls) == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]


def test_delays_are_capped_at_five_seconds():
    clock = FakeClock()
    call, _ = failing(7, lost_connection())
    policy(clock).call(call, what="x")
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_past_the_patience_it_gives_up_with_one_line_that_hides_the_password():
    clock = FakeClock()
    call, calls = failing(100, lost_connection())
    with pytest.raises(StorageError) as caught:
        policy(clock, patience=10.0).call(call, what="claiming a trial")
    # 0.5 + 1 + 2 + 4 = 7.5 s slept; the next 5 s wait would end past 10 s, so no fifth retry
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert len(calls) == 5
    message = str(caught.value)
    assert isinstance(caught.value, DatabaseUnavailableError) and caught.value.exit_code == 75  # EX_TEMPFAIL
    assert message.startswith("lost the database connection for 10 s while claiming a trial: ")
    assert "server closed the connection unexpectedly" in message and "s3cret-pw" not in message
    assert "\n" not in message


def test_an_error_that_is_not_the_databases_is_raised_at_once_as_it_is():
    clock = FakeClock()
    call, calls = failing(1, ValueError("bad value"))
    with pytest.raises(ValueError, match="bad value"):
        policy(clock).call(call, what="x")
    assert (len(calls), clock.sleeps) == (1, [])


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (IntegrityError("INSERT", {}, Exception("duplicate key")), "duplicate key"),
        (OperationalError("UPDATE", {}, sqlite3.OperationalError("database or disk is full")), "database or disk is full"),
        (OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: trials")), "no such table: trials"),
        (OperationalError("INSERT", {}, psycopg.errors.DiskFull("could not extend file")), "could not extend file"),
    ],
)
def test_a_permanent_database_error_ends_at_once_in_one_line(error, reason):
    clock = FakeClock()
    call, calls = failing(1, error)
    with pytest.raises(StorageError) as caught:
        policy(clock).call(call, what="saving the curve of trial 7")
    assert (len(calls), clock.sleeps) == (1, [])
    assert str(caught.value) == f"the database failed while saving the curve of trial 7: {reason}"


def test_each_retry_is_logged_for_tuner_v(caplog):
    clock = FakeClock()
    call, _ = failing(2, lost_connection())
    with caplog.at_level(logging.INFO, logger="tuner"):
        policy(clock).call(call, what="saving the curve of trial 3")
    lines = [r.getMessage() for r in caplog.records if r.name == "tuner.storage.retry"]
    assert len(lines) == 2
    assert lines[0].startswith("lost the database connection while saving the curve of trial 3 (")
    assert "retry 1 in 0.5 s" in lines[0] and "retry 2 in 1.0 s" in lines[1]
    assert not any("s3cret-pw" in line for line in lines)


def _mysql(code: int, message: str) -> Exception:
    return Exception(code, message)  # PyMySQL's errors carry (number, message) in args


def _raised_from(cause: BaseException, *, as_context: bool = False) -> Exception:
    try:
        try:
            raise cause
        except BaseException as inner:
            if as_context:
                raise RuntimeError("while rolling back")  # noqa: B904 - the implicit context is the point
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from inner
    except Exception as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "heals"),
    [
        (lost_connection(), True),
        (OperationalError("x", {}, sqlite3.OperationalError("database is locked")), True),
        (OperationalError("x", {}, sqlite3.OperationalError("database or disk is full")), False),
        (OperationalError("x", {}, sqlite3.OperationalError("attempt to write a readonly database")), False),
        (DatabaseError("x", {}, sqlite3.DatabaseError("database disk image is malformed")), False),
        (OperationalError("x", {}, psycopg.errors.AdminShutdown("terminating connection")), True),
        (OperationalError("x", {}, psycopg.errors.LockNotAvailable("lock timeout")), True),
        (OperationalError("x", {}, psycopg.errors.TooManyConnections("too many clients")), True),
        (OperationalError("x", {}, psycopg.errors.DiskFull("could not extend file")), False),
        (ProgrammingError("x", {}, psycopg.errors.UndefinedTable('relation "trials" does not exist')), False),
        (OperationalError("x", {}, psycopg.OperationalError("connection refused")), True),
        (OperationalError("x", {}, _mysql(2013, "Lost connection to MySQL server")), True),
        (OperationalError("x", {}, _mysql(1114, "The table is full")), False),
        (DBAPIError("SELECT 1", {}, Exception("reset"), connection_invalidated=True), True),
        (DBAPIError("SELECT 1", {}, Exception("syntax")), False),
        (ProgrammingError("SELECT x", {}, Exception("no such column")), False),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (ValueError("a bug"), False),
        (_raised_from(lost_connection()), True),  # Optuna wraps it: `raise StorageInternalError from err`
        (_raised_from(lost_connection(), as_context=True), True),  # a rollback failing while handling it
        (_raised_from(ValueError("a bug")), False),
    ],
)
def test_the_classifier_retries_only_lost_connections(error, heals):
    assert is_connection_error(error) is heals


def test_the_classifier_survives_a_cause_loop():
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert is_connection_error(a) is False


def test_the_reason_is_the_drivers_first_line_without_the_password():
    assert connection_reason(_raised_from(lost_connection()), URL) == (
        "server closed the connection unexpectedly (***)"
    )
