"""Reading the user's data files: `.npz` arrays and `.csv` tables, checked, into raw arrays and a task.

`load_dataset` (in `data`) does the split, standardisation and cast that every source shares; this module
turns a file into `Raw` arrays with the checks that name the file and the fault (raised as DataError).
Rows in messages are 0-based data rows; for a CSV the file's line number is given too.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuner.errors import DataError


@dataclass
class Raw:
    """What a source yields before the common checks, split and standardisation."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    task: str
    n_classes: int | None
    row: Callable[[int], str] = "row {}".format


def check_features(name: str, key: str, x: np.ndarray, row: Callable[[int], str],
                    columns: list[str] | None = None) -> None:
    """x must be a non-empty 2-D array of finite numbers."""
    if x.ndim != 2:
        raise DataError(f"{name}: {key} must be 2-D (examples x features), got shape {x.shape}")
    if len(x) == 0:
        raise DataError(f"{name}: the dataset is empty ({key} has 0 rows)")
    if x.shape[1] == 0:
        raise DataError(f"{name}: {key} has no features (0 columns)")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name}: {key} must hold numbers, got dtype {x.dtype}")
    finite = np.isfinite(x)
    if not finite.all():
        bad = x.size - int(np.count_nonzero(finite))
        first = int(np.argmin(finite.reshape(-1)))
        r, c = divmod(first, x.shape[1])
        column = f"column {columns[c]!r}" if columns else f"column {c}"
        raise DataError(f"{name}: {key} has {bad} NaN or infinite value(s), first at {row(r)}, {column}")


def check_lengths(name: str, x: np.ndarray, y: np.ndarray, xk: str = "x", yk: str = "y") -> None:
    if y.ndim == 0:
        raise DataError(f"{name}: {yk} must be an array with one entry per row of {xk}, got a scalar")
    if len(x) != len(y):
        raise DataError(f"{name}: {xk} has {len(x)} rows but {yk} has {len(y)}")


def check_classes(name: str, n_classes: int) -> int:
    if n_classes < 2:
        raise DataError(f"{name}: classification needs at least 2 classes, found {n_classes}")
    return n_classes


