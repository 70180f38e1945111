"""`tuner db upgrade / current / downgrade` through the root command: exact output and exit codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuner.cli import app
from tuner.storage import current_revision, make_engine


def tuner(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def test_upgrade_creates_then_reports_already_at_head(sqlite_url):
    first = tuner("db", "upgrade", "--storage", sqlite_url)
    assert (first.exit_code, first.stdout, first.stderr) == (
        0, f"{sqlite_url}: upgraded from revision none to 0002 (head)\n", ""
    )
    again = tuner("db", "upgrade", "--storage", sqlite_url)
    assert (again.exit_code, again.stdout) == (0, f"{sqlite_url}: already at revision 0002 (head)\n")
    assert current_revision(make_engine(sqlite_url)) == "0002"


def _empty_database(sqlite_url: str) -> Path:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    sqlite3.connect(path).close()
    return path


def test_current_says_whether_the_database_is_at_head_and_fails_when_it_cannot_use_it(sqlite_url):
    _empty_database(sqlite_url)  # an empty database: reachable, but not tuner's
    empty = tuner("db", "current", "--storage", sqlite_url)
    assert (empty.exit_code, empty.stdout, empty.stderr) == (
        1, "", f"error: {sqlite_url}: revision none (head is 0002): this tuner cannot use it; run 'tuner db upgrade'\n"
    )
    tuner("db", "upgrade", "--storage", sqlite_url)
    done = tuner("db", "current", "--storage", sqlite_url)
    assert (done.exit_code, done.stdout) == (0, f"{sqlite_url}: revision 0002 (head)\n")


def test_current_on_a_missing_sqlite_file_refuses_and_creates_nothing(sqlite_url):
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    result = tuner("db", "current", "--storage", sqlite_url)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: no database at {sqlite_url}: {path} does not exist\n"
    assert list(path.parent.iterdir()) == []


def test_the_storage_comes_from_the_environment_without_the_option(sqlite_url):
    tuner("db", "upgrade", "--storage", sqlite_url)
    result = tuner("db", "current", env={"TUNER_STORAGE": sqlite_url})
    assert (result.exit_code, result.stdout) == (0, f"{sqlite_url}: revision 0002 (head)\n")


def test_downgrade_needs_yes_and_then_drops_the_tables(sqlite_url):
    tuner("db", "upgrade", "--storage", sqlite_url)
    refused = tuner("db", "downgrade", "base", "--storage", sqlite_url)
    assert (refused.exit_code, refused.stdout, refused.stderr) == (
        1, "", f"error: a downgrade of {sqlite_url} to base can delete data: add --yes to confirm\n"
    )
    done = tuner("db", "downgrade", "base", "--storage", sqlite_url, "--yes")
    assert (done.exit_code, done.stdout) == (0, f"{sqlite_url}: downgraded from revision 0002 to none\n")


def test_an_unknown_revision_is_one_error_line(sqlite_url):
    result = tuner("db", "upgrade", "--storage", sqlite_url, "--revision", "0099")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1, "", "error: cannot migrate to revision '0099': Can't locate revision identified by '0099' "
        "(known: 0001, 0002, head, base)\n"
    )


def test_an_unreachable_server_is_one_error_line_without_the_password():
    result = tuner("db", "current", "--storage", "postgresql+psycopg://bob:s3cret@127.0.0.1:1/tuner")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot connect to postgresql+psycopg://bob:***@127.0.0.1:1/tuner: ")
    assert "s3cret" not in result.output


def test_a_malformed_url_is_one_error_line_without_the_password():
    result = tuner("db", "upgrade", "--storage", "postgresql://bob:s3cret@db:notaport/tuner")
    assert (result.exit_code, result.stderr) == (
        1, "error: malformed storage URL postgresql://bob:***@db:notaport/tuner: the port is not a number\n"
    )


@pytest.mark.parametrize("url", ["sqlite://tuner.db", "sqlite://bob:s3cret@host/tuner.db"])
def test_a_sqlite_url_with_two_slashes_is_one_error_line_and_creates_nothing(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = tuner("db", "upgrade", "--storage", url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: malformed storage URL {url.replace('s3cret', '***')}: a SQLite URL "
                                    "names a file after three slashes, sqlite:///relative/path.db")
    assert result.stderr.count("\n") == 1 and "s3cret" not in result.output and not list(tmp_path.iterdir())


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused_by_every_command(url, monkeypatch):
    monkeypatch.setenv("TUNER_STORAGE", url)  # from the environment as from the option
    for args in (("db", "upgrade"), ("study", "list"), ("db", "current", "--storage", url)):
        result = tuner(*args)
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == (f"error: {url} is an in-memory database, private to one connection and gone when "
                                 "the command exits; tuner's workers and commands share one database: give a file, "
                                 "e.g. sqlite:///tuner.db\n")


@pytest.mark.parametrize("command", ["upgrade", "current", "downgrade"])
def test_each_command_has_help_with_an_example(command):
    result = tuner("db", command, "--help")
    assert result.exit_code == 0
    assert f"Example: tuner db {command}" in result.stdout


def test_upgrade_on_postgresql(pg_url):
    result = tuner("db", "upgrade", "--storage", pg_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(": upgraded from revision none to 0002 (head)\n")
