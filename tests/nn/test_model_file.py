"""The trained-model file: a round trip keeps every bit, and a bad, foreign or newer file is one clear line."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import tuner
from tuner.errors import ModelFileError
from tuner.nn import MLP, load_model, read_model, save_model
from tuner.nn.model_file import FORMAT, VERSION


def _model(dtype: str = "float32", loss: str = "cross_entropy", activation: str = "tanh") -> MLP:
    return MLP([5, 7, 3], activation, loss=loss, dtype=dtype, rng=4)


@pytest.mark.parametrize(("dtype", "loss"), [("float32", "cross_entropy"), ("float64", "mse")])
def test_a_saved_model_loads_with_the_same_bits_and_predicts_the_same(tmp_path, dtype, loss):
    model = _model(dtype, loss)
    path = save_model(tmp_path / "m.npz", model, {"study": "s", "trial": 3})
    loaded = read_model(path)
    assert loaded.model.params.dtype == model.params.dtype
    assert loaded.model.params.tobytes() == model.params.tobytes()
    assert loaded.config == {"format": FORMAT, "version": VERSION, "tuner_version": tuner.__version__,
                             "layer_sizes": [5, 7, 3], "activation": "tanh", "loss": loss, "dtype": dtype,
                             "batchnorm": False}
    assert loaded.meta == {"study": "s", "trial": 3} and loaded.buffers == {}
    x = np.random.default_rng(0).normal(size=(11, 5))
    np.testing.assert_array_equal(load_model(path).predict(x), model.predict(x))


def test_a_batch_normalised_model_keeps_its_running_statistics(tmp_path):
    model = MLP([5, 7, 3], "tanh", batchnorm=True, rng=4)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 5)), rng.integers(0, 3, 16)
    for _ in range(3):  # running statistics and γ, β away from their start
        model.loss_and_grad(x, y)
        model.params -= np.float32(0.1) * model.grad
    path = save_model(tmp_path / "m.npz", model)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["buffer.batchnorm.0.running_mean", "buffer.batchnorm.0.running_var",
                                         "config", "meta", "params"]
        assert archive["params"].ndim == 1 and json.loads(str(archive["config"]))["batchnorm"] is True
    loaded = read_model(path)
    assert loaded.model.params.tobytes() == model.params.tobytes()
    for name, array in model.buffers().items():
        assert loaded.model.buffers()[name].tobytes() == array.tobytes()
        np.testing.assert_array_equal(loaded.buffers[name], array)
    np.testing.assert_array_equal(loaded.model.eval().forward(x), model.eval().forward(x))
    assert not np.array_equal(model.buffers()["batchnorm.0.running_var"], 1.0)


def test_buffers_without_batchnorm_are_refused(tmp_path):
    # Buffers belong to a batch-normalised network; a file that has them without saying so is refused.
    path = _write(tmp_path / "m.npz", config=_config(), params=PARAMS, **{"buffer.running_mean.0": np.zeros(7)})
    with pytest.raises(ModelFileError, match=r"holds buffers \(running_mean.0\) but config.batchnorm is false"):
        read_model(path)


def test_writing_into_a_missing_directory_is_one_line_and_leaves_nothing(tmp_path):
    with pytest.raises(ModelFileError) as err:
        save_model(tmp_path / "no" / "m.npz", _model())
    assert str(err.value) == f"cannot write {tmp_path / 'no' / 'm.npz'}: no directory {tmp_path / 'no'}"
    save_model(tmp_path / "m.npz", _model())
    save_model(tmp_path / "m.npz", _model("float64"))  # replaced whole, no temporary file left beside it
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    assert load_model(tmp_path / "m.npz").dtype == np.float64


def _write(path, **arrays):
    with open(path, "wb") as out:
        np.savez(out, **arrays)
    return path


def _write_npy(path, array):
    with open(path, "wb") as out:
        np.save(out, array)  # one array, not an archive, under an .npz name
    return path


def _config(**changes):
    config = {"format": FORMAT, "version": VERSION, "tuner_version": "0", "layer_sizes": [5, 7, 3],
              "activation": "tanh", "loss": "cross_entropy", "dtype": "float32", "batchnorm": False}
    return np.array(json.dumps({**config, **changes}))


PARAMS = np.zeros(5 * 7 + 7 + 7 * 3 + 3, np.float32)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "{p}: no such file"),
    (lambda p: (p.write_text("hello"), p)[1], "{p}: not a tuner model file (not a NumPy .npz archive)"),
    (lambda p: _write_npy(p, PARAMS), "{p}: not a tuner model file (not a NumPy .npz archive)"),
    (lambda p: _write(p, params=PARAMS), "{p}: not a tuner model file (no 'config' entry; entries: params)"),
    (lambda p: _write(p, config=_config(), params=np.array([{"x": 1}], dtype=object)),
     "{p}: entry 'params' holds pickled objects, which tuner never loads"),
    (lambda p: _write(p, config=np.array("{"), params=PARAMS),
     "{p}: entry 'config' is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (lambda p: _write(p, config=_config(format="keras"), params=PARAMS),
     "{p}: not a tuner model file (config.format is 'keras', expected 'tuner.model')"),
    (lambda p: _write(p, config=_config(version=VERSION + 1, tuner_version="9.0"), params=PARAMS),
     (f"{{p}}: model format {VERSION + 1} (written by tuner 9.0); this tuner ({tuner.__version__}) reads format "
      f"{VERSION}: upgrade tuner")),
    (lambda p: _write(p, config=_config(), params=PARAMS[:-1]),
     "{p}: params has shape (65,), the layer sizes 5-7-3 need (66,)"),
    (lambda p: _write(p, config=_config(), params=PARAMS.astype(np.float64)),
     "{p}: params are float64, config.dtype says 'float32'"),
    (lambda p: _write(p, config=_config(activation="swish"), params=PARAMS),
     "{p}: unknown activation 'swish'; known: relu, leaky_relu, tanh, sigmoid, linear"),
    (lambda p: _write(p, config=_config(layer_sizes=[5, -1]), params=PARAMS),
     "{p}: config.layer_sizes must be at least 2 integers >= 1, got [5, -1]"),
    (lambda p: _write(p, config=_config(batchnorm=True), params=PARAMS),
     "{p}: params has shape (66,), the layer sizes 5-7-3 with batch normalization need (80,)"),
    (lambda p: _write(p, config=_config(batchnorm="yes"), params=PARAMS),
     "{p}: config.batchnorm must be true or false, got 'yes'"),
    (lambda p: _write(p, config=_config(batchnorm=True), params=np.zeros(80, np.float32),
                      **{"buffer.batchnorm.0.running_mean": np.zeros(7, np.float32)}),
     "{p}: the state's buffers are ['batchnorm.0.running_mean'], the network's "
     "['batchnorm.0.running_mean', 'batchnorm.0.running_var']"),
])
def test_a_bad_file_is_one_line_naming_it(tmp_path, make, message):
    path = make(tmp_path / "m.npz")
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert str(err.value) == message.format(p=path)


def test_a_truncated_file_is_refused(tmp_path):
    path = save_model(tmp_path / "m.npz", _model())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="m.npz: (not a tuner model file|entry)"):
        load_model(path)
    assert not zipfile.is_zipfile(path)
