"""Loading datasets: every source's shapes and classes, train-only standardisation, seeded splits, and a
clear DataError for every kind of bad input (written as real files in tmp_path)."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from tuner.errors import DataError
from tuner.nn.data import BUILTIN, Dataset, load_dataset


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def good_arrays(n=50, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, d)) * 5 + 2, "y": np.arange(n) % 3}


# ---- the sources -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("source", "n", "features", "task", "outputs"),
    [
        ("digits", 1797, 64, "classification", 10),
        ("synthetic_classification", 2000, 20, "classification", 4),
        ("synthetic_regression", 2000, 10, "regression", 1),
    ],
)
def test_builtin_sources(source, n, features, task, outputs):
    data = load_dataset(source, seed=3)
    assert isinstance(data, Dataset) and data.name == source and data.task == task
    assert len(data.x_train) + len(data.x_val) == n
    assert len(data.x_val) == round(0.2 * n)
    assert data.n_features == features and data.n_outputs == outputs
    assert data.x_train.dtype == np.float32 and data.x_val.dtype == np.float32
    if task == "classification":
        assert data.n_classes == outputs and data.y_train.dtype == np.int64
        assert set(np.unique(data.y_train)) == set(range(outputs))
        assert data.class_frequencies.sum() == pytest.approx(1.0)
    else:
        assert data.n_classes is None and data.class_frequencies is None
        assert data.y_train.shape == (len(data.x_train), 1) and data.y_train.dtype == np.float32


@pytest.mark.slow
def test_mnist1d_uses_its_own_split_and_leaves_global_random_state_alone():
    np.random.seed(1234)
    random.seed(99)
    numpy_before, python_before = np.random.get_state(), random.getstate()
    data = load_dataset("mnist1d", seed=5)
    numpy_after = np.random.get_state()
    assert numpy_after[0] == numpy_before[0] and numpy_after[2:] == numpy_before[2:]
    np.testing.assert_array_equal(numpy_after[1], numpy_before[1])
    assert random.getstate() == python_before
    assert data.x_train.shape == (4000, 40) and data.x_val.shape == (1000, 40)
    assert data.n_classes == 10 and set(np.unique(data.y_val)) == set(range(10))
    again = load_dataset("mnist1d", seed=5)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    other = load_dataset("mnist1d", seed=6, val_fraction=0.1)
    assert other.x_val.shape == (500, 40)
    assert not np.array_equal(other.x_train[:10], data.x_train[:10])


def test_dtype_option():
    data = load_dataset("synthetic_regression", dtype=np.float64)
    assert data.x_train.dtype == np.float64 and data.y_train.dtype == np.float64


def test_arrays_are_read_only():
    data = load_dataset("synthetic_classification")
    with pytest.raises(ValueError):
        data.x_train[0, 0] = 1.0


# ---- split and standardisation ---------------------------------------------------------------------

def test_split_is_seeded():
    a, b, c = (load_dataset("digits", seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.y_val, c.y_val)


def test_split_partitions_the_examples(tmp_path):
    x = np.arange(40, dtype=float).reshape(20, 2)
    data = load_dataset(save_npz(tmp_path / "d.npz", x=x, y=np.arange(20) % 2), standardize=False,
                        val_fraction=0.25)
    rows = np.concatenate([data.x_train[:, 0], data.x_val[:, 0]])
    assert sorted(rows) == list(x[:, 0]) and len(data.x_val) == 5


def test_standardisation_uses_training_statistics_only(tmp_path):
    rng = np.random.default_rng(0)
    x, x_val = rng.normal(3, 2, size=(200, 2)), rng.normal(10, 7, size=(50, 2))
    x[:, 1] = 4.0  # a constant feature: centred, not divided by zero
    path = save_npz(tmp_path / "d.npz", x=x, y=np.arange(200) % 2, x_val=x_val, y_val=np.arange(50) % 2)
    data = load_dataset(path, dtype=np.float64)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.x_train[:, 0].std(), 1.0)
    np.testing.assert_allclose(data.x_val[:, 0], (x_val[:, 0] - x[:, 0].mean()) / x[:, 0].std())
    np.testing.assert_allclose(data.x_val[:, 1], x_val[:, 1] - 4.0)
    assert np.all(np.isfinite(data.x_train))


def test_standardize_false_keeps_values(tmp_path):
    arrays = good_arrays()
    path = save_npz(tmp_path / "d.npz", **arrays, x_val=arrays["x"][:5], y_val=arrays["y"][:5])
    data = load_dataset(path, standardize=False, dtype=np.float64)
    np.testing.assert_array_equal(data.x_train, arrays["x"])


# ---- user files ------------------------------------------------------------------------------------

def test_npz_with_validation_set_and_base_dir(tmp_path):
    arrays = good_arrays()
    save_npz(tmp_path / "d.npz", **arrays, x_val=arrays["x"][:7], y_val=arrays["y"][:7])
    data = load_dataset("d.npz", base_dir=tmp_path)
    assert data.x_train.shape == (50, 3) and data.x_val.shape == (7, 3)
    assert data.task == "classification" and data.n_classes == 3


def test_npz_float_y_is_regression(tmp_path):
    rng = np.random.default_rng(0)
    path = save_npz(tmp_path / "r.npz", x=rng.normal(size=(30, 4)), y=rng.normal(size=(30, 2)))
    data = load_dataset(path)
    assert data.task == "regression" and data.n_outputs == 2 and data.y_train.shape == (24, 2)


def test_npz_string_labels_map_to_sorted_classes(tmp_path):
    x = np.arange(12, dtype=float).reshape(6, 2)
    y = np.array(["cat", "dog", "ant", "dog", "cat", "ant"])
    path = save_npz(tmp_path / "s.npz", x=x, y=y, x_val=x[:2], y_val=np.array(["dog", "ant"]))
    data = load_dataset(path)
    np.testing.assert_array_equal(data.y_train, [1, 2, 0, 2, 1, 0])
    np.testing.assert_array_equal(data.y_val, [2, 0])


def test_csv_classification_and_regression(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label,price\n" + "".join(
        f"{i},{i % 3 * 0.5},{['x', 'y', 'z'][i % 3]},{i * 1.5}\n" for i in range(20)))
    data = load_dataset(path, target="label")
    assert data.task == "classification" and data.n_classes == 3 and data.n_features == 3
    numeric = tmp_path / "n.csv"
    numeric.write_text("a,b,price\n" + "".join(f"{i},{i % 3 * 0.5},{i * 1.5}\n" for i in range(20)))
    reg = load_dataset(numeric.name, target="price", base_dir=tmp_path)
    assert reg.task == "regression" and reg.n_features == 2 and reg.y_train.shape == (16, 1)


def test_csv_integer_target_is_mapped_to_0_to_c_minus_1(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("f,y\n" + "".join(f"{i},{[3, 7, 9][i % 3]}\n" for i in range(12)))
    data = load_dataset(path, target="y", val_fraction=0.25)
    assert data.n_classes == 3
    assert set(np.concatenate([data.y_train, data.y_val])) == {0, 1, 2}


# ---- bad input -------------------------------------------------------------------------------------

def bad(path, message, **kwargs):
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)
    assert re.search(message, str(info.value)), str(info.value)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_file(tmp_path):
    text = bad("nowhere.npz", r"^nowhere\.npz: no such file \(looked for .*nowhere\.npz\)", base_dir=tmp_path)
    assert str(tmp_path) in text


def test_truncated_npz(tmp_path):
    real = save_npz(tmp_path / "real.npz", **good_arrays())
    cut = tmp_path / "cut.npz"
    cut.write_bytes(real.read_bytes()[:300])
    bad(cut, r"cut\.npz: not a readable \.npz file \(truncated or corrupt")


def test_corrupt_npz_member(tmp_path):
    real = save_npz(tmp_path / "real.npz", **good_arrays())
    raw = bytearray(real.read_bytes())
    raw[100:140] = b"\xff" * 40  # inside the first member's data: the zip's CRC check fails on read
    broken = tmp_path / "broken.npz"
    broken.write_bytes(bytes(raw))
    bad(broken, r"broken\.npz: not a readable \.npz file")


def test_not_a_zip_at_all(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello")
    bad(path, r"text\.npz: ")


def test_npz_missing_y(tmp_path):
    bad(save_npz(tmp_path / "d.npz", x=np.zeros((3, 2)), z=np.zeros(3)), r"d\.npz: missing array 'y' \(found: x, z\)")


def test_npz_x_val_without_y_val(tmp_path):
    arrays = good_arrays()
    bad(save_npz(tmp_path / "d.npz", **arrays, x_val=arrays["x"]), r"d\.npz: has x_val but not y_val")


def test_npz_of_pickled_objects(tmp_path):
    path = tmp_path / "o.npz"
    np.savez(path, x=np.zeros((3, 2)), y=np.array([1, "a", None], dtype=object))
    bad(path, r"o\.npz: holds pickled Python objects")


def test_x_not_2d(tmp_path):
    bad(save_npz(tmp_path / "d.npz", x=np.zeros(5), y=np.zeros(5, int)), r"d\.npz: x must be 2-D .*got shape \(5,\)")


def test_lengths_differ(tmp_path):
    bad(save_npz(tmp_path / "d.npz", x=np.zeros((5, 2)), y=np.zeros(4, int)), r"d\.npz: x has 5 rows but y has 4")


def test_negative_label(tmp_path):
    y = np.array([0, 1, -1, 1, 0])
    path = save_npz(tmp_path / "d.npz", x=np.zeros((5, 2)), y=y)
    bad(path, r"d\.npz: class labels must be integers in 0\.\.C-1, y has -1 at row 2")


def test_validation_label_out_of_range(tmp_path):
    arrays = good_arrays()
    path = save_npz(tmp_path / "d.npz", **arrays, x_val=arrays["x"][:3], y_val=np.array([0, 5, 1]))
    bad(path, r"d\.npz: y_val has label 5 at row 1, outside the classes 0\.\.2 of y")


def test_non_integer_validation_label(tmp_path):
    arrays = good_arrays()
    path = save_npz(tmp_path / "d.npz", **arrays, x_val=arrays["x"][:3], y_val=np.array([0.0, 1.5, 1.0]))
    bad(path, r"d\.npz: y holds integer class labels but y_val has 1\.5 at row 1")


def test_single_class(tmp_path):
    bad(save_npz(tmp_path / "d.npz", x=np.zeros((5, 2)), y=np.zeros(5, int)), r"at least 2 classes, found 1")


def test_nan_and_inf_features(tmp_path):
    x = np.ones((10, 3))
    x[4, 2] = np.nan
    x[7, 0] = np.inf
    bad(save_npz(tmp_path / "d.npz", x=x, y=np.arange(10) % 2),
        r"d\.npz: x has 2 NaN or infinite value\(s\), first at row 4, column 2")


def test_empty_dataset(tmp_path):
    bad(save_npz(tmp_path / "d.npz", x=np.zeros((0, 3)), y=np.zeros(0, int)), r"d\.npz: the dataset is empty")
    empty_csv = tmp_path / "e.csv"
    empty_csv.write_text("a,b,y\n")
    bad(empty_csv, r"e\.csv: the dataset is empty", target="y")
    blank_csv = tmp_path / "b.csv"
    blank_csv.write_text("")
    bad(blank_csv, r"b\.csv: the file is empty", target="y")


def test_csv_without_the_target_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n")
    bad(path, r"t\.csv: no target column 'class' \(columns: a, b, label\)", target="class")
    bad(path, r"t\.csv: name the label column with target \(columns: a, b, label\)")


def test_csv_nan_feature_names_row_line_and_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,x\n3,,y\n5,6,x\n")
    bad(path, r"t\.csv: x has 1 NaN or infinite value\(s\), first at row 1 \(line 3\), column 'b'", target="label")


def test_csv_non_numeric_feature(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,colour,label\n1,2,x\n3,red,y\n")
    bad(path, r"t\.csv: feature column 'colour' is not numeric \('red' at row 1 \(line 3\)\)", target="label")


def test_csv_missing_target_value(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label\n1,x\n3,\n4,y\n")
    bad(path, r"t\.csv: target column 'label' has 1 missing value\(s\), first at row 1 \(line 3\)", target="label")


def test_unknown_source_lists_known_ones():
    text = bad("digitz", r"^unknown data source 'digitz'; known: ")
    assert all(name in text for name in BUILTIN)
    bad("data.txt", r"data\.txt: unsupported file type '\.txt'")


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2, "0.2"])
def test_val_fraction_out_of_range(fraction):
    bad("digits", rf"^val_fraction must be in \(0, 1\), got {re.escape(repr(fraction))}$", val_fraction=fraction)


@pytest.mark.parametrize("seed", [-1, 1.5, None])
def test_bad_seed(seed):
    bad("digits", rf"^seed must be a non-negative integer, got {seed}$", seed=seed)


def test_file_suffix_is_case_insensitive(tmp_path):
    save_npz(tmp_path / "lower.npz", **good_arrays()).rename(tmp_path / "UPPER.NPZ")
    assert load_dataset(tmp_path / "UPPER.NPZ").n_classes == 3


def test_target_with_a_builtin_source():
    bad("digits", r"digits: target names a CSV column", target="label")


def test_digits_read_from_scikit_learns_file_are_its_loader_exactly():
    from sklearn.datasets import load_digits

    from tuner.nn.data import digits_arrays

    x, y = digits_arrays()
    expected_x, expected_y = load_digits(return_X_y=True)
    assert x.dtype == expected_x.dtype and y.dtype == np.int64
    assert np.array_equal(x, expected_x) and np.array_equal(y, expected_y)


def test_loading_the_digits_does_not_import_scikit_learn():
    import subprocess
    import sys

    code = "import sys; from tuner.nn.data import digits_arrays; digits_arrays(); print('sklearn' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "False"
