"""The project's Alembic history beside Optuna's: round trips, exact refusals, and tables == migrations."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from tuner.errors import SchemaError
from tuner.storage import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    make_engine,
    migrations,
    optuna_storage,
    upgrade,
)
from tuner.storage.tables import TABLE_NAMES, metadata

HEAD = head_revision()
NEXT_REVISION = '''"""A test-only revision after the head."""
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tuner_extra", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("tuner_extra")
'''


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "mysql"])
def url(request) -> str:
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param])


def optuna_study_with_trials(url: str) -> None:
    study = optuna.create_study(study_name="optuna-own", storage=optuna_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)


def optuna_state(engine) -> tuple[list[str], list[tuple]]:
    """Optuna's table names and its own Alembic revision."""
    tables = sorted(n for n in inspect(engine).get_table_names() if not n.startswith("tuner_"))
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return tables, [tuple(v) for v in versions]


def tuner_tables(engine) -> list[str]:
    return sorted(n for n in inspect(engine).get_table_names() if n.startswith("tuner_"))


def test_upgrade_downgrade_upgrade_leaves_optuna_alone(url):
    optuna_study_with_trials(url)
    engine = make_engine(url)
    before = optuna_state(engine)
    assert "alembic_version" in before[0] and before[1]

    upgrade(url)
    assert current_revision(engine) == head_revision() == "0002"
    assert tuner_tables(engine) == sorted([*TABLE_NAMES, VERSION_TABLE])
    downgrade(url, "base")
    assert current_revision(engine) is None
    assert tuner_tables(engine) == [VERSION_TABLE]
    upgrade(url)
    assert current_revision(engine) == HEAD

    assert optuna_state(engine) == before
    loaded = optuna.load_study(study_name="optuna-own", storage=optuna_storage(url))
    assert len(loaded.trials) == 3


def test_the_tables_match_the_migrations_and_optunas_tables_are_ignored(url):
    optuna_study_with_trials(url)
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_name": migrations.include_name,
                "include_object": migrations.include_object,
                "compare_type": True,
                "version_table": VERSION_TABLE,
            },
        )
        assert compare_metadata(context, metadata) == []
        unfiltered = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        dropped = {diff[1].name for diff in compare_metadata(unfiltered, metadata) if diff[0] == "remove_table"}
        assert {"studies", "trials", "alembic_version"} <= dropped  # what an unfiltered history would drop


def test_an_empty_database_is_refused_unless_creation_is_asked(sqlite_url):
    engine = make_engine(sqlite_url)
    with pytest.raises(SchemaError) as info:
        ensure_schema(engine)
    assert str(info.value) == (
        f"database has no tuner tables, this tuner needs revision {HEAD}: run 'tuner db upgrade --storage {sqlite_url}'"
    )
    ensure_schema(engine, create_if_empty=True)
    assert current_revision(engine) == HEAD
    ensure_schema(engine)


def test_an_empty_postgresql_database_is_created_when_asked(pg_url):
    engine = make_engine(pg_url)
    ensure_schema(engine, create_if_empty=True)
    assert current_revision(engine) == HEAD


def test_a_schema_ahead_of_the_code_asks_to_upgrade_tuner(sqlite_url):
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0042'"))
    with pytest.raises(SchemaError) as info:
        ensure_schema(engine, create_if_empty=True)
    assert str(info.value) == (
        f"database schema is at revision 0042, which is newer than this tuner (it knows up to {HEAD}): upgrade tuner"
    )
    with pytest.raises(SchemaError, match="^database schema is at revision 0042, which is newer"):
        upgrade(sqlite_url)


@pytest.fixture
def newer_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's migrations plus a test-only revision 9001, as a newer tuner would ship them."""
    location = tmp_path / "alembic"
    shutil.copytree(migrations.script_location(), location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "9001_extra.py").write_text(NEXT_REVISION)
    monkeypatch.setattr(migrations, "script_location", lambda: location)
    return location


def test_a_schema_behind_the_code_asks_for_db_upgrade_and_is_never_migrated_silently(sqlite_url, newer_history):
    engine = make_engine(sqlite_url)
    upgrade(sqlite_url, HEAD)
    with pytest.raises(SchemaError) as info:
        ensure_schema(engine, create_if_empty=True)
    assert str(info.value) == (
        f"database schema is at revision {HEAD}, this tuner needs 9001: run 'tuner db upgrade --storage {sqlite_url}'"
    )
    assert current_revision(engine) == HEAD
    upgrade(sqlite_url)
    assert current_revision(engine) == "9001"
    downgrade(sqlite_url, HEAD)
    assert "tuner_extra" not in tuner_tables(engine)


