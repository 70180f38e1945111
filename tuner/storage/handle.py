"""Opening a database, and a study in it, once per command.

`open_storage(url)` connects, checks that the project's schema is current, and returns the engine: what
every command does first. Reading never creates anything: without `create_if_empty` a SQLite path that
does not exist is refused before SQLite would make an empty file there, and a database without tuner's
tables is refused before Optuna would create its own. `open_database(url)` is the same without the schema
check, for the commands that look at or migrate the schema itself (`tuner db`).

`open_study(url, name)` returns a `StudyHandle`: the engine, the loaded Optuna study and tuner's record of
it. Analysis takes a handle, so one command reads the database through one connection check.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL, Engine

from tuner.errors import StorageError, StudyNotFoundError
from tuner.storage.engine import check_connection, make_engine
from tuner.storage.migrations import ensure_schema
from tuner.storage.optuna_tables import has_optuna_tables
from tuner.storage.records import StudyRecord, get_study
from tuner.storage.session_defaults import check_server_timeouts
from tuner.storage.url import is_sqlite_memory, parse_url, redact

if TYPE_CHECKING:  # Optuna (and NumPy with it) loads when a study is opened, not with every engine
    import optuna


def open_storage(url: str, *, create_if_empty: bool = False) -> Engine:
    """An engine on a reachable database whose tuner schema is current (created if empty and asked)."""
    engine = open_database(url, create=create_if_empty)
    ensure_schema(engine, create_if_empty=create_if_empty)
    return engine


def open_database(url: str, *, create: bool = False) -> Engine:
    """An engine on a reachable database, its schema unchecked; a SQLite file must exist unless `create`."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and not is_sqlite_memory(parsed):
        _check_sqlite_path(parsed, create=create)
    engine = make_engine(parsed)
    check_connection(engine)
    check_server_timeouts(engine)  # through a pooler, the server must give the timeouts itself
    return engine


_NOT_A_FILE = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def _check_sqlite_path(url: URL, *, create: bool) -> None:
    """Refuse a SQLite path that is missing (unless `create`), unreadable, or not a regular file.

    SQLite would create a missing file, block on a FIFO, and fail later on a directory with a less
    telling message; every command says the same line about the same path.
    """
    path = Path(url.database)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        if create:
            return
        raise StorageError(f"no database at {redact(url)}: {path} does not exist") from None
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise StorageError(f"cannot open the database at {redact(url)}: {path}: {reason}") from None
    if not stat.S_ISREG(mode):
        kind = _NOT_A_FILE.get(stat.S_IFMT(mode), "not a regular file")
        raise StorageError(f"no database at {redact(url)}: {path} is {kind}, not a database file")


@dataclass(frozen=True)
class StudyHandle:
    """A study opened for reading: its engine, its Optuna study, and tuner's record (None for a study
    tuner did not create, such as one made with plain Optuna in the same database)."""

    url: str
    engine: Engine
    study: optuna.Study
    record: StudyRecord | None

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def maximize(self) -> bool:
        return self.study.direction.name == "MAXIMIZE"

    @property
    def objective(self) -> str | None:
        """The metric the study optimises (`val_accuracy`, `val_loss`), when tuner made the study."""
        if self.record is not None:
            return self.record.spec["study"]["objective"]
        value = self.study.user_attrs.get("objective")
        return value if isinstance(value, str) else None


def open_study(url: str, name: str, **storage_options: int) -> StudyHandle:
    """Open study `name`; a missing one raises StudyNotFoundError naming those that exist.

    `storage_options` go to `optuna_storage` (heartbeat_interval and grace_period, for a caller that fails
    stale trials); Optuna's tables are never created here.
    """
    from tuner.storage.optuna_adapter import load_study, optuna_storage

    engine = open_storage(url)
    if not has_optuna_tables(engine):
        raise StudyNotFoundError(f"no study named '{name}' (studies: none)")
    study = load_study(optuna_storage(url, create_tables=False, **storage_options), name)
    return StudyHandle(url=url, engine=engine, study=study, record=get_study(engine, name))
