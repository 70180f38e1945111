"""Reading and writing the project's records: studies and learning curves (workers: `tuner.storage.workers`).

Every function takes an engine and runs one transaction (`engine.begin()`), all SQL through SQLAlchemy
Core with bound parameters. Curve values that are not finite are stored as NULL (see `tables`).

Curves and workers belong to a study by its id. Writes take the id the writer was started with, so a
study deleted under a running worker is noticed (StudyDeletedError) instead of written into; reads take
the study's name and see only the rows of the study that has that name now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

import tuner
from tuner.errors import (
    StorageError,
    StudyDeletedError,
    StudyExistsError,
    StudyNotFoundError,
)
from tuner.storage.tables import curves, studies, utcnow, workers

CURVE_FIELDS = ("train_loss", "val_loss", "val_accuracy", "lr", "seconds")

_UNSET: Any = object()


@dataclass(frozen=True)
class StudyRecord:
    """A row of `tuner_studies`: the validated spec (as a dict), its TOML text, and what probes found.

    `status` is `creating` until the study is wholly made; `n_trials` is its total once grown past the
    spec's (None: the spec's).
    """

    id: int
    name: str
    status: str
    spec: dict
    spec_toml: str
    source_path: str | None
    created_at: datetime
    tuner_version: str
    init_guess: dict | None
    lr_probe: dict | None
    n_trials: int | None

    @property
    def total(self) -> int:
        """The study's total of finished trials."""
        return int(self.n_trials if self.n_trials is not None else self.spec["study"]["n_trials"])


def insert_study(
    engine: Engine,
    name: str,
    spec: dict,
    spec_toml: str,
    source_path: str | None,
    *,
    init_guess: dict | None = None,
    lr_probe: dict | None = None,
    status: str = "ready",
) -> int:
    """Add the record of a new study and return its id; an existing name raises StudyExistsError."""
    values = dict(name=name, status=status, spec=spec, spec_toml=spec_toml, source_path=source_path or None,
                  created_at=utcnow(), tuner_version=tuner.__version__, init_guess=init_guess, lr_probe=lr_probe)
    try:
        with engine.begin() as connection:
            return int(connection.execute(insert(studies).values(**values)).inserted_primary_key[0])
    except IntegrityError:
        if get_study(engine, name) is None:  # another constraint: a bug, not a duplicate
            raise
        raise StudyExistsError(f"study '{name}' already exists") from None


def get_study(engine: Engine, name: str) -> StudyRecord | None:
    """The record of study `name`, or None."""
    with engine.begin() as connection:
        row = connection.execute(select(studies).where(studies.c.name == name)).mappings().first()
    return StudyRecord(**row) if row is not None else None


def study_total(engine: Engine, study_id: int, spec_total: int) -> int | None:
    """The study's total of finished trials as stored now (a grown total, else `spec_total`: its spec's,
    which never changes), or None if it is gone. One small read per claim: the spec is not read again."""
    with engine.begin() as connection:
        row = connection.execute(select(studies.c.n_trials).where(studies.c.id == study_id)).first()
    if row is None:
        return None
    return int(row.n_trials if row.n_trials is not None else spec_total)


def study_exists(engine: Engine, study_id: int) -> bool:
    """Whether the study of that id still exists."""
    with engine.begin() as connection:
        return connection.execute(select(studies.c.id).where(studies.c.id == study_id)).first() is not None


def update_study(engine: Engine, name: str, *, init_guess: dict | None = _UNSET, lr_probe: dict | None = _UNSET,
                 n_trials: int | None = _UNSET, status: str = _UNSET, spec: dict = _UNSET) -> None:
    """Set some of a study's guess, probe result, grown total, status and stored spec (None clears one)."""
    given = {"init_guess": init_guess, "lr_probe": lr_probe, "n_trials": n_trials, "status": status, "spec": spec}
    values = {k: v for k, v in given.items() if v is not _UNSET}
    if not values:
        return
    with engine.begin() as connection:
        result = connection.execute(update(studies).where(studies.c.name == name).values(**values))
        if result.rowcount == 0:
            raise StudyNotFoundError(f"no study named '{name}'")


def delete_study_records(engine: Engine, name: str) -> None:
    """Delete the study's record with its curves and workers (Optuna's own study is the caller's to delete).

    The children are deleted explicitly too: SQLite enforces the cascade only on connections that enable it.
    """
    ids = select(studies.c.id).where(studies.c.name == name).scalar_subquery()
    with engine.begin() as connection:
        connection.execute(delete(curves).where(curves.c.study_id == ids))
        connection.execute(delete(workers).where(workers.c.study_id == ids))
        connection.execute(delete(studies).where(studies.c.name == name))


def list_study_records(engine: Engine) -> list[StudyRecord]:
    """Every study record, by name."""
    with engine.begin() as connection:
        rows = connection.execute(select(studies).order_by(studies.c.name)).mappings().all()
    return [StudyRecord(**row) for row in rows]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def study_deleted(connection: Connection, study_id: int) -> bool:
    """Whether the study with this id is gone (deleted while a writer held its id)."""
    return connection.execute(select(studies.c.id).where(studies.c.id == study_id)).first() is None


def save_curve(
    engine: Engine, study_id: int, trial_number: int, trial_id: int | None, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Store a trial's learning curve, one row per epoch, replacing any rows it already had.

    `rows` hold `epoch` and the `CURVE_FIELDS`; NaN and inf become NULL. A retried write of the same
    trial replaces its rows rather than failing on the (study, trial, epoch) unique key. A study deleted
    meanwhile raises StudyDeletedError and nothing is written.
    """
    params = []
    for row in rows:
        if "epoch" not in row:
            raise StorageError(f"curve row of trial {trial_number} has no 'epoch': {dict(row)}")
        params.append({"study_id": study_id, "trial_number": int(trial_number),
                       "trial_id": None if trial_id is None else int(trial_id), "epoch": int(row["epoch"]),
                       **{name: _finite(row.get(name)) for name in CURVE_FIELDS}})
    with engine.begin() as connection:
        if study_deleted(connection, study_id):
            raise StudyDeletedError(f"the study (id {study_id}) was deleted")
        connection.execute(
            delete(curves).where(curves.c.study_id == study_id, curves.c.trial_number == int(trial_number))
        )
        if params:
            connection.execute(insert(curves), params)


def study_id_of(name: str) -> Any:
    """The id of the study that has this name now, as a subquery for a WHERE clause."""
    return select(studies.c.id).where(studies.c.name == name).scalar_subquery()


def load_curves(engine: Engine, study_name: str, trial_number: int | None = None) -> list[dict]:
    """Every curve row of the study (or of one trial), by trial number and epoch (NULL values come back as None)."""
    columns = [curves.c.trial_number, curves.c.trial_id, curves.c.epoch, *(curves.c[n] for n in CURVE_FIELDS)]
    where = [curves.c.study_id == study_id_of(study_name)]
    if trial_number is not None:
        where.append(curves.c.trial_number == int(trial_number))
    with engine.begin() as connection:
        rows = connection.execute(
            select(*columns).where(*where).order_by(curves.c.trial_number, curves.c.epoch)
        ).mappings().all()
    return [dict(row) for row in rows]
