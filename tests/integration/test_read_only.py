"""Read-only commands never write: a mistyped SQLite path gets no file, a database without tuner's tables
gets no table, whichever command reads it."""

from __future__ import annotations

import socket
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from tests.integration.conftest import tuner_in_process
from tests.integration.test_bad_input import assert_error, cli
from tuner.storage import head_revision, redact

pytestmark = pytest.mark.slow


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


READ_ONLY = {
    "study list": ("study", "list"),
    "study show": ("study", "show", "digits"),
    "study export": ("study", "export", "digits", "--out", "OUT/trials.csv"),
    "study export-spec": ("study", "export-spec", "digits", "--out", "OUT/best.toml"),
    "train": ("train", "digits", "--out", "OUT/model.npz"),
    "report": ("report", "digits", "--out", "OUT/report"),
    "db current": ("db", "current"),
    "dashboard": ("dashboard", "--port", "PORT", "--no-notes"),
}
REAL_PROCESS = {"study list", "dashboard"}  # the others run in this process, through the same root command


def run(command: str, url: str, out: Path):
    args = [str(out) + a[3:] if a.startswith("OUT/") else _free_port() if a == "PORT" else a
            for a in READ_ONLY[command]]
    return (cli if command in REAL_PROCESS else tuner_in_process)(*args, "--storage", url)


def tables(url: str) -> list[str]:
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        return sorted(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", sorted(READ_ONLY))
def test_a_mistyped_sqlite_path_is_refused_and_no_file_appears(tmp_path, command):
    place, out = tmp_path / "data", tmp_path / "out"
    place.mkdir()
    out.mkdir()
    path = place / "tunre.db"
    assert_error(run(command, f"sqlite:///{path}", out), f"no database at sqlite:///{path}: {path} does not exist")
    assert list(place.iterdir()) == [] and list(out.iterdir()) == []  # no database, journal, lock or output


@pytest.mark.parametrize("command", sorted(READ_ONLY))
def test_a_postgresql_database_without_tuner_tables_gets_no_table(pg_url, tmp_path, command):
    result = run(command, pg_url, tmp_path)
    if command == "db current":  # it reports the revision, which is none: a database this tuner cannot use
        assert_error(result, f"{redact(pg_url)}: revision none (head is {head_revision()}): this tuner cannot use "
                             "it; run 'tuner db upgrade'")
    else:
        assert_error(result, f"database has no tuner tables, this tuner needs revision {head_revision()}: "
                             f"run 'tuner db upgrade --storage {redact(pg_url)}'")
    assert tables(pg_url) == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(READ_ONLY))
def test_a_database_of_plain_optuna_gets_no_tuner_table(pg_url, tmp_path, command):
    optuna.create_study(study_name="digits", storage=pg_url).optimize(lambda t: t.suggest_float("x", 0, 1),
                                                                       n_trials=1)
    before = tables(pg_url)
    result = run(command, pg_url, tmp_path)
    assert result.returncode == 1, result.stderr
    assert tables(pg_url) == before and not any(t.startswith("tuner_") for t in before)
