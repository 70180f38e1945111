"""tuner_studies, tuner_curves and tuner_workers.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Types are spelled out here rather than imported from `tuner.storage.tables`: a revision is a frozen record
of the schema, and must not change when the code's tables do.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = sa.String(512)


def _timestamp() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "tuner_studies",
        sa.Column("name", NAME, nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_toml", sa.Text(), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("tuner_version", sa.String(64), nullable=False),
        sa.Column("init_guess", sa.JSON(), nullable=True),
        sa.Column("lr_probe", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_tuner_studies"),
    )
    op.create_table(
        "tuner_curves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_name", NAME, nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Double(), nullable=True),
        sa.Column("val_loss", sa.Double(), nullable=True),
        sa.Column("val_accuracy", sa.Double(), nullable=True),
        sa.Column("lr", sa.Double(), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
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
    op.drop_index("ix_tuner_workers_study_name", table_name="tuner_workers")
    op.drop_table("tuner_workers")
    op.drop_index("ix_tuner_curves_study_name", table_name="tuner_curves")
    op.drop_table("tuner_curves")
    op.drop_table("tuner_studies")
