"""Key the project's rows by study id, not by name; a study's creation status; grown totals; worker threads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

`tuner_studies` gets an autoincrement `id` (its primary key; `name` stays unique), a `status` (`creating`
until a study is wholly made, so an interrupted `study create` is detected and repaired) and `n_trials`
(the total once a study has grown past its spec's). `tuner_curves` and `tuner_workers` reference the
study by `study_id` with ON DELETE CASCADE, so a study deleted and created again under the same name never
inherits the rows of the old one. `tuner_workers.threads` and `heartbeat_s` record each worker's BLAS threads and
heartbeat interval (how often its row is refreshed: what tells a live worker from a dead one).

The tables are rebuilt the same way on every backend (copy out, drop, create, copy back), because their
primary keys change and SQLite cannot alter those in place. Curve and worker rows whose study name has no
study record (left by a study deleted while a worker ran) are not carried over: they belong to no study.
Types are spelled out here rather than imported from `tuner.storage.tables`: a revision is a frozen record.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NAME = sa.String(512)
CURVE_VALUES = ("train_loss", "val_loss", "val_accuracy", "lr", "seconds")
STUDY_COLUMNS = ("name", "spec", "spec_toml", "source_path", "created_at", "tuner_version", "init_guess", "lr_probe")
WORKER_COLUMNS = ("host", "pid", "started_at", "last_seen", "trials_done", "status", "stopped_at", "message")


def _timestamp() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _copy(table: str) -> str:
    """Copy `table` into a plain `tuner_0002_<name>` table (dropping a table drops its indexes and keys)."""
    scratch = f"tuner_0002_{table.removeprefix('tuner_')}"
    op.execute(f"CREATE TABLE {scratch} AS SELECT * FROM {table}")
    return scratch


def _create_studies() -> None:
    op.create_table(
        "tuner_studies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_toml", sa.Text(), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("tuner_version", sa.String(64), nullable=False),
        sa.Column("init_guess", sa.JSON(), nullable=True),
        sa.Column("lr_probe", sa.JSON(), nullable=True),
        sa.Column("n_trials", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tuner_studies"),
        sa.UniqueConstraint("name", name="uq_tuner_studies_name"),
        sa.CheckConstraint("status IN ('creating', 'ready')", name="ck_tuner_studies_status"),
        sqlite_autoincrement=True,
    )


def _create_children() -> None:
    op.create_table(
        "tuner_curves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Double(), nullable=True) for name in CURVE_VALUES),
        sa.PrimaryKeyConstraint("id", name="pk_tuner_curves"),
        sa.ForeignKeyConstraint(["study_id"], ["tuner_studies.id"], ondelete="CASCADE",
                                name="fk_tuner_curves_study_id"),
        sa.UniqueConstraint("study_id", "trial_number", "epoch", name="uq_tuner_curves_trial_epoch"),
    )
    op.create_index("ix_tuner_curves_study_id", "tuner_curves", ["study_id"])
    op.create_table(
        "tuner_workers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("last_seen", _timestamp(), nullable=False),
        sa.Column("trials_done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stopped_at", _timestamp(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("threads", sa.Integer(), nullable=True),
        sa.Column("heartbeat_s", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tuner_workers"),
        sa.ForeignKeyConstraint(["study_id"], ["tuner_studies.id"], ondelete="CASCADE",
                                name="fk_tuner_workers_study_id"),
        sa.CheckConstraint("status IN ('running', 'stopped', 'failed')", name="ck_tuner_workers_status"),
    )
    op.create_index("ix_tuner_workers_study_id", "tuner_workers", ["study_id"])


def _select(prefix: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"{prefix}.{c}" for c in columns)


def upgrade() -> None:
    old_studies, old_curves, old_workers = (_copy(t) for t in ("tuner_studies", "tuner_curves", "tuner_workers"))
    op.drop_table("tuner_workers")
    op.drop_table("tuner_curves")
    op.drop_table("tuner_studies")
    _create_studies()
    _create_children()
    op.execute(f"INSERT INTO tuner_studies ({', '.join(STUDY_COLUMNS)}, status) "
               f"SELECT {_select('s', STUDY_COLUMNS)}, 'ready' FROM {old_studies} s ORDER BY s.created_at, s.name")
    values = ("trial_number", "trial_id", "epoch", *CURVE_VALUES)
    op.execute(f"INSERT INTO tuner_curves (study_id, {', '.join(values)}) SELECT s.id, {_select('c', values)} "
               f"FROM {old_curves} c JOIN tuner_studies s ON s.name = c.study_name")
    op.execute(f"INSERT INTO tuner_workers (study_id, {', '.join(WORKER_COLUMNS)}) "
               f"SELECT s.id, {_select('w', WORKER_COLUMNS)} "
               f"FROM {old_workers} w JOIN tuner_studies s ON s.name = w.study_name ORDER BY w.id")
    for scratch in (old_studies, old_curves, old_workers):
        op.drop_table(scratch)


def _create_v1() -> None:
    """The tables of revision 0001, keyed by study name (spelled out: 0001 is a frozen record too)."""
    op.create_table(
        "tuner_studies",
        *(sa.Column(n, t, nullable=null) for n, t, null in (
            ("name", NAME, False), ("spec", sa.JSON(), False), ("spec_toml", sa.Text(), False),
            ("source_path", sa.Text(), True), ("created_at", _timestamp(), False),
            ("tuner_version", sa.String(64), False), ("init_guess", sa.JSON(), True), ("lr_probe", sa.JSON(), True))),
        sa.PrimaryKeyConstraint("name", name="pk_tuner_studies"),
    )
    op.create_table(
        "tuner_curves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_name", NAME, nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Double(), nullable=True) for name in CURVE_VALUES),
        sa.PrimaryKeyConstraint("id", name="pk_tuner_curves"),
        sa.UniqueConstraint("study_name", "trial_number", "epoch", name="uq_tuner_curves_trial_epoch"),
    )
    op.create_index("ix_tuner_curves_study_name", "tuner_curves", ["study_name"])
    op.create_table(
        "tuner_workers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_name", NAME, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("last_seen", _timestamp(), nullable=False),
        sa.Column("trials_done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stopped_at", _timestamp(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tuner_workers"),
        sa.CheckConstraint("status IN ('running', 'stopped', 'failed')", name="ck_tuner_workers_status"),
    )
    op.create_index("ix_tuner_workers_study_name", "tuner_workers", ["study_name"])


def downgrade() -> None:
    """Back to name keys; studies never wholly created are dropped with their rows."""
    old_studies, old_curves, old_workers = (_copy(t) for t in ("tuner_studies", "tuner_curves", "tuner_workers"))
    op.drop_table("tuner_workers")
    op.drop_table("tuner_curves")
    op.drop_table("tuner_studies")
    _create_v1()
    ready = "s.status = 'ready'"
    op.execute(f"INSERT INTO tuner_studies ({', '.join(STUDY_COLUMNS)}) "
               f"SELECT {_select('s', STUDY_COLUMNS)} FROM {old_studies} s WHERE {ready}")
    values = ("trial_number", "trial_id", "epoch", *CURVE_VALUES)
    op.execute(f"INSERT INTO tuner_curves (study_name, {', '.join(values)}) SELECT s.name, {_select('c', values)} "
               f"FROM {old_curves} c JOIN {old_studies} s ON s.id = c.study_id WHERE {ready}")
    op.execute(f"INSERT INTO tuner_workers (study_name, {', '.join(WORKER_COLUMNS)}) "
               f"SELECT s.name, {_select('w', WORKER_COLUMNS)} "
               f"FROM {old_workers} w JOIN {old_studies} s ON s.id = w.study_id WHERE {ready} ORDER BY w.id")
    for scratch in (old_studies, old_curves, old_workers):
        op.drop_table(scratch)
