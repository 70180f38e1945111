"""Which database to use, and how to print its URL without a secret.

The URL comes from `--storage`, else `$TUNER_STORAGE`, else `sqlite:///tuner.db` in the working directory.
Its password may come from a file instead, named by `$TUNER_DB_PASSWORD_FILE` (the `*_FILE` convention of
container secrets: an environment variable shows in `docker inspect`, a mounted file does not).
Anything printed (errors, logs, CLI output, reports) goes through `redact`: no secret reaches a terminal
or a page, whatever the form of the text it came in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote_plus

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tuner.errors import StorageError
from tuner.text import printable

ENV_VAR = "TUNER_STORAGE"
PASSWORD_FILE_VAR = "TUNER_DB_PASSWORD_FILE"
DEFAULT_URL = "sqlite:///tuner.db"
HIDDEN = "***"

# A connection parameter whose name holds one of these (decoded, any case) carries a secret or says where
# one is: libpq's password, sslpassword, passfile, sslkey, oauth_client_secret; PyMySQL's password,
# passwd, ssl_key, ssl_key_password; mysqlclient's passwd; ODBC's PWD; other drivers' tokens and keys.
_SECRET = re.compile(r"pass|pwd|secret|token|credential|key", re.IGNORECASE)
# `name=` of a parameter inside text (a query string, a libpq connection string, an ODBC string).
_PARAMETER = re.compile(r"[A-Za-z0-9_%.+\-]+(?=\s*=)")
# A value after `name=`: a quoted libpq value, else everything up to the next '&' or ';'. Spaces do not
# end it: an unencoded space in a password would otherwise leave its tail shown.
_VALUE = re.compile(r"\s*=\s*('(?:[^'\\]|\\.)*'?|[^&;]*)")
_BAD_PORT = re.compile(r"(://[^/?#@:]*:)(?!\d*(?:[/?#]|$))([^/?#@]*)")
# Besides letters and digits, what the rendered database name and query values leave unencoded (the '*'
# of a hidden secret among them); SQLAlchemy's own rendering would encode it.
_DATABASE_SAFE, _QUERY_SAFE = " +/*", "/*"


def is_sqlite_memory(url: URL) -> bool:
    """True for an in-memory SQLite database (`sqlite://` or `sqlite:///:memory:`)."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def resolve_url(value: str | None) -> str:
    """The storage URL: `value` (the --storage option), else $TUNER_STORAGE, else sqlite:///tuner.db.

    Empty strings count as unset. The URL is checked (`parse_url`) so a malformed one fails here, once;
    an in-memory SQLite database (`sqlite://`, `sqlite:///:memory:`) is refused: every command and worker
    opens the database anew, and tuner's tables and Optuna's would each get a database of their own.
    With $TUNER_DB_PASSWORD_FILE set, a database URL gets its password from that file (see
    `password_from_file`).
    """
    for candidate in (value, os.environ.get(ENV_VAR)):
        if candidate is not None and candidate.strip():
            url = candidate.strip()
            parsed = parse_url(url)
            if is_sqlite_memory(parsed):
                raise StorageError(
                    f"{redact(parsed)} is an in-memory database, private to one connection and gone when the "
                    "command exits; tuner's workers and commands share one database: give a file, e.g. "
                    f"{DEFAULT_URL}"
                )
            path = os.environ.get(PASSWORD_FILE_VAR, "").strip()
            if not path or parsed.get_backend_name() == "sqlite":
                return url
            return password_from_file(parsed, path).render_as_string(hide_password=False)
    return DEFAULT_URL


