"""Room for a worker's last words on a full disk: a ballast file beside a SQLite database.

When the disk that holds a SQLite database fills up, every write fails, including the two that a worker
needs to end cleanly: failing its running trial, and marking its own row stopped. Left undone, the study
shows a RUNNING trial and a running worker until someone cleans up. So a worker keeps a small ballast file
(`<database>-reserve`, 1 MiB of zeros) beside the database, and deletes it when a write fails for want of
space, just before those last writes: a few database pages is all they need. The ballast is made again by
the next worker that starts with space to spare. This is the ballast-file practice of servers that must
not be wedged by a full disk; PostgreSQL's own disk is the server's to manage (its workers' trials are
failed by the others once it has space again).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy.engine import URL

from tuner.storage.url import is_sqlite_memory

RESERVE_BYTES = 1 << 20
FULL_MARKERS = ("database or disk is full", "no space left on device", "could not extend file")


def reserve_path(url: URL) -> Path | None:
    """The ballast file of a SQLite database file, or None for any other database."""
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url):
        return None
    return Path(os.path.abspath(url.database) + "-reserve")


def ensure_reserve(url: URL) -> bool:
    """Make the ballast file if it is missing and there is room; True when it exists afterwards."""
    path = reserve_path(url)
    if path is None:
        return False
    if path.exists():
        return True
    try:
        with open(path, "xb") as f:
            f.write(b"\0" * RESERVE_BYTES)
            f.flush()
            os.fsync(f.fileno())  # the blocks must be really taken, or deleting frees nothing
    except FileExistsError:
        return True
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return False
    return True


def release_reserve(url: URL) -> bool:
    """Delete the ballast file; True if there was one to free."""
    path = reserve_path(url)
    if path is None:
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def is_disk_full(reason: str) -> bool:
    """Whether a driver's error text says the disk is full (SQLite, the OS, PostgreSQL)."""
    text = reason.lower()
    return any(marker in text for marker in FULL_MARKERS)
