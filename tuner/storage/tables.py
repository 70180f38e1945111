"""The project's own tables (prefix `tuner_`), beside Optuna's in the same database.

Types are chosen to work on SQLite, PostgreSQL and MySQL/MariaDB alike: bounded `String`s where MySQL
indexes them (utf8mb4 keys are limited to 3072 bytes), `JSON`, `Double` (MySQL's FLOAT is single precision)
and `UTCDateTime`, which always hands back timezone-aware UTC datetimes.

Curve values that are not finite (a diverged run's NaN or inf loss) are stored as NULL: PostgreSQL accepts
NaN but MySQL rejects it, and NULL reads the same everywhere.

These are the tables as the code uses them; the history of the schema is `alembic/versions/`, and a change
here needs a new revision there.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

PREFIX = "tuner_"
NAME_LENGTH = 512  # Optuna's own limit on study names
WORKER_STATUSES = ("running", "stopped", "failed")
STUDY_STATUSES = ("creating", "ready")  # `creating` until the Optuna study, attributes and warm start exist

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and read back timezone-aware (UTC) on every backend.

    PostgreSQL keeps it as `timestamptz`; SQLite and MySQL have no zone, so the value is stored as naive
    UTC and the zone is put back on read. Naive datetimes passed in are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


studies = Table(
    "tuner_studies",
    metadata,
    # Rows of the other tables are keyed by this id, never by the name: a study deleted and created again
    # under the same name starts clean. AUTOINCREMENT keeps SQLite from reusing a deleted study's id.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("spec_toml", Text, nullable=False),
    Column("source_path", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("tuner_version", String(64), nullable=False),
    Column("init_guess", JSON, nullable=True),
    Column("lr_probe", JSON, nullable=True),
    Column("n_trials", Integer, nullable=True),  # the study's total when grown past the spec's
    CheckConstraint("status IN ('creating', 'ready')", name="status"),
    sqlite_autoincrement=True,
)


def _study_id() -> Column:
    return Column("study_id", Integer, ForeignKey("tuner_studies.id", ondelete="CASCADE"), nullable=False, index=True)


curves = Table(
    "tuner_curves",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _study_id(),
    Column("trial_number", Integer, nullable=False),
    Column("trial_id", Integer, nullable=True),
    Column("epoch", Integer, nullable=False),
    Column("train_loss", Double, nullable=True),
    Column("val_loss", Double, nullable=True),
    Column("val_accuracy", Double, nullable=True),
    Column("lr", Double, nullable=True),
    Column("seconds", Double, nullable=True),
    UniqueConstraint("study_id", "trial_number", "epoch", name="uq_tuner_curves_trial_epoch"),
)

workers = Table(
    "tuner_workers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _study_id(),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("trials_done", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),
    Column("stopped_at", UTCDateTime, nullable=True),
    Column("message", Text, nullable=True),
    Column("threads", Integer, nullable=True),  # BLAS threads the worker uses, for sharing a host's cores
    Column("heartbeat_s", Integer, nullable=True),  # how often it refreshes `last_seen` while it runs
    CheckConstraint("status IN ('running', 'stopped', 'failed')", name="status"),
)

TABLE_NAMES = tuple(sorted(metadata.tables))
