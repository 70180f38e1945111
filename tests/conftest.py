"""Fixtures shared by every test module: database URLs on SQLite, PostgreSQL and (optionally) MariaDB.

PostgreSQL tests get a fresh database `tuner_test_<random>` each, dropped afterwards; they skip, with the
reason, when the server is not reachable. `storage_url` runs a test once per backend. Tests that use a
PostgreSQL fixture are marked `postgres` automatically (`-m "not postgres"` leaves them out).

Server URLs can be overridden: TUNER_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
and TUNER_TEST_MYSQL (default mysql+pymysql://root@127.0.0.1:3306/test).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from tuner.storage import dispose_engines, redact

PG_SERVER = os.environ.get("TUNER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_SERVER = os.environ.get("TUNER_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
PG_FIXTURES = {"pg_server_url", "pg_url"}
BENCH = Path(__file__).resolve().parents[1] / "bench"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PG_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def _no_storage_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own $TUNER_STORAGE must not leak into tests."""
    monkeypatch.delenv("TUNER_STORAGE", raising=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A SQLite database in a real file (so several processes can share it)."""
    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    yield url
    dispose_engines(url)


def _admin_engine(url: str, *, timeout: int = 3) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(
        url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": timeout}
    )


def _reachable(engine: sqlalchemy.Engine) -> str | None:
    """None when a connection works, else the first line of the reason."""
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except Exception as err:  # noqa: BLE001 - any failure means: skip
        inner = getattr(err, "orig", None) or err
        return str(inner).splitlines()[0] if str(inner) else type(inner).__name__
    return None


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """The URL of the PostgreSQL server's maintenance database; skips when the server is not reachable."""
    try:
        engine = _admin_engine(PG_SERVER)
    except ImportError as err:
        pytest.skip(f"PostgreSQL driver missing ({err}); pip install 'tuner[postgres]'")
    reason = _reachable(engine)
    engine.dispose()
    if reason is not None:
        pytest.skip(f"PostgreSQL not reachable at {redact(PG_SERVER)}: {reason}")
    yield PG_SERVER


def _database_url(server: str, name: str) -> str:
    url: URL = make_url(server).set(database=name)
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def _scratch_database(server_url: str, create: str, drop: str, *, before_drop: str | None = None) -> Iterator[str]:
    """Create a database named `tuner_test_<random>` on the server, yield its URL, and drop it afterwards."""
    name = f"tuner_test_{secrets.token_hex(6)}"
    admin = _admin_engine(server_url)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(create.format(name=name)))
    url = _database_url(server_url, name)
    try:
        yield url
    finally:
        dispose_engines(url)
        with admin.connect() as connection:
            if before_drop is not None:
                connection.execute(sqlalchemy.text(before_drop), {"name": name})
            connection.execute(sqlalchemy.text(drop.format(name=name)))
        admin.dispose()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    # Worker processes a test started may still be connected; they must not keep the database alive.
    terminate = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = :name AND pid <> pg_backend_pid()")
    with _scratch_database(pg_server_url, 'CREATE DATABASE "{name}"', 'DROP DATABASE IF EXISTS "{name}"',
                           before_drop=terminate) as url:
        yield url


def bench_module(name: str) -> ModuleType:
    """A script of bench/ imported as a module (bench/ goes on the path, as when the script runs)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


@pytest.fixture
def pgbouncer_url(pg_url: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """`start(pool_size=None)` starts a real PgBouncer (compose/pgbouncer.ini's settings: transaction mode)
    in front of `pg_url` on a free port and returns the URL through it, with `?pooler=pgbouncer`.

    `tuner db upgrade` has stored tuner's session timeouts for the role first, as docker-compose's
    migration does before PgBouncer starts. Skips when Debian's `pgbouncer` is not installed.
    """
    from tuner.storage import upgrade

    bouncer = bench_module("pgbouncer")
    if bouncer.pgbouncer_binary() is None:
        pytest.skip("no pgbouncer binary (apt-get install pgbouncer)")
    upgrade(pg_url)
    urls: list[str] = []
    with contextlib.ExitStack() as stack:

        def start(pool_size: int | None = None) -> str:
            directory = tmp_path / f"pgbouncer-{len(urls)}"
            directory.mkdir()
            port = stack.enter_context(bouncer.pgbouncer(pg_url, directory, bouncer.pgbouncer_settings(pool_size)))
            url = make_url(pg_url).set(host="127.0.0.1", port=port, query={"pooler": "pgbouncer"})
            urls.append(url.render_as_string(hide_password=False))
            return urls[-1]

        yield start
        for url in urls:
            dispose_engines(url)


@pytest.fixture(scope="session")
def mysql_server_url() -> Iterator[str]:
    """The URL of the local MariaDB/MySQL server; skips when PyMySQL is missing or the server unreachable."""
    pytest.importorskip("pymysql", reason="PyMySQL missing; pip install 'tuner[mysql]'")
    engine = _admin_engine(MYSQL_SERVER)
    reason = _reachable(engine)
    engine.dispose()
    if reason is not None:
        pytest.skip(f"MySQL/MariaDB not reachable at {redact(MYSQL_SERVER)}: {reason}")
    yield MYSQL_SERVER


@pytest.fixture
def mysql_url(mysql_server_url: str) -> Iterator[str]:
    """A fresh, empty MySQL/MariaDB database for one test, dropped afterwards."""
    with _scratch_database(mysql_server_url, "CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
                           "DROP DATABASE IF EXISTS `{name}`") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest) -> str:
    """The test runs once on a SQLite file and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


TINY_SPEC = """
[study]
name = "{name}"
objective = "val_accuracy"
n_trials = {n_trials}
seed = 1
sampler = "random"
pruner = "none"

[data]
source = "synthetic_classification"

[model]
hidden = [16]
activation = "relu"

[train]
epochs = {epochs}
batch_size = 32

[search]
optimizer = ["sgd", "momentum", "adam"]
eps0 = {{ low = 1e-3, high = 0.1, log = true }}
alpha = {{ low = 0.5, high = 0.9 }}
init = "he"
init_scale = {{ low = 0.5, high = 2.0, log = true }}
"""


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a tiny, fast study spec and return its path."""

    def write(name: str = "tiny", *, n_trials: int = 6, epochs: int = 3) -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(TINY_SPEC.format(name=name, n_trials=n_trials, epochs=epochs))
        return path

    return write
