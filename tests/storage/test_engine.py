"""Engines: caching per process, SQLite settings, clear errors for bad URLs and unreachable servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import optuna
import pytest
from sqlalchemy import text

from tuner.errors import StorageError
from tuner.storage import check_connection, make_engine, optuna_storage
from tuner.storage.engine import driver_url, engine_kwargs


def test_an_engine_is_cached_per_url(sqlite_url):
    assert make_engine(sqlite_url) is make_engine(sqlite_url)


def test_a_sqlite_file_uses_wal_once_tuner_made_its_schema_and_always_a_busy_timeout(sqlite_url):
    import sqlite3

    from tuner.storage import ensure_schema

    path = sqlite_url.removeprefix("sqlite:///")
    sqlite3.connect(path).close()  # a file someone else made: reading it with tuner changes nothing
    with make_engine(sqlite_url).connect() as connection:
        pragmas = [connection.execute(text(f"PRAGMA {p}")).scalar() for p in ("journal_mode", "busy_timeout",
                                                                               "synchronous")]
    assert pragmas == ["delete", 60_000, 2]  # FULL sync in the rollback-journal mode
    ensure_schema(make_engine(sqlite_url), create_if_empty=True)
    with make_engine(sqlite_url).connect() as connection:
        pragmas = [connection.execute(text(f"PRAGMA {p}")).scalar() for p in ("journal_mode", "busy_timeout",
                                                                               "synchronous", "foreign_keys")]
    assert pragmas == ["wal", 60_000, 1, 1]  # WAL with NORMAL sync; tuner's own engine enforces foreign keys


def test_the_pool_is_small_and_pre_pings(sqlite_url):
    pool = make_engine(sqlite_url).pool
    assert pool.size() == 2
    assert pool._pre_ping


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuch://bob:s3cret@h/db", "unknown database dialect or driver 'nosuch' in nosuch://bob:***@h/db"),
        ("postgresql+nodriver://bob:s3cret@h/db", "unknown database dialect or driver 'postgresql+nodriver'"),
        ("postgresql+psycopg2://bob:s3cret@h/db", "the driver of postgresql+psycopg2://bob:***@h/db is not installed"),
    ],
)
def test_an_unknown_dialect_or_a_missing_driver_is_a_storage_error(url, message):
    with pytest.raises(StorageError) as info:
        make_engine(url)
    assert str(info.value).startswith(message)
    assert "s3cret" not in str(info.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: what a firewalled database looks like."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_an_unreachable_server_fails_fast_naming_host_and_port(silent_server, scheme):
    url = f"{scheme}://bob:s3cr%40t%7B%7D@127.0.0.1:{silent_server}/tuner"
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        check_connection(make_engine(url))
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert message.startswith(f"cannot connect to {scheme}://bob:***@127.0.0.1:{silent_server}/tuner: ")
    assert "s3cr" not in message


def test_a_refused_connection_names_the_reason():
    with pytest.raises(StorageError) as info:
        check_connection(make_engine("postgresql+psycopg://bob:s3cret@127.0.0.1:1/tuner"))
    assert str(info.value).startswith("cannot connect to postgresql+psycopg://bob:***@127.0.0.1:1/tuner: ")
    assert "refused" in str(info.value).lower()


def test_optuna_storage_is_cached_per_settings_and_uses_the_retry_callback(sqlite_url):
    plain = optuna_storage(sqlite_url)
    assert optuna_storage(sqlite_url) is plain
    beating = optuna_storage(sqlite_url, heartbeat_interval=1, grace_period=3)
    assert beating is not plain
    assert beating.heartbeat_interval == 1 and beating.grace_period == 3
    assert isinstance(beating.get_heartbeat_stale_trial_callback(), optuna.storages.RetryHeartbeatStaleTrialCallback)
    assert plain.get_heartbeat_stale_trial_callback() is None
    assert beating.engine.pool.size() == 2


def test_optuna_storage_takes_a_password_with_braces_and_percent(pg_url):
    # Optuna runs str.format on the URL: a raw '{' would break it. The server trusts, so any password works.
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(password="p{x}%y").render_as_string(hide_password=False)
    storage = optuna_storage(url)
    study = optuna.create_study(study_name="braces", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(optuna.load_study(study_name="braces", storage=storage).trials) == 1


def test_a_pooled_url_sends_no_startup_options_and_prepares_no_statement():
    pooled = engine_kwargs("postgresql+psycopg://bob@pgbouncer:6432/tuner?pooler=pgbouncer")["connect_args"]
    assert "options" not in pooled  # PgBouncer refuses libpq's `options`
    assert pooled["prepare_threshold"] is None  # psycopg's automatic PREPARE breaks in transaction mode
    assert pooled["keepalives_idle"] == 10 and pooled["application_name"].startswith("tuner pid ")
    direct = engine_kwargs("postgresql+psycopg://bob@db/tuner")["connect_args"]
    assert "-c statement_timeout=120s" in direct["options"] and "prepare_threshold" not in direct


def test_the_driver_never_sees_the_pooler_parameter():
    url = "postgresql+psycopg://bob:s3cret@127.0.0.1:1/tuner?pooler=pgbouncer"
    engine = make_engine(url)
    assert engine.url.query == {"pooler": "pgbouncer"}  # kept, for whatever is built from engine.url
    assert driver_url(url).query == {}  # what Optuna's own engine is given
    with pytest.raises(StorageError) as info:
        check_connection(engine)
    assert "refused" in str(info.value).lower()  # not libpq's "invalid connection option"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://bob:s3cret@h/db?pooler=pgcat",
         "postgresql+psycopg://bob:***@h/db?pooler=pgcat: unknown pooler=pgcat; the one tuner knows is pooler=pgbouncer"),
        ("sqlite:///x.db?pooler=pgbouncer",
         "sqlite:///x.db?pooler=pgbouncer: pooler=pgbouncer is for postgresql+psycopg:// URLs only"),
        ("postgresql+psycopg://bob:s3cret@h/db?pooler=pgbouncer&options=-c%20work_mem%3D64MB",
         "PgBouncer refuses libpq's 'options' parameter; remove it from the URL"),
    ],
)
def test_a_bad_pooler_url_is_one_storage_error(url, message):
    with pytest.raises(StorageError) as info:
        make_engine(url)
    assert message in str(info.value)
    assert "s3cret" not in str(info.value)