def _is_npy(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def load_npz(path: Path, name: str) -> Raw:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{name}: not a .npz archive (a single .npy array?)")
            found = archive.files
            for key in ("x", "y"):
                if key not in found:
                    raise DataError(f"{name}: missing array {key!r} (found: {', '.join(found) or 'none'})")
            if ("x_val" in found) != ("y_val" in found):
                have, lack = ("x_val", "y_val") if "x_val" in found else ("y_val", "x_val")
                raise DataError(f"{name}: has {have} but not {lack}")
            arrays = {key: archive[key] for key in ("x", "y", "x_val", "y_val") if key in found}
    except DataError:
        raise
    except ValueError as exc:
        # np.load falls back to unpickling any file that is neither a zip archive nor a .npy array.
        if not zipfile.is_zipfile(path) and not _is_npy(path):
            raise DataError(f"{name}: not a .npz file (not a zip archive of arrays)") from None
        if "pickle" in str(exc):
            raise DataError(f"{name}: holds pickled Python objects, which are never loaded; "
                            "save numeric or string arrays") from None
        raise DataError(f"{name}: not a readable .npz file (truncated or corrupt: {exc})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
        raise DataError(f"{name}: not a readable .npz file (truncated or corrupt: {exc})") from None

    x, y = arrays["x"], arrays["y"]
    x_val, y_val = arrays.get("x_val"), arrays.get("y_val")
    check_features(name, "x", x, "row {}".format)
    check_lengths(name, x, y)
    if x_val is not None:
        check_features(name, "x_val", x_val, "row {}".format)
        check_lengths(name, x_val, y_val, "x_val", "y_val")
    if y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind != "f":
        y = y.ravel()
        y_val = None if y_val is None else y_val.reshape(-1)
    if y.dtype.kind == "f":
        return _npz_regression(name, x, y, x_val, y_val)
    return _npz_classification(name, x, y, x_val, y_val)


def _npz_regression(name: str, x, y, x_val, y_val) -> Raw:
    targets = []
    for key, t in (("y", y), ("y_val", y_val)):
        if t is None:
            continue
        if t.ndim not in (1, 2):
            raise DataError(f"{name}: {key} must be 1-D or 2-D, got shape {t.shape}")
        t = t.reshape(len(t), -1)
        check_features(name, key, t, "row {}".format)
        targets.append(t)
    if y_val is not None:
        if y_val.dtype.kind != "f":
            raise DataError(f"{name}: y is a floating (regression) target but y_val has dtype {y_val.dtype}")
        if targets[1].shape[1] != targets[0].shape[1]:
            raise DataError(f"{name}: y_val has {targets[1].shape[1]} outputs but y has {targets[0].shape[1]}")
    return Raw(x, targets[0], x_val, targets[1] if y_val is not None else None, "regression", None)


def _npz_classification(name: str, x, y, x_val, y_val) -> Raw:
    for key, t in (("y", y), ("y_val", y_val)):
        if t is not None and t.ndim != 1:
            raise DataError(f"{name}: class labels {key} must be 1-D, got shape {t.shape}")
    if y.dtype.kind in "USO":
        classes = np.unique(y)
        labels = np.searchsorted(classes, y)
        if y_val is not None:
            y_val = y_val.astype(y.dtype)
            unknown = ~np.isin(y_val, classes)
            if unknown.any():
                r = int(np.argmax(unknown))
                raise DataError(f"{name}: y_val has label {y_val[r]!r} at row {r}, which y does not have")
            y_val = np.searchsorted(classes, y_val)
        return Raw(x, labels.astype(np.int64), x_val, y_val, "classification", check_classes(name, len(classes)))
    if y.dtype.kind not in "biu":
        raise DataError(f"{name}: y must hold numbers or strings, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        r = int(np.argmin(y >= 0))
        raise DataError(f"{name}: class labels must be integers in 0..C-1, y has {y[r]} at row {r}")
    n_classes = check_classes(name, int(y.max()) + 1 if len(y) else 0)
    if y_val is not None:
        if y_val.dtype.kind == "f":
            fractional = ~np.isfinite(y_val) | (y_val != np.round(y_val))
            if fractional.any():
                r = int(np.argmax(fractional))
                raise DataError(f"{name}: y holds integer class labels but y_val has {y_val[r]} at row {r}")
        elif y_val.dtype.kind not in "biu":
            raise DataError(f"{name}: y holds integer class labels but y_val has dtype {y_val.dtype}")
        y_val = y_val.astype(np.int64)
        outside = (y_val < 0) | (y_val >= n_classes)
        if outside.any():
            r = int(np.argmax(outside))
            raise DataError(
                f"{name}: y_val has label {y_val[r]} at row {r}, outside the classes 0..{n_classes - 1} of y"
            )
    return Raw(x, y, x_val, y_val, "classification", n_classes)


def load_csv(path: Path, name: str, target: str | None) -> Raw:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{name}: not a readable CSV file ({message})") from None
    columns = [str(c) for c in frame.columns]
    if target is None:
        raise DataError(f"{name}: name the label column with target (columns: {', '.join(columns)})")
    if target not in frame.columns:
        raise DataError(f"{name}: no target column {target!r} (columns: {', '.join(columns)})")

    def row(r: int) -> str:
        return f"row {r} (line {r + 2})"  # the header is line 1
    if len(frame) == 0:
        raise DataError(f"{name}: the dataset is empty (no data rows)")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"{name}: no feature columns besides the target {target!r}")
    for column in features.columns:
        values = features[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            text = pd.to_numeric(values, errors="coerce").isna().to_numpy() & values.notna().to_numpy()
            r = int(np.argmax(text))
            raise DataError(f"{name}: feature column {column!r} is not numeric ({values.iloc[r]!r} at {row(r)})")
    x = features.to_numpy(dtype=np.float64)
    check_features(name, "x", x, row, [str(c) for c in features.columns])
    labels = frame[target]
    missing = labels.isna().to_numpy()
    if missing.any():
        count, r = int(missing.sum()), int(np.argmax(missing))
        raise DataError(f"{name}: target column {target!r} has {count} missing value(s), first at {row(r)}")
    if pd.api.types.is_float_dtype(labels):
        y = labels.to_numpy(dtype=np.float64)[:, None]
        check_features(name, f"target column {target!r}", y, row)
        return Raw(x, y, None, None, "regression", None, row)
    values = labels.to_numpy()
    if values.dtype.kind == "O":
        values = values.astype(str)
    classes, y = np.unique(values, return_inverse=True)
    return Raw(x, y.astype(np.int64), None, None, "classification", check_classes(name, len(classes)), row)
