"""URL resolution order, password redaction and malformed URLs."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL, make_url

from tuner.errors import StorageError
from tuner.storage import DEFAULT_URL, redact, resolve_url
from tuner.storage.url import secrets_of
from tuner.text import printable


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


# ---- every form a secret can take -------------------------------------------------------------------

SECRET = "s3cr3t-Pw"
HOSTILE = [
    # the password as a query parameter, under each driver's names (libpq/psycopg, PyMySQL, mysqlclient, ODBC)
    (f"postgresql+psycopg://bob@db/tuner?password={SECRET}", "postgresql+psycopg://bob@db/tuner?password=***"),
    (f"postgresql+psycopg://bob:{SECRET}@db/tuner?password={SECRET}",
     "postgresql+psycopg://bob:***@db/tuner?password=***"),
    (f"postgresql+psycopg://bob@db/tuner?sslmode=require&sslpassword={SECRET}",
     "postgresql+psycopg://bob@db/tuner?sslmode=require&sslpassword=***"),
    (f"postgresql+psycopg://bob@db/tuner?sslkey=/home/bob/{SECRET}.key&sslcert=/c.pem",
     "postgresql+psycopg://bob@db/tuner?sslkey=***&sslcert=/c.pem"),
    (f"postgresql+psycopg://bob@db/tuner?passfile=/home/{SECRET}", "postgresql+psycopg://bob@db/tuner?passfile=***"),
    (f"postgresql+psycopg://bob@db/tuner?oauth_client_secret={SECRET}",
     "postgresql+psycopg://bob@db/tuner?oauth_client_secret=***"),
    (f"mysql+pymysql://bob@db/tuner?passwd={SECRET}", "mysql+pymysql://bob@db/tuner?passwd=***"),
    (f"mysql+pymysql://bob@db/tuner?ssl_key=/k.pem&ssl_key_password={SECRET}",
     "mysql+pymysql://bob@db/tuner?ssl_key=***&ssl_key_password=***"),
    (f"mssql+pyodbc://bob@dsn?pwd={SECRET}", "mssql+pyodbc://bob@dsn?pwd=***"),
    (f"mssql+pyodbc://bob@dsn?odbc_connect=DRIVER%3Dx%3BUID%3Dbob%3BPWD%3D{SECRET}",
     "mssql+pyodbc://bob@dsn?odbc_connect=DRIVER%3Dx%3BUID%3Dbob%3BPWD%3D***"),
    # names in any case, percent-encoded, or repeated; values percent-encoded
    (f"postgresql+psycopg://bob@db/tuner?PassWord={SECRET}", "postgresql+psycopg://bob@db/tuner?PassWord=***"),
    (f"postgresql+psycopg://bob@db/tuner?pass%77ord={SECRET}", "postgresql+psycopg://bob@db/tuner?password=***"),
    (f"postgresql+psycopg://bob@db/tuner?password=a&password={SECRET}",
     "postgresql+psycopg://bob@db/tuner?password=***&password=***"),
    ("postgresql+psycopg://bob@db/tuner?password=s3%40cr%25t%7B", "postgresql+psycopg://bob@db/tuner?password=***"),
    ("postgresql+psycopg://bob:s3%40cr%25t%7B@db/tuner", "postgresql+psycopg://bob:***@db/tuner"),
    # a connection string inside the database name (libpq expands a dbname holding '=')
    (f"postgresql+psycopg://db/host=x%20password={SECRET}", "postgresql+psycopg://db/host%3Dx password%3D***"),
    (f"postgresql+psycopg:///bob:{SECRET}@db/tuner", "postgresql+psycopg:///bob%3A***%40db/tuner"),
    # URLs SQLAlchemy cannot parse: the scheme one slash short, no colon, no scheme, garbage around
    (f"postgresql+psycopg:/bob:{SECRET}@db/tuner", "postgresql+psycopg:/bob:***@db/tuner"),
    (f"postgresql+psycopg//bob:{SECRET}@db/tuner", "postgresql+psycopg//bob:***@db/tuner"),
    (f"postgresql+psycopg:bob:{SECRET}@db/tuner", "postgresql+psycopg:***@db/tuner"),
    (f"bob:{SECRET}@db/tuner", "bob:***@db/tuner"),
    (f"//bob:{SECRET}@db/tuner", "//bob:***@db/tuner"),
    (f"{SECRET}@db/tuner", "***@db/tuner"),
    (f"  see postgresql+psycopg://bob:{SECRET}@db/tuner now", "  see postgresql+psycopg://bob:***@db/tuner now"),
    (f"postgresql+psycopg://bob:{SECRET}@db:port/tuner?password={SECRET}",
     "postgresql+psycopg://bob:***@db:port/tuner?password=***"),
    (f"postgresql+psycopg://bob:{SECRET}/tuner", "postgresql+psycopg://bob:***/tuner"),
    (f"postgresql+psycopg://bob:{SECRET}", "postgresql+psycopg://bob:***"),
    (f"postgresql://bob:pa@ss:{SECRET}@db/tuner", "postgresql://bob:***@db/tuner"),
    (f"host=db user=bob password={SECRET} dbname=tuner", "host=db user=bob password=***"),
    (f"host=db password='{SECRET} x;y' dbname=tuner", "host=db password=*** dbname=tuner"),
    (f"DRIVER=x;UID=bob;PWD={SECRET};", "DRIVER=x;UID=bob;PWD=***;"),
    # control characters are encoded or shown, never sent to the terminal
    (f"postgresql+psycopg://bob:{SECRET}@db/tu\x1b[2Jner", "postgresql+psycopg://bob:***@db/tu%1B%5B2Jner"),
    (f"\x1b]8;;x\x07bob:{SECRET}@db", "\\x1b]8;;x\\x07bob:***@db"),
]


@pytest.mark.parametrize(("url", "shown"), HOSTILE)
def test_redact_hides_a_secret_in_every_form(url, shown):
    assert redact(url) == shown
    assert SECRET not in redact(url) and "s3%40cr" not in redact(url)


def test_redact_hides_secret_query_parameters_of_a_url_object():
    url = URL.create("mysql+pymysql", username="bob", host="db", query={"passwd": SECRET, "charset": "utf8mb4"})
    assert redact(url) == "mysql+pymysql://bob@db?passwd=***&charset=utf8mb4"


def test_redact_leaves_other_query_parameters_alone():
    url = "postgresql+psycopg://bob@db/tuner?sslmode=require&application_name=a%20b&connect_timeout=3"
    assert redact(url) == url


@pytest.mark.parametrize("url", ["", " ", "@", ":@", "://@", "?password", "&password=", "%", "%zz", "\x00", "a" * 5000])
def test_redact_takes_any_string(url):
    assert isinstance(redact(url), str)


def test_a_malformed_url_with_a_query_password_is_refused_without_it():
    with pytest.raises(StorageError) as info:
        resolve_url(f"postgresql+psycopg:/bob:{SECRET}@db/tuner?password={SECRET}")
    assert str(info.value) == ("malformed storage URL postgresql+psycopg:/bob:***@db/tuner?password=***: "
                               "Could not parse SQLAlchemy URL from given URL string")


def test_a_host_with_control_characters_is_shown_escaped():
    assert redact("postgresql+psycopg://bob:pw@db\x1b[2J/tuner") == "postgresql+psycopg://bob:***@db\\x1b[2J/tuner"


def test_secrets_of_a_url_are_its_password_and_secret_parameters_in_both_forms():
    url = make_url("postgresql+psycopg://bob:p%40ss@db/tuner?sslpassword=k%20y&sslmode=require")
    assert sorted(secrets_of(url)) == ["k y", "k%20y", "p%40ss", "p@ss"]


_TEMPLATES = [
    "postgresql+psycopg://bob:{raw}@db:5432/tuner",
    "postgresql+psycopg:/bob:{raw}@db/tuner",
    "postgresql+psycopg//bob:{raw}@db/tuner",
    "bob:{raw}@db/tuner",
    " x postgresql+psycopg://bob:{raw}@db/tuner?sslmode=require ",
    "postgresql+psycopg://bob:{encoded}@db/tuner",
    "postgresql+psycopg://bob@db/tuner?password={encoded}",
    "mysql+pymysql://bob@db/tuner?charset=utf8mb4&passwd={encoded}",
    "postgresql+psycopg://bob@db/tuner?sslpassword={encoded}&sslmode=require",
]


@settings(max_examples=400, deadline=None)
@given(secret=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12),
       template=st.sampled_from(_TEMPLATES))
def test_no_password_survives_redaction(secret, template):
    password = "Zq" + secret + "Zq"  # marked, so that it cannot be a piece of the rest of the URL
    url = template.format(raw=password, encoded=quote(password, safe=""))
    shown = redact(url)
    assert password not in shown and quote(password, safe="") not in shown and printable(password) not in shown
    assert shown.isprintable()
