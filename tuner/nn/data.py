"""Datasets for training runs: the built-in sources and the user's `.npz` / `.csv` files.

Every source ends in the same steps: checks that name the file and the fault (raised as DataError), a
seeded train/validation split when the source has no validation set of its own, standardisation of the
features with the training split's mean and std only (so nothing about the validation set leaks into
training), and a cast to `dtype`. With `test_fraction` > 0 a test split is carved out first, before the
train/validation split and with a generator of its own, so that a search never sees it; at 0 (the default)
nothing is carved and every split is what it was without it, bit for bit.

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

import importlib.util
import numbers
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuner.errors import DataError
from tuner.nn.data_files import Raw, check_features, load_csv, load_npz

TASKS = ("classification", "regression")
# The built-in sources and their tasks: what a spec can check before any data is loaded.
BUILTIN_TASKS = {
    "digits": "classification",
    "mnist1d": "classification",
    "synthetic_classification": "classification",
    "synthetic_regression": "regression",
}
BUILTIN = tuple(BUILTIN_TASKS)


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
    x_test: np.ndarray | None = None  # the held-out test split, when one was asked for
    y_test: np.ndarray | None = None

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.is_classification else self.y_train.shape[1]

    @property
    def class_frequencies(self) -> np.ndarray | None:
        """Fraction of training examples in each class (None for regression)."""
        if not self.is_classification:
            return None
        return np.bincount(self.y_train, minlength=self.n_classes) / len(self.y_train)

    def __repr__(self) -> str:
        test = "" if self.x_test is None else f", test {self.x_test.shape}"
        return (
            f"Dataset({self.name!r}, {self.task}, train {self.x_train.shape}, val {self.x_val.shape}{test}, "
            f"n_classes={self.n_classes})"
        )


def load_dataset(
    source: str | os.PathLike,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    target: str | None = None,
    standardize: bool = True,
    base_dir: str | os.PathLike | None = None,
    dtype: np.dtype | type = np.float32,
) -> Dataset:
    """Load `source` (a built-in name or a `.npz` / `.csv` path) as a split, standardised Dataset.

    `test_fraction` of the examples (of `x`, for a source with a validation set of its own) are held out
    as `x_test`, `y_test` before `val_fraction` of the rest is split off for validation.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) or not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not 0 <= test_fraction < 1:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise DataError(f"dtype must be a floating-point type, got {dtype}")
    name = os.fspath(source)
    # The test split's generator is a third child: the first two are those of a run without one.
    split_rng, make_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    if name in BUILTIN:
        if target is not None:
            raise DataError(f"{name}: target names a CSV column, but {name} is a built-in dataset")
        raw = _BUILTIN_LOADERS[name](make_rng, seed, val_fraction)
    else:
        raw = _load_file(name, target, base_dir)
    test = _Holdout(test_rng, test_fraction)
    return _finish(name, raw, _Holdout(split_rng, val_fraction), test, standardize, dtype)


def _load_file(name: str, target: str | None, base_dir: str | os.PathLike | None) -> Raw:
    """A `.npz` or `.csv` source, its path relative to `base_dir` (the spec's folder) unless absolute."""
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
        return load_npz(resolved, name)
    return load_csv(resolved, name, target)


@dataclass(frozen=True)
class _Holdout:
    """A share of the examples to hold out, and the generator that picks them."""

    rng: np.random.Generator
    fraction: float

    def split(self, x: np.ndarray, y: np.ndarray, keep: int) -> tuple[np.ndarray, ...]:
        """(x, y kept, x, y held out): round(fraction x n) rows, at least 1, leaving at least `keep`."""
        order = self.rng.permutation(len(x))
        n_out = min(max(1, round(self.fraction * len(x))), len(x) - keep)
        return x[order[n_out:]], y[order[n_out:]], x[order[:n_out]], y[order[:n_out]]


