"""URL resolution order, password redaction and malformed URLs."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL, make_url

from tuner.errors import StorageError
from tuner.storage import DEFAULT_URL, redact, resolve_url


def test_the_option_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("TUNER_STORAGE", "sqlite:///from-env.db")
    assert resolve_url("sqlite:///from-option.db") == "sqlite:///from-option.db"


def test_the_environment_wins_over_the_default(monkeypatch):
    monkeypatch.setenv("TUNER_STORAGE", "sqlite:///from-env.db")
    assert resolve_url(None) == "sqlite:///from-env.db"


def test_the_default_is_a_sqlite_file_in_the_working_directory():
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///tuner.db"


def test_empty_values_count_as_unset(monkeypatch):
    monkeypatch.setenv("TUNER_STORAGE", "  ")
    assert resolve_url("") == DEFAULT_URL


@pytest.mark.parametrize("password", ["s3cret", "50%off", "p{x}y", "a@b", "x/y:z", "%7B", "{}"])
def test_redact_hides_any_password(password):
    url = URL.create("postgresql+psycopg", username="bob", password=password, host="db.example", port=5432,
                     database="tuner").render_as_string(hide_password=False)
    shown = redact(url)
    assert shown == "postgresql+psycopg://bob:***@db.example:5432/tuner"
    assert redact(URL.create("postgresql+psycopg", username="bob", password=password, host="h")) == (
        "postgresql+psycopg://bob:***@h"
    )


@pytest.mark.parametrize(
    "url",
    ["postgresql://bob:p@ss@db.example/tuner", "postgresql://bob:s3cret@db.example:notaport/tuner"],
)
def test_redact_hides_a_password_sqlalchemy_cannot_parse(url):
    shown = redact(url)
    assert "bob:***@" in shown
    assert "ss" not in shown.split("@", 1)[0] and "s3cret" not in shown


def test_redact_leaves_urls_without_password_alone():
    assert redact("sqlite:///tuner.db") == "sqlite:///tuner.db"
    assert redact("postgresql+psycopg://bob@db/tuner") == "postgresql+psycopg://bob@db/tuner"


def test_a_malformed_url_names_it_without_the_password():
    with pytest.raises(StorageError) as info:
        resolve_url("postgresql://bob:s3cret@db:notaport/tuner")
    assert str(info.value) == "malformed storage URL postgresql://bob:***@db:notaport/tuner: the port is not a number"


def test_a_raw_at_sign_in_the_password_is_refused_with_a_hint():
    with pytest.raises(StorageError, match=r"^malformed storage URL postgresql://bob:\*\*\*@db/tuner: percent-encode"):
        resolve_url("postgresql://bob:p@ss@db/tuner")


def test_text_that_is_not_a_url_is_refused():
    with pytest.raises(StorageError, match="^malformed storage URL tuner.db: Could not parse"):
        resolve_url("tuner.db")


@pytest.fixture
def password_file(tmp_path, monkeypatch):
    """Write the secret file and point TUNER_DB_PASSWORD_FILE at it."""
    path = tmp_path / "db_password"

    def write(content: str | bytes) -> str:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        monkeypatch.setenv("TUNER_DB_PASSWORD_FILE", str(path))
        return str(path)

    return write


def test_the_password_comes_from_the_file_without_its_line_break(password_file):
    password_file("p{x}%@y\n")
    resolved = make_url(resolve_url("postgresql+psycopg://bob@db:5432/tuner"))
    assert resolved.password == "p{x}%@y" and resolved.host == "db"
    assert redact(resolve_url("postgresql+psycopg://bob@db:5432/tuner")) == "postgresql+psycopg://bob:***@db:5432/tuner"


def test_the_same_password_in_the_url_and_the_file_is_fine(password_file):
    # `tuner worker --jobs N` hands its children the resolved URL, and they see the file too
    password_file("s3cret\n")
    assert make_url(resolve_url("postgresql+psycopg://bob:s3cret@db/tuner")).password == "s3cret"


def test_a_sqlite_url_ignores_the_password_file(password_file):
    password_file("s3cret")
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the database password from TUNER_DB_PASSWORD_FILE={path}: No such file or directory"),
        ("\n", "the database password file TUNER_DB_PASSWORD_FILE={path} is empty"),
        (b"\xff\xfe", "the database password file TUNER_DB_PASSWORD_FILE={path} is not UTF-8 text"),
        ("other\n", "postgresql+psycopg://bob:***@db/tuner has a password and TUNER_DB_PASSWORD_FILE={path} another"),
    ],
)
def test_a_bad_password_file_is_one_storage_error_without_the_secret(password_file, tmp_path, monkeypatch,
                                                                     content, message):
    if content is None:
        path = str(tmp_path / "missing")
        monkeypatch.setenv("TUNER_DB_PASSWORD_FILE", path)
    else:
        path = password_file(content)
    with pytest.raises(StorageError) as info:
        resolve_url("postgresql+psycopg://bob:s3cret@db/tuner" if content == "other\n" else
                    "postgresql+psycopg://bob@db/tuner")
    assert str(info.value).startswith(message.format(path=path))
    assert "s3cret" not in str(info.value) and "other" not in str(info.value).replace("another", "")
