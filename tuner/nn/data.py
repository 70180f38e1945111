"""Datasets for training runs: the built-in sources and the user's `.npz` / `.csv` files.

Every source ends in the same steps: checks that name the file and the fault (raised as DataError), a
seeded train/validation split when the source has no validation set of its own, standardisation of the
features with the training split's mean and std only (so nothing about the validation set leaks into
training), and a cast to `dtype`.

Sources:
- `digits`: scikit-learn's bundled 8x8 digits (1797 x 64, 10 classes), split with `seed`.
- `mnist1d`: MNIST-1D (Greydanus 2020) generated offline, 5000 x 40, 10 classes, with the package's own
  train/test split as train/validation (its `train_split` set to 1 - val_fraction) and its seed set to
  `seed`. It seeds NumPy's and Python's global generators, which are saved and restored around it.
- `synthetic_classification`: 2000 x 20, 4 classes, each a mixture of two Gaussian blobs (so the classes
  are not linearly separable).
- `synthetic_regression`: 2000 x 10 -> 1, y = sin(2·x·w1) + (x·w2)²/2 + noise.
- a `.npz` path (relative to `base_dir`): arrays `x` (n x d), `y`, and optionally `x_val`, `y_val`.
  Integer, boolean or string `y` is a classification target; floating `y` (n, or n x k) a regression one.
  Integer labels are used as class indices (0..C-1 with C = max(y) + 1); strings are mapped to 0..C-1
  in sorted order.
- a `.csv` path: `target` names the label column, every other column is a feature. A target of integers,
  booleans or strings is mapped to classes 0..C-1 (sorted); a floating target is a regression target.

Rows in messages are 0-based data rows; for a CSV the file's line number is given too.
"""

from __future__ import annotations

import numbers
import os
import random
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuner.errors import DataError

BUILTIN = ("digits", "mnist1d", "synthetic_classification", "synthetic_regression")
TASKS = ("classification", "regression")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A split, standardised dataset. Arrays are read-only; `y` holds int64 labels for classification
    and an (n x n_outputs) float array for regression."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    task: str
    n_classes: int | None

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else self.y_train.shape[1]

    @property
    def class_frequencies(self) -> np.ndarray | None:
        """Fraction of training examples in each class (None for regression)."""
        if self.task != "classification":
            return None
        return np.bincount(self.y_train, minlength=self.n_classes) / len(self.y_train)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, {self.task}, train {self.x_train.shape}, val {self.x_val.shape}, "
            f"n_classes={self.n_classes})"
        )


@dataclass
class _Raw:
    """What a source yields before the common checks, split and standardisation."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    task: str
    n_classes: int | None
    row: Callable[[int], str] = "row {}".format


def load_dataset(
    source: str | os.PathLike,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    target: str | None = None,
    standardize: bool = True,
    base_dir: str | os.PathLike | None = None,
    dtype: np.dtype | type = np.float32,
) -> Dataset:
    """Load `source` (a built-in name or a `.npz` / `.csv` path) as a split, standardised Dataset."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) or not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise DataError(f"dtype must be a floating-point type, got {dtype}")
    name = os.fspath(source)
    split_rng, make_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if name in BUILTIN:
        if target is not None:
            raise DataError(f"{name}: target names a CSV column, but {name} is a built-in dataset")
        raw = _BUILTIN_LOADERS[name](make_rng, seed, val_fraction)
    else:
        path = Path(name)
        suffix = path.suffix.lower()
        if suffix not in (".npz", ".csv"):
            if not suffix:
                known = ", ".join(BUILTIN)
                raise DataError(f"unknown data source {name!r}; known: {known}, or a path to a .npz or .csv file")
            raise DataError(f"{name}: unsupported file type {path.suffix!r} (use .npz or .csv)")
        resolved = path if path.is_absolute() or base_dir is None else Path(base_dir) / path
        if not resolved.exists():
            raise DataError(f"{name}: no such file (looked for {resolved.resolve()})")
        if not resolved.is_file():
            raise DataError(f"{name}: not a file")
        if suffix == ".npz":
            if target is not None:
                raise DataError(f"{name}: target names a CSV column, but a .npz holds arrays x and y")
            raw = _load_npz(resolved, name)
        else:
            raw = _load_csv(resolved, name, target)
    return _finish(name, raw, split_rng, val_fraction, standardize, dtype)


def _finish(name: str, raw: _Raw, rng: np.random.Generator, val_fraction: float, standardize: bool,
            dtype: np.dtype) -> Dataset:
    x, y, x_val, y_val = raw.x, raw.y, raw.x_val, raw.y_val
    _check_features(name, "x", x, raw.row)
    if x_val is None:
        if len(x) < 2:
            raise DataError(f"{name}: {len(x)} example(s) cannot be split into training and validation sets")
        order = rng.permutation(len(x))
        n_val = min(max(1, round(val_fraction * len(x))), len(x) - 1)
        x, y, x_val, y_val = x[order[n_val:]], y[order[n_val:]], x[order[:n_val]], y[order[:n_val]]
    else:
        _check_features(name, "x_val", x_val, "row {}".format)
        if x_val.shape[1] != x.shape[1]:
            raise DataError(f"{name}: x_val has {x_val.shape[1]} columns but x has {x.shape[1]}")
    x, x_val = x.astype(np.float64), x_val.astype(np.float64)
    if standardize:
        mean, std = x.mean(axis=0), x.std(axis=0)
        std[x.max(axis=0) == x.min(axis=0)] = 1.0  # a constant feature is centred, not divided by 0
        x, x_val = (x - mean) / std, (x_val - mean) / std
    if raw.task == "regression":
        y, y_val = y.astype(dtype), y_val.astype(dtype)
    arrays = [np.ascontiguousarray(a) for a in (x.astype(dtype), y, x_val.astype(dtype), y_val)]
    for a in arrays:
        a.setflags(write=False)
    return Dataset(name, *arrays, raw.task, raw.n_classes)


