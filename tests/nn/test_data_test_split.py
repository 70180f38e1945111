"""The optional test split: carved out before the train/validation split, and absent by default, when every
split is what it was before the test split existed, bit for bit."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tuner.errors import DataError
from tuner.nn.data import load_dataset


def _digest(*arrays: np.ndarray) -> str:
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()[:20]


@pytest.mark.parametrize(("source", "digest"), [
    # The labels of each split as the code before the test split made them (seed 7, val_fraction 0.25):
    # the same rows in the same order, so every existing study keeps its split.
    ("digits", "e0f9e0aba8ff54afee98"),
    ("synthetic_classification", "5d50a5787390628728fa"),
])
def test_without_a_test_split_the_split_is_the_one_studies_already_have(source, digest):
    data = load_dataset(source, seed=7, val_fraction=0.25)
    assert _digest(data.y_train, data.y_val) == digest
    assert data.x_test is None and data.y_test is None
    same = load_dataset(source, seed=7, val_fraction=0.25, test_fraction=0.0)
    for a, b in ((data.x_train, same.x_train), (data.x_val, same.x_val), (data.y_train, same.y_train)):
        assert a.tobytes() == b.tobytes()


def _rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x}


def test_the_test_split_is_held_out_before_validation_and_is_seeded(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.normal(size=(200, 4)), y=np.arange(200) % 3)
    data = load_dataset(path, seed=5, val_fraction=0.25, test_fraction=0.1, standardize=False, dtype=np.float64)
    assert (len(data.x_test), len(data.x_val), len(data.x_train)) == (20, 45, 135)
    assert not _rows(data.x_test) & (_rows(data.x_train) | _rows(data.x_val))
    assert data.y_test.dtype == np.int64 and not data.x_test.flags.writeable
    again = load_dataset(path, seed=5, val_fraction=0.25, test_fraction=0.1, standardize=False, dtype=np.float64)
    assert again.x_test.tobytes() == data.x_test.tobytes() and again.x_val.tobytes() == data.x_val.tobytes()
    other = load_dataset(path, seed=6, val_fraction=0.25, test_fraction=0.1, standardize=False, dtype=np.float64)
    assert other.x_test.tobytes() != data.x_test.tobytes()


def test_the_test_split_is_standardised_with_the_training_statistics(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "d.npz"
    x = rng.normal(size=(100, 3)) * 4 + 7
    np.savez(path, x=x, y=np.arange(100) % 2)
    raw = load_dataset(path, seed=2, test_fraction=0.2, standardize=False, dtype=np.float64)
    data = load_dataset(path, seed=2, test_fraction=0.2, dtype=np.float64)
    mean, std = raw.x_train.mean(axis=0), raw.x_train.std(axis=0)
    np.testing.assert_allclose(data.x_test, (raw.x_test - mean) / std)


def test_a_source_with_its_own_validation_set_gives_the_test_rows_from_x(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.normal(size=(50, 2)), y=np.arange(50) % 2, x_val=rng.normal(size=(10, 2)),
             y_val=np.arange(10) % 2)
    data = load_dataset(path, test_fraction=0.2, standardize=False, dtype=np.float64)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (40, 10, 10)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, True, "0.1"])
def test_test_fraction_out_of_range(fraction):
    with pytest.raises(DataError, match=r"^test_fraction must be in \[0, 1\), got "):
        load_dataset("digits", test_fraction=fraction)


def test_too_few_examples_for_three_splits(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([[0.0], [1.0]]), y=np.array([0, 1]))
    with pytest.raises(DataError, match="2 example\\(s\\) cannot hold a test split besides training and validation"):
        load_dataset(path, test_fraction=0.5)
