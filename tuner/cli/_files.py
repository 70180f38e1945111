"""How the commands that write a file (`tuner study export`, `export-spec`, `tuner train`) write it: never over
an existing file unless forced, and whole or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.errors import TunerError

if TYPE_CHECKING:  # pandas loads with the commands that export, not for every `tuner` command
    import pandas as pd


def refuse_to_overwrite(out: Path, *, force: bool) -> None:
    """A TunerError when `out` exists (without `force`) or its directory does not."""
    if out.exists() and not force:
        raise TunerError(f"{out}: already exists (use --force to overwrite)")
    if not out.parent.is_dir():
        raise TunerError(f"{out}: no directory {out.parent} to write into")


def write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """`frame` as csv, json (records; times in ISO 8601) or parquet (needs pyarrow)."""
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "json":
        frame.to_json(path, orient="records", indent=1, date_format="iso")
    else:
        try:
            frame.to_parquet(path, index=False)
        except ImportError:
            raise TunerError("parquet export needs pyarrow: pip install 'tuner[parquet]'") from None


def write_whole(out: Path, write: Callable[[Path], None]) -> None:
    """`write(path)` so that `out` holds the whole file or is left as it was, never a part of it.

    A regular file is written beside `out` under a temporary name and renamed over it once complete (a
    rename is atomic), so a full disk or a kill mid-way leaves no partial export. Anything else that
    exists (/dev/stdout, a FIFO) is written in place: it cannot be replaced by a rename.
    """
    if out.exists() and not out.is_file():
        try:
            write(out)
        except OSError as err:
            raise TunerError(f"cannot write {out}: {err.strerror or err}") from None
        return
    part = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    try:
        write(part)
        os.replace(part, out)
    except OSError as err:
        raise TunerError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        part.unlink(missing_ok=True)