def _finish(name: str, raw: Raw, val: _Holdout, test: _Holdout, standardize: bool, dtype: np.dtype) -> Dataset:
    x, y, x_val, y_val = raw.x, raw.y, raw.x_val, raw.y_val
    check_features(name, "x", x, raw.row)
    x_test = y_test = None
    if test.fraction > 0:
        keep = 2 if x_val is None else 1  # what the validation split then needs
        if len(x) < keep + 1:
            raise DataError(f"{name}: {len(x)} example(s) cannot hold a test split besides training and validation")
        x, y, x_test, y_test = test.split(x, y, keep)
    if x_val is None:
        if len(x) < 2:
            raise DataError(f"{name}: {len(x)} example(s) cannot be split into training and validation sets")
        x, y, x_val, y_val = val.split(x, y, 1)
    else:
        check_features(name, "x_val", x_val, "row {}".format)
        if x_val.shape[1] != x.shape[1]:
            raise DataError(f"{name}: x_val has {x_val.shape[1]} columns but x has {x.shape[1]}")
    x, x_val = x.astype(np.float64), x_val.astype(np.float64)
    if standardize:
        mean, std = x.mean(axis=0), x.std(axis=0)
        std[x.max(axis=0) == x.min(axis=0)] = 1.0  # a constant feature is centred, not divided by 0
        x, x_val = (x - mean) / std, (x_val - mean) / std
        x_test = None if x_test is None else (x_test.astype(np.float64) - mean) / std
    if raw.task == "regression":
        y, y_val = y.astype(dtype), y_val.astype(dtype)
        y_test = None if y_test is None else y_test.astype(dtype)
    arrays = [_frozen(a) for a in (x.astype(dtype), y, x_val.astype(dtype), y_val)]
    tests = (None, None) if x_test is None else (_frozen(x_test.astype(dtype)), _frozen(y_test))
    return Dataset(name, *arrays, raw.task, raw.n_classes, *tests)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# ---- built-in sources ------------------------------------------------------------------------------

def _digits(rng: np.random.Generator, seed: int, val_fraction: float) -> Raw:
    x, y = digits_arrays()
    return Raw(x, y, None, None, "classification", 10)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (1,797 x 64 float64, labels int64), read from the file the package ships.

    Importing `sklearn.datasets` takes 1.5 s (SciPy and the rest of scikit-learn) in every worker process;
    reading its file takes milliseconds. The values are `load_digits(return_X_y=True)`'s exactly (a test
    compares them); if a scikit-learn release moves the file, its loader is used.
    """
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = next((p for p in (Path(f, "datasets", "data", "digits.csv.gz") for f in folders) if p.is_file()), None)
    if path is None:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x, y.astype(np.int64)
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def _mnist1d(rng: np.random.Generator, seed: int, val_fraction: float) -> Raw:
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
    return Raw(data["x"], data["y"].astype(np.int64), data["x_test"], data["y_test"].astype(np.int64),
                "classification", 10)


def _synthetic_classification(rng: np.random.Generator, seed: int, val_fraction: float) -> Raw:
    n, d, classes = 2000, 20, 4
    centres = rng.normal(scale=0.6, size=(2 * classes, d))
    y = rng.permutation(np.arange(n) % classes)
    blob = y + classes * rng.integers(0, 2, size=n)
    x = centres[blob] + rng.normal(size=(n, d))
    return Raw(x, y.astype(np.int64), None, None, "classification", classes)


def _synthetic_regression(rng: np.random.Generator, seed: int, val_fraction: float) -> Raw:
    n, d = 2000, 10
    x = rng.normal(size=(n, d))
    w1, w2 = rng.normal(size=(2, d)) / np.sqrt(d)
    y = np.sin(2.0 * x @ w1) + 0.5 * (x @ w2) ** 2 + 0.1 * rng.normal(size=n)
    return Raw(x, y[:, None], None, None, "regression", None)


_BUILTIN_LOADERS = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    "synthetic_classification": _synthetic_classification,
    "synthetic_regression": _synthetic_regression,
}
