"""Engines and Optuna storages: small pools, live-connection checks, timeouts, one cache per process.

Engines and `RDBStorage` objects hold connection pools, which must not cross a `fork`: both caches are keyed
by `os.getpid()`, so a forked worker builds its own on first use.

Pool sizes are small on purpose: every worker process holds one tuner engine and one Optuna storage, and
many workers x default pools (5 + 10 overflow each) exhaust PostgreSQL's `max_connections`.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError

from tuner.errors import StorageError
from tuner.storage.url import parse_url, redact

POOL_SIZE = 2
MAX_OVERFLOW = 2
CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_S = 60

_DRIVER_HINTS = {
    "postgresql": "postgresql+psycopg:// (pip install 'tuner[postgres]')",
    "mysql": "mysql+pymysql:// (pip install 'tuner[mysql]')",
    "mariadb": "mysql+pymysql:// (pip install 'tuner[mysql]')",
    "sqlite": "sqlite:///path/to/file.db",
}

_engines: dict[tuple[str, int], Engine] = {}
_storages: dict[tuple[str, int, int | None, int | None, int | None], optuna.storages.RDBStorage] = {}


def is_sqlite_memory(url: URL) -> bool:
    """True for an in-memory SQLite database (`sqlite://` or `sqlite:///:memory:`)."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def engine_kwargs(url: str | URL) -> dict[str, Any]:
    """Keyword arguments of `create_engine` for this URL: pool sizes, pre-ping, connect or busy timeouts."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if is_sqlite_memory(parsed):
            return {}  # one connection per thread (SingletonThreadPool); there is nothing to wait for
        return {
            "pool_size": POOL_SIZE,
            "max_overflow": MAX_OVERFLOW,
            "pool_pre_ping": True,
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S},
        }
    kwargs: dict[str, Any] = {"pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW, "pool_pre_ping": True}
    if parsed.get_driver_name() in ("psycopg", "psycopg2", "pymysql", "mysqldb"):
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return kwargs


def make_engine(url: str | URL) -> Engine:
    """The engine of `url` for this process (cached per URL and pid).

    SQLite files get a 60 s busy timeout and WAL journal mode (readers do not block the writer);
    PostgreSQL and MySQL a 5 s connect timeout. An unknown dialect or a missing driver raises StorageError.
    Creating the engine does not connect: call `check_connection` for a clear error on an unreachable server.
    """
    parsed = parse_url(url)
    key = (parsed.render_as_string(hide_password=False), os.getpid())
    engine = _engines.get(key)
    if engine is None:
        engine = _create_engine(parsed)
        _engines[key] = engine
    return engine


def dispose_engines(url: str | URL | None = None) -> None:
    """Close the pooled connections of this process's cached engines and Optuna storages (of `url`, or all).

    For tests and tools that drop a database: the server refuses while connections to it are open.
    """
    target = None if url is None else parse_url(url).render_as_string(hide_password=False)
    for cache in (_engines, _storages):
        for key in [k for k in cache if target is None or k[0] == target]:
            item = cache.pop(key)
            (item if isinstance(item, Engine) else item.engine).dispose()


def _create_engine(url: URL) -> Engine:
    try:
        engine = sqlalchemy.create_engine(url, **engine_kwargs(url))
    except NoSuchModuleError:
        hint = _DRIVER_HINTS.get(url.get_backend_name())
        known = f"; use {hint}" if hint else "; use sqlite:///..., postgresql+psycopg://... or mysql+pymysql://..."
        raise StorageError(f"unknown database dialect or driver '{url.drivername}' in {redact(url)}{known}") from None
    except ImportError as err:
        hint = _DRIVER_HINTS.get(url.get_backend_name(), "another driver")
        raise StorageError(
            f"the driver of {redact(url)} is not installed ({err}); install it or use {hint}"
        ) from None
    if url.get_backend_name() == "sqlite" and not is_sqlite_memory(url):
        event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection, connection_record) -> None:  # noqa: ANN001 - DBAPI objects
    # WAL lets readers (the dashboard, `study list`) work while a worker writes; it is stored in the file.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def check_connection(engine: Engine) -> None:
    """Connect once and run `SELECT 1`; an unreachable database raises StorageError within ~10 s.

    The message names the URL (host and port, password hidden) and the driver's reason, e.g.
    `cannot connect to postgresql+psycopg://user:***@10.255.255.1:5432/db: timeout expired`.
    """
    try:
        if engine.dialect.driver == "pymysql":
            _check_pymysql(engine)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        raise StorageError(f"cannot connect to {redact(engine.url)}: {driver_reason(err, engine.url)}") from None
    except engine.dialect.loaded_dbapi.Error as err:
        raise StorageError(f"cannot connect to {redact(engine.url)}: {driver_reason(err, engine.url)}") from None


def _check_pymysql(engine: Engine) -> None:
    # PyMySQL's connect_timeout covers the TCP connect only; the handshake waits on read_timeout, which the
    # pool cannot set (it would also cut long queries and GET_LOCK waits). One bounded connection first.
    args, params = engine.dialect.create_connect_args(engine.url)
    params.update(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=CONNECT_TIMEOUT_S, write_timeout=CONNECT_TIMEOUT_S)
    engine.dialect.loaded_dbapi.connect(*args, **params).close()


def driver_reason(err: BaseException, url: URL) -> str:
    """The first line of a database error, without SQLAlchemy's boilerplate and never with the password."""
    inner = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    reason = lines[0] if lines else type(inner).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason


def optuna_storage(
    url: str | URL,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> optuna.storages.RDBStorage:
    """Optuna's `RDBStorage` for `url` with the same pool settings as `make_engine` (cached per process).

    With `heartbeat_interval`, running trials record heartbeats, a trial without one for `grace_period` s
    is failed as stale, and `RetryHeartbeatStaleTrialCallback(max_retry)` queues a copy of it (same
    parameters) as WAITING. Keep the grace period generous: a live but slow worker whose trial was failed
    by another dies on an assertion.
    """
    parsed = parse_url(url)
    key = (parsed.render_as_string(hide_password=False), os.getpid(), heartbeat_interval, grace_period, max_retry)
    storage = _storages.get(key)
    if storage is not None:
        return storage
    engine = make_engine(parsed)  # a clear StorageError for an unknown dialect or a missing driver
    if parsed.get_backend_name() == "sqlite" and not is_sqlite_memory(parsed):
        # Our engine's connect event switches the file to WAL before Optuna's engine first opens it.
        with engine.connect():
            pass
    callback = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat_interval is not None:
            callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        try:
            storage = optuna.storages.RDBStorage(
                # RDBStorage runs str.format on the URL: braces (in a database name, say) must be doubled.
                url=parsed.render_as_string(hide_password=False).replace("{", "{{").replace("}", "}}"),
                engine_kwargs=engine_kwargs(parsed),
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=callback,
            )
        except ImportError as err:
            raise StorageError(f"the driver of {redact(parsed)} is not installed ({err})") from None
        except SQLAlchemyError as err:
            raise StorageError(f"cannot open the Optuna storage at {redact(parsed)}: {driver_reason(err, parsed)}") from None
    _storages[key] = storage
    return storage
