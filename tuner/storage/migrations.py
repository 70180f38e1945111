"""The project's Alembic history: where it lives, which revision a database is at, and moving it.

The Alembic config is built in code, so an installed tuner migrates without an `alembic.ini`. The history
keeps its revision in `tuner_alembic_version` and touches only `tuner_*` tables (see `alembic/env.py`):
Optuna's tables and its own `alembic_version` are left alone.

`ensure_schema` is what every command calls before using the tables: it creates the schema in a database
that has none (when asked: the quick start's new SQLite file) and otherwise refuses to run on a schema
that is behind or ahead of the code. An existing schema is never migrated silently. Its usual answer (the
schema is at head) is read without Alembic: the recorded revision by one SELECT, the head from the
migration files' `revision` / `down_revision` lines; Alembic loads only to migrate or to explain a
mismatch, which keeps every command's start-up lighter by Alembic's import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.schema import SchemaItem

import tuner
from tuner.errors import SchemaError
from tuner.storage.engine import check_connection, make_engine, use_wal
from tuner.storage.locks import study_lock
from tuner.storage.session_defaults import store_session_defaults
from tuner.storage.tables import PREFIX
from tuner.storage.url import redact

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

VERSION_TABLE = "tuner_alembic_version"
_SCHEMA_LOCK = "tuner:schema"


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic filter (env.py): reflect only tuner's tables and what belongs to them."""
    if type_ == "table":
        return name is not None and name.startswith(PREFIX)
    table = parent_names.get("table_name")
    return table is None or table.startswith(PREFIX)


def include_object(obj: SchemaItem, name: str | None, type_: str, reflected: bool,
                   compare_to: SchemaItem | None) -> bool:
    """Alembic filter (env.py): compare only tuner's tables, so autogenerate never touches Optuna's."""
    if type_ == "table":
        return name is not None and name.startswith(PREFIX)
    table = getattr(obj, "table", None)
    return table is None or table.name.startswith(PREFIX)


def script_location() -> Path:
    """The migrations folder: `tuner/_alembic` in an installed wheel, else `alembic/` of the source checkout."""
    package = Path(tuner.__file__).resolve().parent
    for candidate in (package / "_alembic", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise SchemaError(f"tuner's migrations are missing (no {package / '_alembic'}): reinstall tuner")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's config for tuner's history; `connection` is handed to `env.py` to migrate on."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this tuner knows."""
    return _script().get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in `tuner_alembic_version`, or None when there is none."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


_VERSIONS = Table(VERSION_TABLE, MetaData(), Column("version_num", String))
_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*=\s*(?:None|\"([^\"]+)\"|'([^']+)')\s*$", re.MULTILINE)


def _head_from_files() -> str | None:
    """The one revision no migration file names as its `down_revision`; None when the files do not say
    plainly (several heads, a tuple of parents): Alembic then decides."""
    revisions, parents = set(), set()
    for path in (script_location() / "versions").glob("*.py"):
        found = {m.group(1): m.group(2) or m.group(3) for m in _REVISION_LINE.finditer(path.read_text())}
        if "revision" not in found or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """Whether the database records exactly this tuner's head revision, read without Alembic."""
    if not inspect(engine).has_table(VERSION_TABLE):
        return False
    with engine.connect() as connection:
        rows = connection.execute(select(_VERSIONS.c.version_num)).scalars().all()
    return len(rows) == 1 and rows[0] == _head_from_files()


def tuner_tables(engine: Engine) -> list[str]:
    """The `tuner_*` tables present, besides the version table."""
    names = inspect(engine).get_table_names()
    return sorted(n for n in names if n.startswith(PREFIX) and n != VERSION_TABLE)


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (default: the newest); create Optuna's tables too,
    so that no command that only reads ever needs to create them. On PostgreSQL, store tuner's session
    timeouts as the role's defaults in the database, for sessions that come through PgBouncer."""
    engine = make_engine(url)
    check_connection(engine)
    from alembic import command

    _run(engine, command.upgrade, revision, optuna_tables=True)
    store_session_defaults(engine)


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at `url` down to `revision` (`base` drops every tuner table)."""
    engine = make_engine(url)
    check_connection(engine)
    from alembic import command

    _run(engine, command.downgrade, revision)


def _create_optuna_tables(engine: Engine) -> None:
    """Optuna's schema, made by Optuna; imported here only, so that checking a schema loads no Optuna."""
    from tuner.storage.optuna_adapter import optuna_storage

    optuna_storage(engine.url, create_tables=True)


def _run(engine: Engine, step: Callable[[Config, str], None], revision: str, *, optuna_tables: bool = False) -> None:
    from alembic.util import CommandError

    known = [s.revision for s in _script().walk_revisions()]
    try:
        with study_lock(engine, _SCHEMA_LOCK, max_hold_s=None):
            if optuna_tables:
                use_wal(engine)
                _create_optuna_tables(engine)
            _migrate(engine, step, revision)
    except CommandError as err:
        current = current_revision(engine)
        if current is not None and current not in known:
            raise SchemaError(_ahead_message(current)) from None
        raise SchemaError(
            f"cannot migrate to revision '{revision}': {err} (known: {', '.join(reversed(known))}, head, base)"
        ) from None


def _migrate(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # a migration may rewrite a large table: no statement limit
            connection.execute(text("SET LOCAL statement_timeout = 0"))
        step(alembic_config(connection), revision)


def ensure_schema(engine: Engine, *, create_if_empty: bool = False) -> None:
    """Check that the tuner tables are at this tuner's head revision.

    A database without any tuner table is migrated to head when `create_if_empty`, else refused. A schema
    that is behind raises SchemaError asking for `tuner db upgrade`; one that is ahead (or at a revision
    this tuner does not know) raises SchemaError asking to upgrade tuner.
    """
    if _at_head(engine):
        return
    from alembic import command

    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    if current is None and not tuner_tables(engine):
        if not create_if_empty:
            raise SchemaError(
                f"database has no tuner tables, this tuner needs revision {head}: "
                f"run 'tuner db upgrade --storage {redact(engine.url)}'"
            )
        # Several processes may start on one new database: the lock makes one of them create the tables.
        # Optuna's come first (its own table creation races: "table already exists", "UNIQUE constraint
        # failed: alembic_version"), so whoever sees tuner's tables at head knows Optuna's are there too.
        with study_lock(engine, _SCHEMA_LOCK, max_hold_s=None):
            if current_revision(engine) is None and not tuner_tables(engine):
                use_wal(engine)
                _create_optuna_tables(engine)
                _migrate(engine, command.upgrade, "head")
        return ensure_schema(engine)
    if current is None:
        raise SchemaError(
            f"database holds tuner tables ({', '.join(tuner_tables(engine))}) but no revision in "
            f"{VERSION_TABLE}: it was not made by 'tuner db upgrade'; move them away or drop them"
        )
    script = _script()
    if current in {s.revision for s in script.walk_revisions()}:
        raise SchemaError(
            f"database schema is at revision {current}, this tuner needs {head}: "
            f"run 'tuner db upgrade --storage {redact(engine.url)}'"
        )
    raise SchemaError(_ahead_message(current))


def _ahead_message(current: str) -> str:
    return (
        f"database schema is at revision {current}, which is newer than this tuner "
        f"(it knows up to {head_revision()}): upgrade tuner"
    )
