"""Which database to use, and how to print its URL without the password.

The URL comes from `--storage`, else `$TUNER_STORAGE`, else `sqlite:///tuner.db` in the working directory.
Its password may come from a file instead, named by `$TUNER_DB_PASSWORD_FILE` (the `*_FILE` convention of
container secrets: an environment variable shows in `docker inspect`, a mounted file does not).
Anything printed (errors, logs, CLI output) goes through `redact`: a password never reaches a terminal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tuner.errors import StorageError

ENV_VAR = "TUNER_STORAGE"
PASSWORD_FILE_VAR = "TUNER_DB_PASSWORD_FILE"
DEFAULT_URL = "sqlite:///tuner.db"

# user:password@ up to the *last* '@' of the string: a raw '@' in a password must not leak its tail.
_CREDENTIALS = re.compile(r"^([^:/]+://[^:/@]*:).*@")


def resolve_url(value: str | None) -> str:
    """The storage URL: `value` (the --storage option), else $TUNER_STORAGE, else sqlite:///tuner.db.

    Empty strings count as unset. The URL is checked (`parse_url`) so a malformed one fails here, once.
    With $TUNER_DB_PASSWORD_FILE set, a database URL gets its password from that file (see
    `password_from_file`).
    """
    for candidate in (value, os.environ.get(ENV_VAR)):
        if candidate is not None and candidate.strip():
            url = candidate.strip()
            parsed = parse_url(url)
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
    """The SQLAlchemy URL object; a malformed URL raises StorageError naming it with the password hidden."""
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
    return parsed


def redact(url: str | URL) -> str:
    """The URL as text with the password replaced by ***, for anything printed.

    Uses SQLAlchemy's `render_as_string(hide_password=True)`; a URL SQLAlchemy cannot parse (or one whose
    host swallowed part of a password holding a raw '@') is masked from the scheme up to the last '@'.
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _CREDENTIALS.sub(r"\1***@", url)
    if parsed.host is not None and "@" in parsed.host:
        return _CREDENTIALS.sub(r"\1***@", url)
    return parsed.render_as_string(hide_password=True)


def _reason(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, ValueError) and "int()" in text:
        return "the port is not a number"
    return text
