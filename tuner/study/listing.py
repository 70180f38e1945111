"""The studies in a database, for `tuner study list`: read by SQL, without loading Optuna or NumPy."""

from __future__ import annotations

from dataclasses import dataclass

from tuner.storage.handle import open_storage
from tuner.storage.optuna_tables import study_rows
from tuner.storage.records import list_study_records


@dataclass(frozen=True)
class StudySummary:
    """One line of `tuner study list`: `n_trials` is the study's total (its budget) for a tuner study,
    else the trials it has."""

    name: str
    direction: str
    n_trials: int
    counts: dict[str, int]
    best: float | None


def list_studies(storage_url: str) -> list[StudySummary]:
    """Every study in the storage with its counts by state and best value, sorted by name."""
    engine = open_storage(storage_url)
    rows = study_rows(engine)
    if not rows:
        return []
    totals = {r.name: r.total for r in list_study_records(engine)}
    return [StudySummary(name=r.name, direction=r.direction, n_trials=totals.get(r.name, sum(r.counts.values())),
                         counts=r.counts, best=r.best) for r in rows]
