"""Engines: small pools, live-connection checks, timeouts, one cache per process.

Engines (and the Optuna storages of `optuna_adapter`, which hold an engine of their own) hold connection
pools, which must not cross a `fork`: `process_cached` keys its cache by `os.getpid()`, so a forked worker
builds its own on first use, and `dispose_engines` closes every pool of the cache.

Pool sizes are small on purpose: every worker process holds one tuner engine and one Optuna storage, and
many workers x default pools (5 + 10 overflow each) exhaust PostgreSQL's `max_connections`.

No connection may wait without bound, because one stuck process (paused, asleep, cut off from the
network) must not stall the fleet. Every PostgreSQL session therefore starts with PostgreSQL's own
timeouts and TCP keepalives on both ends (see `PG_SESSION`): a statement runs at most 2 minutes, a row
lock is waited for at most 30 s, a transaction left idle (its process paused) is ended by the server
after 15 s, which releases its locks (the claim lock included), and a peer that vanished from the
network is noticed in about 25 s (10 s idle, then 3 probes 5 s apart) by the server and the client alike.

Through PgBouncer (the URL says so with `?pooler=pgbouncer`, tuner's own parameter, removed before the
driver sees the URL) sessions cannot carry libpq's `options`: PgBouncer refuses unknown startup
parameters, and ignoring them would silently drop the timeouts. The server gives them instead (see
`session_defaults`). psycopg's automatic
server-side prepared statements are turned off there: in transaction mode the next statement may run on
another server connection, which never saw the PREPARE (PgBouncer before 1.21).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from tuner.errors import StorageError
from tuner.storage.url import HIDDEN, is_sqlite_memory, parse_url, redact, secrets_of
from tuner.text import printable

POOL_SIZE = 2
MAX_OVERFLOW = 2
CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_S = 60
IDLE_IN_TRANSACTION_S = 15  # how long a paused process can hold a transaction (and its locks)
KEEPALIVE = {"idle": 10, "interval": 5, "count": 3}  # a vanished peer is dropped after ~25 s
# PostgreSQL's settings for every session, as libpq's `options` (`-c name=value`)
PG_SESSION = {
    "statement_timeout": "120s",
    "lock_timeout": "30s",
    "idle_in_transaction_session_timeout": f"{IDLE_IN_TRANSACTION_S}s",
    **{f"tcp_keepalives_{k}": str(v) for k, v in KEEPALIVE.items()},
}

POOLER_PARAM = "pooler"  # `?pooler=pgbouncer`: a connection pooler stands between tuner and PostgreSQL
POOLERS = ("pgbouncer",)

_DRIVER_HINTS = {
    "postgresql": "postgresql+psycopg:// (pip install 'tuner[postgres]')",
    "mysql": "mysql+pymysql:// (pip install 'tuner[mysql]')",
    "mariadb": "mysql+pymysql:// (pip install 'tuner[mysql]')",
    "sqlite": "sqlite:///path/to/file.db",
}

_T = TypeVar("_T")
# (kind, URL with password, pid, *options) -> an Engine, or an object holding one in `.engine`
_cache: dict[tuple, Any] = {}


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
    if backend == "postgresql" and parsed.get_driver_name() in ("psycopg", "psycopg2"):
        kwargs["connect_args"] = _postgresql_connect_args(parsed)
        if pooler(parsed) is not None:
            kwargs["connect_args"] = _pooled_connect_args(kwargs["connect_args"], parsed)
    elif parsed.get_driver_name() in ("pymysql", "mysqldb"):
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return kwargs


def _postgresql_connect_args(url: URL) -> dict[str, Any]:
    """libpq's connection parameters: the connect timeout, client keepalives, the session settings.

    Settings the URL already gives in its own `options` come last, so they win.
    """
    settings = " ".join(f"-c {name}={value}" for name, value in PG_SESSION.items())
    own = url.query.get("options")
    own = " ".join(own) if isinstance(own, tuple) else own
    return {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "keepalives": 1,
        **{f"keepalives_{k}": v for k, v in KEEPALIVE.items()},
        "options": f"{settings} {own}" if own else settings,
        "application_name": url.query.get("application_name") or f"tuner pid {os.getpid()}",
    }


def pooler(url: str | URL) -> str | None:
    """The pooler the URL goes through (`postgresql+psycopg://...?pooler=pgbouncer`), or None.

    An unknown pooler, or one on another database than PostgreSQL, raises StorageError naming the value.
    """
    parsed = parse_url(url)
    value = parsed.query.get(POOLER_PARAM)
    if value is None:
        return None
    if value not in POOLERS:
        raise StorageError(f"{redact(parsed)}: unknown {POOLER_PARAM}={value}; the one tuner knows is "
                           f"{POOLER_PARAM}=pgbouncer")
    if parsed.get_backend_name() != "postgresql":
        raise StorageError(f"{redact(parsed)}: {POOLER_PARAM}={value} is for postgresql+psycopg:// URLs only")
    return value


def driver_url(url: str | URL) -> URL:
    """The URL without tuner's own `pooler` parameter, for an engine built elsewhere (Optuna's)."""
    parsed = parse_url(url)
    return parsed.difference_update_query([POOLER_PARAM]) if pooler(parsed) else parsed


def through_pooler(engine: Engine) -> bool:
    """Whether the engine's connections go through a pooler (its URL keeps the `pooler` parameter)."""
    return pooler(engine.url) is not None