def test_the_behind_message_hides_the_password(pg_url, newer_history):
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(password="s3cret").render_as_string(hide_password=False)
    upgrade(url, HEAD)
    with pytest.raises(SchemaError) as info:
        ensure_schema(make_engine(url))
    assert "s3cret" not in str(info.value)
    assert ":***@" in str(info.value)


def test_tuner_tables_without_a_revision_are_refused(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE tuner_studies (name VARCHAR(10))"))
    with pytest.raises(SchemaError) as info:
        ensure_schema(engine, create_if_empty=True)
    assert str(info.value) == (
        f"database holds tuner tables (tuner_studies) but no revision in {VERSION_TABLE}: "
        "it was not made by 'tuner db upgrade'; move them away or drop them"
    )


def test_an_unknown_target_revision_is_a_schema_error(sqlite_url):
    with pytest.raises(SchemaError) as info:
        upgrade(sqlite_url, "0099")
    assert str(info.value) == (
        "cannot migrate to revision '0099': Can't locate revision identified by '0099' (known: 0001, 0002, head, base)"
    )


# ---- 0002: rows keyed by study id ---------------------------------------------------------------------

def _rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql))]


def test_0002_keys_the_rows_by_study_id_and_drops_orphans_and_0001_gets_them_back(url):
    engine = make_engine(url)
    upgrade(url, "0001")
    with engine.begin() as c:
        for name, created in (("b-study", "2026-01-02 00:00:00"), ("a-study", "2026-01-01 00:00:00")):
            c.execute(text("INSERT INTO tuner_studies (name, spec, spec_toml, created_at, tuner_version) "
                           "VALUES (:n, :s, '', :t, '0.1.0')"), {"n": name, "s": '{"study": {"n_trials": 5}}', "t": created})
        for study, trial in (("a-study", 0), ("b-study", 0), ("b-study", 1), ("deleted-study", 0)):
            c.execute(text("INSERT INTO tuner_curves (study_name, trial_number, epoch, val_loss) "
                           "VALUES (:s, :t, 1, 0.5)"), {"s": study, "t": trial})
        for study in ("b-study", "deleted-study"):
            c.execute(text("INSERT INTO tuner_workers (study_name, host, pid, started_at, last_seen, trials_done, "
                           "status) VALUES (:s, 'h', 1, :t, :t, 0, 'stopped')"), {"s": study, "t": "2026-01-01 00:00:00"})
    upgrade(url)
    # ids follow the creation order; the name stays unique; every carried row points at its study's id
    assert _rows(engine, "SELECT id, name, status FROM tuner_studies ORDER BY id") == [
        (1, "a-study", "ready"), (2, "b-study", "ready")]
    assert _rows(engine, "SELECT study_id, trial_number FROM tuner_curves ORDER BY study_id, trial_number") == [
        (1, 0), (2, 0), (2, 1)]  # the orphan curve of a deleted study is gone
    assert _rows(engine, "SELECT study_id, host FROM tuner_workers") == [(2, "h")]
    downgrade(url, "0001")
    assert _rows(engine, "SELECT name FROM tuner_studies ORDER BY name") == [("a-study",), ("b-study",)]
    assert _rows(engine, "SELECT study_name, trial_number FROM tuner_curves ORDER BY study_name, trial_number") == [
        ("a-study", 0), ("b-study", 0), ("b-study", 1)]
    assert _rows(engine, "SELECT study_name FROM tuner_workers") == [("b-study",)]
    assert not [t for t in tuner_tables(engine) if t.startswith("tuner_0002")]  # no scratch table left


def test_a_deleted_studys_rows_go_with_it_and_ids_are_never_reused(url):
    from tuner.storage import (
        delete_study_records,
        insert_study,
        load_curves,
        save_curve,
    )

    engine = make_engine(url)
    upgrade(url)
    first = insert_study(engine, "s", {"study": {"n_trials": 1}}, "", None)
    save_curve(engine, first, 0, None, [{"epoch": 1, "val_loss": 0.5}])
    delete_study_records(engine, "s")
    again = insert_study(engine, "s", {"study": {"n_trials": 1}}, "", None)
    assert again != first  # AUTOINCREMENT / sequences: a new study never takes an old one's rows
    assert load_curves(engine, "s") == []
    assert _rows(engine, "SELECT count(*) FROM tuner_curves") == [(0,)]
