"""The trained-model file: a network's weights and what is needed to rebuild it, in one NumPy `.npz`.

Entries (every one a plain array; the file is read with `np.load(..., allow_pickle=False)`, so nothing in
it is ever unpickled):

    config          0-d string: JSON {"format": "tuner.model", "version": 1, "tuner_version",
                    "layer_sizes", "activation", "loss", "dtype", "batchnorm"}: how to rebuild the network
    params          1-D array of the model's dtype: `model.params`, the flat parameter vector (W_0, b_0,
                    [γ_0, β_0,] W_1, b_1, ... as `tuner.nn.mlp` lays it out)
    buffer.<name>   each of `model.buffers()`, the arrays that are not trained parameters (batch
                    normalisation's `batchnorm.<l>.running_mean` and `.running_var`); none without them
    meta            0-d string: JSON chosen by the caller (`tuner train` puts the study, the trial, its
                    parameters, seed and spec, and the test metrics there)

`version` is the format's: a reader refuses a newer one, by name. `save_model` writes the file beside its
target under a temporary name and renames it over the target once complete, so a kill or a full disk never
leaves half a model. Every fault on reading is one `ModelFileError` line naming the file and the entry.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tuner
from tuner.errors import HyperparameterError, ModelError, ModelFileError
from tuner.nn.mlp import MLP

FORMAT = "tuner.model"
VERSION = 1
BUFFER_PREFIX = "buffer."
_CONFIG_KEYS = ("layer_sizes", "activation", "loss", "dtype")


@dataclass(frozen=True)
class SavedModel:
    """A model file read back: the rebuilt network, its config, its buffers and the caller's meta."""

    model: MLP
    config: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    buffers: dict[str, np.ndarray] = field(default_factory=dict)


def model_config(model: MLP) -> dict[str, Any]:
    """The `config` entry of `model`: what rebuilds it (`model.config`), and the format and tuner version
    that wrote it."""
    return {"format": FORMAT, "version": VERSION, "tuner_version": tuner.__version__, **model.config}


def save_model(path: str | os.PathLike, model: MLP, meta: Mapping[str, Any] | None = None) -> Path:
    """Write `model` (its config, flat params, its buffers and the JSON `meta`) to `path`, atomically."""
    path = Path(path)
    try:
        meta_text = json.dumps(dict(meta or {}), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: meta must be JSON (finite numbers, strings, lists, tables): {err}") from None
    arrays = {"config": np.array(json.dumps(model_config(model))), "params": model.params, "meta": np.array(meta_text)}
    arrays.update({BUFFER_PREFIX + name: value for name, value in model.buffers().items()})
    _write_whole(path, arrays)
    return path


def _write_whole(path: Path, arrays: dict[str, np.ndarray]) -> None:
    if not path.parent.is_dir():
        raise ModelFileError(f"cannot write {path}: no directory {path.parent}")
    if path.is_dir():
        raise ModelFileError(f"cannot write {path}: it is a directory")
    part = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(part, "wb") as out:
            np.savez(out, **arrays)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, path)
    except OSError as err:
        raise ModelFileError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        part.unlink(missing_ok=True)


def load_model(path: str | os.PathLike) -> MLP:
    """The network saved in `path` by `save_model`, ready for `predict` and `evaluate`."""
    return read_model(path).model


def read_model(path: str | os.PathLike) -> SavedModel:
    """Everything a model file holds; a missing, foreign, damaged or newer file is one ModelFileError."""
    path = Path(path)
    entries = _entries(path)
    config = _json_entry(path, entries, "config")
    _check_format(path, config)
    meta = _json_entry(path, entries, "meta") if "meta" in entries else {}
    buffers = {k[len(BUFFER_PREFIX):]: v for k, v in entries.items() if k.startswith(BUFFER_PREFIX)}
    if buffers and not config.get("batchnorm"):
        raise ModelFileError(f"{path}: holds buffers ({', '.join(sorted(buffers))}) but config.batchnorm is false")
    return SavedModel(_rebuild(path, config, entries.get("params"), buffers), config, meta, buffers)


def _entries(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, read without unpickling anything."""
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    foreign = ModelFileError(f"{path}: not a tuner model file (not a NumPy .npz archive)")
    try:
        archive = np.load(path, allow_pickle=False)
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read: {err.strerror or err}") from None
    except (ValueError, EOFError, zipfile.BadZipFile):
        raise foreign from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise foreign
    with archive:
        entries = {}
        for name in archive.files:
            try:
                entries[name] = archive[name]
            except ValueError:
                raise ModelFileError(f"{path}: entry {name!r} holds pickled objects, which tuner never loads") from None
            except (OSError, EOFError, zipfile.BadZipFile) as err:
                raise ModelFileError(f"{path}: entry {name!r} is damaged: {err}") from None
    if "config" not in entries:
        raise ModelFileError(f"{path}: not a tuner model file (no 'config' entry; entries: {', '.join(entries) or 'none'})")
    return entries


def _json_entry(path: Path, entries: dict[str, np.ndarray], name: str) -> dict[str, Any]:
    value = entries[name]
    if value.ndim != 0 or value.dtype.kind != "U":
        raise ModelFileError(f"{path}: entry {name!r} must be JSON text, got an array of {value.dtype} {value.shape}")
    try:
        document = json.loads(str(value))
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: entry {name!r} is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise ModelFileError(f"{path}: entry {name!r} must be a JSON object, got {type(document).__name__}")
    return document


def _check_format(path: Path, config: dict[str, Any]) -> None:
    if config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a tuner model file (config.format is {config.get('format')!r}, "
                             f"expected {FORMAT!r})")
    version = config.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: config.version must be an integer >= 1, got {version!r}")
    if version > VERSION:
        raise ModelFileError(f"{path}: model format {version} (written by tuner {config.get('tuner_version')}); "
                             f"this tuner ({tuner.__version__}) reads format {VERSION}: upgrade tuner")
    for key in _CONFIG_KEYS:
        if key not in config:
            raise ModelFileError(f"{path}: config.{key} missing")


def _rebuild(path: Path, config: dict[str, Any], params: np.ndarray | None, buffers: dict[str, np.ndarray]) -> MLP:
    """The network of `config` with `params` and `buffers` loaded, each checked before anything is allocated."""
    sizes, batchnorm = config["layer_sizes"], config.get("batchnorm", False)
    if not isinstance(sizes, list) or len(sizes) < 2 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise ModelFileError(f"{path}: config.layer_sizes must be at least 2 integers >= 1, got {sizes!r}")
    if not isinstance(batchnorm, bool):
        raise ModelFileError(f"{path}: config.batchnorm must be true or false, got {batchnorm!r}")
    if params is None:
        raise ModelFileError(f"{path}: no 'params' entry")
    expected = sum(m * n + n for m, n in itertools.pairwise(sizes)) + (2 * sum(sizes[1:-1]) if batchnorm else 0)
    if params.ndim != 1 or params.size != expected:
        shape = "-".join(map(str, sizes)) + (" with batch normalization" if batchnorm else "")
        raise ModelFileError(f"{path}: params has shape {params.shape}, the layer sizes {shape} need ({expected},)")
    if params.dtype.name != config["dtype"]:
        raise ModelFileError(f"{path}: params are {params.dtype}, config.dtype says {config['dtype']!r}")
    try:
        model = MLP(sizes, config["activation"], loss=config["loss"], batchnorm=batchnorm, init="zeros",
                    dtype=config["dtype"], rng=0)
        model.load_state({"params": params, "buffers": buffers})
    except (ModelError, HyperparameterError) as err:
        raise ModelFileError(f"{path}: {err}") from None
    return model
