"""A PostgreSQL database of a benchmark run's own: created empty, dropped afterwards (`WITH (FORCE)`:
the run's own pools, or a worker it killed, may still hold connections).

    with scratch_database("tuner_bench") as url:
        ...

The server is the local one as `postgres` (trust authentication), unless given.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import sqlalchemy
from sqlalchemy.pool import NullPool

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin(server: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def create_database(prefix: str, server: str = SERVER) -> str:
    """Create an empty database `<prefix>_<8 hex>` on `server`; return its URL (password kept)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = _admin(server)
    try:
        with admin.connect() as c:
            c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return sqlalchemy.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, server: str = SERVER) -> None:
    """Drop the database `url` names, whoever is still connected to it."""
    name = sqlalchemy.engine.make_url(url).database
    admin = _admin(server)
    try:
        with admin.connect() as c:
            c.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def scratch_database(prefix: str, server: str = SERVER) -> Iterator[str]:
    """The URL of a new empty database for the body of the `with` block, dropped at its end."""
    url = create_database(prefix, server)
    try:
        yield url
    finally:
        drop_database(url, server)