def password_from_file(url: URL, path: str) -> URL:
    """`url` with the password read from the file at `path` (trailing line breaks removed, as the
    PostgreSQL image reads its POSTGRES_PASSWORD_FILE).

    An unreadable or empty file, or a URL that holds another password already, raises StorageError naming
    the variable and the path; the password itself is never part of a message.
    """
    where = f"{PASSWORD_FILE_VAR}={path}"
    try:
        password = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise StorageError(f"cannot read the database password from {where}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise StorageError(f"the database password file {where} is not UTF-8 text") from None
    if not password:
        raise StorageError(f"the database password file {where} is empty")
    if url.password is not None and str(url.password) != password:
        raise StorageError(f"{redact(url)} has a password and {where} another: give the password in one place")
    return url.set(password=password)


def parse_url(url: str | URL) -> URL:
    """The SQLAlchemy URL object; a malformed URL raises StorageError naming it with its secrets hidden."""
    if isinstance(url, URL):
        return url
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as err:
        raise StorageError(f"malformed storage URL {redact(url)}: {_reason(err)}") from None
    if parsed.host is not None and "@" in parsed.host:
        raise StorageError(
            f"malformed storage URL {redact(url)}: percent-encode '@' in the user name or password as %40"
        )
    if parsed.get_backend_name() == "sqlite" and (parsed.host or parsed.port or parsed.username):
        raise StorageError(
            f"malformed storage URL {redact(url)}: a SQLite URL names a file after three slashes, "
            "sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return parsed


def redact(url: str | URL) -> str:
    """The URL as text with every secret replaced by `***`, safe to print: any string in, safe text out.

    Hidden: the password; the value of every query parameter whose name says it holds a secret (`_SECRET`,
    matched on the decoded name in any case); `name=value` secrets nested in other values or in the
    database name (a libpq connection string, an ODBC `odbc_connect`). Text SQLAlchemy cannot parse (a
    scheme with a slash or a colon missing, no scheme, garbage around, a raw '@' in the password) is masked
    by its shape: from the first ':' of the user information to the last '@', and a port that is not a
    number. Control characters are escaped (`tuner.text.printable`), so the text cannot drive a terminal.
    """
    if isinstance(url, URL):
        return printable(_render(url))
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return printable(_mask_text(str(url)))
    if parsed.host is not None and "@" in parsed.host:  # a raw '@' in the password: the host holds its tail
        return printable(_mask_text(url))
    return printable(_render(parsed))


def secrets_of(url: URL) -> list[str]:
    """Every secret the URL holds, decoded and percent-encoded: what a driver's error must not show."""
    values = [url.password] if url.password else []
    values += [value for key, value in _query_items(url) if value and _SECRET.search(key)]
    return [form for value in map(str, values) for form in {value, quote(value, safe="")}]


def _render(url: URL) -> str:
    """SQLAlchemy's own rendering (password hidden) with the secrets of the database and query hidden too."""
    server = URL.create(url.drivername, url.username, url.password, url.host, url.port)
    text = server.render_as_string(hide_password=True)
    if url.host is not None and "@" in url.host:
        text = _mask_credentials(text)
    if url.database is not None:
        if url.get_backend_name() == "sqlite":  # a path: ':' needs no escape (sqlite:///:memory:, C:/...)
            text += "/" + quote(url.database, safe=_DATABASE_SAFE + ":")
        else:
            text += "/" + quote(_mask_text(url.database), safe=_DATABASE_SAFE)
    query = [(key, HIDDEN if _SECRET.search(key) else quote(_mask_text(value), safe=_QUERY_SAFE))
             for key, value in _query_items(url)]
    return text + ("?" + "&".join(f"{quote(key, safe=_QUERY_SAFE)}={value}" for key, value in query) if query else "")


def _query_items(url: URL) -> Iterator[tuple[str, str]]:
    for key, value in url.query.items():
        for element in value if isinstance(value, tuple) else (value,):
            yield key, element


def _mask_text(text: str) -> str:
    """Text that may hold a URL or connection parameters, with the secrets it seems to hold hidden."""
    return _mask_parameters(_mask_credentials(text))


def _mask_credentials(text: str) -> str:
    """`user:password@` up to the *last* '@' (a raw '@' in a password must not leak its tail) becomes
    `user:***@`; without an '@', a port that is not a number (perhaps a password without its host) is hidden.

    The first ':' followed by '/' is taken for the scheme's; the next ':' starts the password. With no
    password colon, what precedes the '@' is a user name after `//`, and anything else is hidden whole.
    """
    at = text.rfind("@")
    if at < 0:
        return _BAD_PORT.sub(lambda m: m.group(1) + HIDDEN, text)
    head = text[:at]
    colons = [i for i, c in enumerate(head) if c == ":"]
    if colons and head.startswith("/", colons[0] + 1):
        colons = colons[1:]
    if colons:
        return head[: colons[0] + 1] + HIDDEN + text[at:]
    if "//" in head:
        return text
    return HIDDEN + text[at:]


def _mask_parameters(text: str) -> str:
    """The value of every `name=value` whose (percent-decoded) name says it is a secret, hidden."""
    spans = []
    for name in _PARAMETER.finditer(text):
        if _SECRET.search(unquote_plus(name.group())) and (not spans or name.start() >= spans[-1][1]):
            value = _VALUE.match(text, name.end())
            spans.append((value.start(1), value.end(1)))
    for start, end in reversed(spans):
        text = text[:start] + HIDDEN + text[end:]
    return text


def _reason(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, ValueError) and "int()" in text:
        return "the port is not a number"
    return text
