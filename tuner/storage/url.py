"""Which database to use, and how to print its URL without the password.

The URL comes from `--storage`, else `$TUNER_STORAGE`, else `sqlite:///tuner.db` in the working directory.
Anything printed (errors, logs, CLI output) goes through `redact`: a password never reaches a terminal.
"""

from __future__ import annotations

import os
import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tuner.errors import StorageError

ENV_VAR = "TUNER_STORAGE"
DEFAULT_URL = "sqlite:///tuner.db"

# user:password@ up to the *last* '@' of the string: a raw '@' in a password must not leak its tail.
_CREDENTIALS = re.compile(r"^([^:/]+://[^:/@]*:).*@")


def resolve_url(value: str | None) -> str:
    """The storage URL: `value` (the --storage option), else $TUNER_STORAGE, else sqlite:///tuner.db.

    Empty strings count as unset. The URL is checked (`parse_url`) so a malformed one fails here, once.
    """
    for candidate in (value, os.environ.get(ENV_VAR)):
        if candidate is not None and candidate.strip():
            url = candidate.strip()
            parse_url(url)
            return url
    return DEFAULT_URL


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
