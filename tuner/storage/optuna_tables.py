"""Reads of Optuna's own tables by SQL, without importing Optuna (and NumPy with it).

`tuner study list` and every schema check read Optuna's tables; importing Optuna for that would cost
a command most of its start-up. Only the columns named below are read, and nothing is written: Optuna's
schema is Optuna's to change (its storage calls stay in `optuna_adapter`, which uses these tables too).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, cast, func, inspect, select
from sqlalchemy.engine import Engine

FINISHED = ("COMPLETE", "PRUNED")  # the states a study's total counts; a FAIL is retried, not counted

_optuna = MetaData()
STUDIES = Table("studies", _optuna, Column("study_id", Integer), Column("study_name", String))
DIRECTIONS = Table("study_directions", _optuna, Column("study_id", Integer), Column("objective", Integer),
                   Column("direction", String))
TRIALS = Table("trials", _optuna, Column("trial_id", Integer), Column("study_id", Integer), Column("state", String))
VALUES = Table("trial_values", _optuna, Column("trial_id", Integer), Column("objective", Integer),
               Column("value", Float), Column("value_type", String))
HEARTBEATS = Table("trial_heartbeats", _optuna, Column("trial_id", Integer))
USER_ATTRS = Table("trial_user_attributes", _optuna, Column("trial_id", Integer), Column("key", String),
                   Column("value_json", String))
NUMBERED = Table("trials", MetaData(), Column("trial_id", Integer), Column("number", Integer),
                 Column("study_id", Integer), Column("state", String))

_INFINITE = {"INF_POS": math.inf, "INF_NEG": -math.inf}


@dataclass
class OptunaStudyRow:
    """One study as Optuna's tables hold it: its direction, its trials by state and its best value."""

    name: str
    direction: str = "not_set"
    counts: dict[str, int] = field(default_factory=dict)
    best: float | None = None


def has_optuna_tables(engine: Engine) -> bool:
    """Whether Optuna's schema exists in the database (it is created with the first study)."""
    return inspect(engine).has_table(STUDIES.name)


def finished_count(counts: dict[str, int]) -> int:
    """COMPLETE + PRUNED trials in a {state: count} map: what a study's total counts."""
    return sum(counts.get(state, 0) for state in FINISHED)


def _name(value: object) -> str:
    return getattr(value, "name", str(value))


def study_rows(engine: Engine) -> list[OptunaStudyRow]:
    """Every study with its direction (of its first objective), its counts by state and its best value (by
    that direction, over COMPLETE trials), in three grouped queries; [] without Optuna's tables."""
    if not has_optuna_tables(engine):
        return []
    complete = cast(TRIALS.c.state, String) == "COMPLETE"
    best = (select(TRIALS.c.study_id, cast(VALUES.c.value_type, String), func.min(VALUES.c.value),
                   func.max(VALUES.c.value))
            .select_from(VALUES.join(TRIALS, TRIALS.c.trial_id == VALUES.c.trial_id))
            .where(complete, VALUES.c.objective == 0)
            .group_by(TRIALS.c.study_id, VALUES.c.value_type))
    with engine.begin() as connection:
        rows = {i: OptunaStudyRow(name) for i, name in connection.execute(select(STUDIES.c.study_id, STUDIES.c.study_name))}
        for i, direction in connection.execute(select(DIRECTIONS.c.study_id, DIRECTIONS.c.direction)
                                               .where(DIRECTIONS.c.objective == 0)):
            rows[i].direction = _name(direction).lower()
        for i, state, count in connection.execute(select(TRIALS.c.study_id, TRIALS.c.state, func.count())
                                                  .group_by(TRIALS.c.study_id, TRIALS.c.state)):
            rows[i].counts[_name(state)] = int(count)
        extremes: dict[int, list[float]] = {}
        for i, kind, low, high in connection.execute(best):
            found = [_INFINITE[_name(kind)]] if _name(kind) in _INFINITE else [v for v in (low, high) if v is not None]
            extremes.setdefault(i, []).extend(found)
    for i, values in extremes.items():
        if values:
            rows[i].best = float(max(values) if rows[i].direction == "maximize" else min(values))
    return sorted(rows.values(), key=lambda r: r.name)


def failed_trials(engine: Engine, study_name: str) -> dict[int, str | None]:
    """{trial number: its `reason` user attribute (None without one)} of the study's FAIL trials."""
    reason = (select(USER_ATTRS.c.value_json).where(USER_ATTRS.c.trial_id == NUMBERED.c.trial_id,
                                                     USER_ATTRS.c.key == "reason").scalar_subquery())
    query = (select(NUMBERED.c.number, reason)
             .select_from(NUMBERED.join(STUDIES, STUDIES.c.study_id == NUMBERED.c.study_id))
             .where(STUDIES.c.study_name == study_name, cast(NUMBERED.c.state, String) == "FAIL"))
    with engine.begin() as connection:
        rows = connection.execute(query).all()
    return {int(number): _text(value) for number, value in rows}


def _text(value_json: str | None) -> str | None:
    if value_json is None:
        return None
    try:
        value = json.loads(value_json)
    except ValueError:
        return value_json
    return value if isinstance(value, str) else json.dumps(value)