def _check_features(name: str, key: str, x: np.ndarray, row: Callable[[int], str],
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


def _check_lengths(name: str, x: np.ndarray, y: np.ndarray, xk: str = "x", yk: str = "y") -> None:
    if y.ndim == 0:
        raise DataError(f"{name}: {yk} must be an array with one entry per row of {xk}, got a scalar")
    if len(x) != len(y):
        raise DataError(f"{name}: {xk} has {len(x)} rows but {yk} has {len(y)}")


def _classes(name: str, n_classes: int) -> int:
    if n_classes < 2:
        raise DataError(f"{name}: classification needs at least 2 classes, found {n_classes}")
    return n_classes


# ---- built-in sources ------------------------------------------------------------------------------

def _digits(rng: np.random.Generator, seed: int, val_fraction: float) -> _Raw:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return _Raw(x, y.astype(np.int64), None, None, "classification", 10)


def _mnist1d(rng: np.random.Generator, seed: int, val_fraction: float) -> _Raw:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed % 2**32  # it seeds NumPy's legacy generator, which takes 32 bits
    args.train_split = 1.0 - val_fraction
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)  # seeds np.random and random globally
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return _Raw(data["x"], data["y"].astype(np.int64), data["x_test"], data["y_test"].astype(np.int64),
                "classification", 10)


def _synthetic_classification(rng: np.random.Generator, seed: int, val_fraction: float) -> _Raw:
    n, d, classes = 2000, 20, 4
    centres = rng.normal(scale=0.6, size=(2 * classes, d))
    y = rng.permutation(np.arange(n) % classes)
    blob = y + classes * rng.integers(0, 2, size=n)
    x = centres[blob] + rng.normal(size=(n, d))
    return _Raw(x, y.astype(np.int64), None, None, "classification", classes)


def _synthetic_regression(rng: np.random.Generator, seed: int, val_fraction: float) -> _Raw:
    n, d = 2000, 10
    x = rng.normal(size=(n, d))
    w1, w2 = rng.normal(size=(2, d)) / np.sqrt(d)
    y = np.sin(2.0 * x @ w1) + 0.5 * (x @ w2) ** 2 + 0.1 * rng.normal(size=n)
    return _Raw(x, y[:, None], None, None, "regression", None)


_BUILTIN_LOADERS = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    "synthetic_classification": _synthetic_classification,
    "synthetic_regression": _synthetic_regression,
}


# ---- user files ------------------------------------------------------------------------------------

def _is_npy(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def _load_npz(path: Path, name: str) -> _Raw:
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
    _check_features(name, "x", x, "row {}".format)
    _check_lengths(name, x, y)
    if x_val is not None:
        _check_features(name, "x_val", x_val, "row {}".format)
        _check_lengths(name, x_val, y_val, "x_val", "y_val")
    if y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind != "f":
        y = y.ravel()
        y_val = None if y_val is None else y_val.reshape(-1)
    if y.dtype.kind == "f":
        return _npz_regression(name, x, y, x_val, y_val)
    return _npz_classification(name, x, y, x_val, y_val)


def _npz_regression(name: str, x, y, x_val, y_val) -> _Raw:
    targets = []
    for key, t in (("y", y), ("y_val", y_val)):
        if t is None:
            continue
        if t.ndim not in (1, 2):
            raise DataError(f"{name}: {key} must be 1-D or 2-D, got shape {t.shape}")
        t = t.reshape(len(t), -1)
        _check_features(name, key, t, "row {}".format)
        targets.append(t)
    if y_val is not None:
        if y_val.dtype.kind != "f":
            raise DataError(f"{name}: y is a floating (regression) target but y_val has dtype {y_val.dtype}")
        if targets[1].shape[1] != targets[0].shape[1]:
            raise DataError(f"{name}: y_val has {targets[1].shape[1]} outputs but y has {targets[0].shape[1]}")
    return _Raw(x, targets[0], x_val, targets[1] if y_val is not None else None, "regression", None)


def _npz_classification(name: str, x, y, x_val, y_val) -> _Raw:
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
        return _Raw(x, labels.astype(np.int64), x_val, y_val, "classification", _classes(name, len(classes)))
    if y.dtype.kind not in "biu":
        raise DataError(f"{name}: y must hold numbers or strings, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        r = int(np.argmin(y >= 0))
        raise DataError(f"{name}: class labels must be integers in 0..C-1, y has {y[r]} at row {r}")
    n_classes = _classes(name, int(y.max()) + 1 if len(y) else 0)
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
    return _Raw(x, y, x_val, y_val, "classification", n_classes)


def _load_csv(path: Path, name: str, target: str | None) -> _Raw:
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
    _check_features(name, "x", x, row, [str(c) for c in features.columns])
    labels = frame[target]
    missing = labels.isna().to_numpy()
    if missing.any():
        count, r = int(missing.sum()), int(np.argmax(missing))
        raise DataError(f"{name}: target column {target!r} has {count} missing value(s), first at {row(r)}")
    if pd.api.types.is_float_dtype(labels):
        y = labels.to_numpy(dtype=np.float64)[:, None]
        _check_features(name, f"target column {target!r}", y, row)
        return _Raw(x, y, None, None, "regression", None, row)
    values = labels.to_numpy()
    if values.dtype.kind == "O":
        values = values.astype(str)
    classes, y = np.unique(values, return_inverse=True)
    return _Raw(x, y.astype(np.int64), None, None, "classification", _classes(name, len(classes)), row)
