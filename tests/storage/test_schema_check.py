"""The schema check's fast path (no Alembic) agrees with Alembic, and falls back to it on any doubt."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tuner.errors import SchemaError
from tuner.storage import ensure_schema, head_revision, make_engine
from tuner.storage.migrations import VERSION_TABLE, _at_head, _head_from_files


def test_the_head_read_from_the_files_is_alembics():
    assert _head_from_files() == head_revision()


def test_a_database_at_head_is_seen_without_alembic(sqlite_url):
    engine = make_engine(sqlite_url)
    assert not _at_head(engine)  # no version table yet
    ensure_schema(engine, create_if_empty=True)
    assert _at_head(engine)


def test_a_schema_behind_still_gets_alembics_answer(sqlite_url):
    engine = make_engine(sqlite_url)
    ensure_schema(engine, create_if_empty=True)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0001'"))
    assert not _at_head(engine)
    with pytest.raises(SchemaError, match=f"at revision 0001, this tuner needs {head_revision()}"):
        ensure_schema(engine)