def _pooled_connect_args(args: dict[str, Any], url: URL) -> dict[str, Any]:
    """The connect arguments without libpq's `options` (the server's role defaults replace them), and, for
    psycopg 3, without automatic prepared statements. Options the URL itself gives are refused."""
    if url.query.get("options"):
        raise StorageError(f"{redact(url)}: PgBouncer refuses libpq's 'options' parameter; remove it from the "
                           "URL (the session settings come from 'tuner db upgrade' through a pooler)")
    pooled = {k: v for k, v in args.items() if k != "options"}
    if url.get_driver_name() == "psycopg":
        pooled["prepare_threshold"] = None
    return pooled


def make_engine(url: str | URL) -> Engine:
    """The engine of `url` for this process (cached per URL and pid).

    SQLite files get a 60 s busy timeout and WAL journal mode (readers do not block the writer);
    PostgreSQL and MySQL a 5 s connect timeout. An unknown dialect or a missing driver raises StorageError.
    Creating the engine does not connect: call `check_connection` for a clear error on an unreachable server.
    """
    parsed = parse_url(url)
    return process_cached("engine", parsed, (), lambda: _create_engine(parsed))


def process_cached(kind: str, url: URL, options: tuple, build: Callable[[], _T]) -> _T:
    """The object `build()` made for (kind, url, options) in this process, built on first use.

    The object must be an Engine or hold one in `.engine`, so that `dispose_engines` can close its pool.
    """
    key = (kind, url.render_as_string(hide_password=False), os.getpid(), *options)
    item = _cache.get(key)
    if item is None:
        item = _cache[key] = build()
    return item


def dispose_engines(url: str | URL | None = None) -> None:
    """Close the pooled connections of this process's cached engines and Optuna storages (of `url`, or all).

    For tests and tools that drop a database: the server refuses while connections to it are open.
    """
    target = None if url is None else parse_url(url).render_as_string(hide_password=False)
    for key in [k for k in _cache if target is None or k[1] == target]:
        item = _cache.pop(key)
        (item if isinstance(item, Engine) else item.engine).dispose()


def _create_engine(url: URL) -> Engine:
    through = pooler(url)  # a bad `pooler` value fails before SQLAlchemy warns about the parameter
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
    configure_sqlite(engine, foreign_keys=True)
    if through is not None:
        # engine.url keeps the parameter, so that whatever is built from it knows of the pooler too
        event.listen(engine, "do_connect", _drop_pooler_param)
    return engine


def _drop_pooler_param(dialect: Any, record: ConnectionPoolEntry, cargs: tuple, cparams: dict[str, Any]) -> None:
    cparams.pop(POOLER_PARAM, None)  # tuner's own: libpq would refuse an unknown connection parameter


def configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    """Give every connection of `engine` to a SQLite file tuner's settings (`_sqlite_on_connect`).

    `foreign_keys` turns SQLite's enforcement on: for tuner's own tables (their rows go with their study),
    never for Optuna's, whose deletes rely on the ORM and silently roll back on an integrity error.
    Connections already pooled are closed, so that none is handed out without the settings (Optuna's
    storage connects once while it is built). Other databases are left alone.
    """
    if engine.url.get_backend_name() != "sqlite" or is_sqlite_memory(engine.url):
        return
    event.listen(engine, "connect", _sqlite_on_connect if foreign_keys else _sqlite_settings)
    engine.dispose()


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, connection_record: ConnectionPoolEntry) -> None:
    _sqlite_settings(dbapi_connection, connection_record)
    dbapi_connection.execute("PRAGMA foreign_keys = ON")  # curves and workers go with their study


def _sqlite_settings(dbapi_connection: DBAPIConnection, connection_record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
    # In WAL mode, NORMAL syncs at checkpoints instead of at every commit: still never corrupt, but a power
    # loss may drop the last commits. Each commit's fsync was most of a trial's bookkeeping (2-3 ms each,
    # ~30 commits per trial), and a tuning study can afford to lose its last trial to a power cut. In the
    # rollback-journal mode NORMAL is not safe, so a file tuner did not make (`use_wal`) keeps FULL.
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def use_wal(engine: Engine) -> None:
    """Switch a SQLite file tuner writes its schema into to WAL: readers (the dashboard, `study list`) then
    never wait for a writer. It is stored in the file, so it is done once, when the schema is made: a
    command that only reads never writes the file's header."""
    if engine.url.get_backend_name() != "sqlite" or is_sqlite_memory(engine.url):
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode = WAL")
    engine.dispose()  # connections made before keep the FULL sync they were given


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
    """The first line of a database error, without SQLAlchemy's boilerplate and never with a secret of the URL."""
    inner = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    reason = lines[0] if lines else type(inner).__name__
    for secret in secrets_of(url):
        reason = reason.replace(secret, HIDDEN)
    return printable(reason)
