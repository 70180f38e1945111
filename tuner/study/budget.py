"""How much memory training a spec's network takes, and whether this machine has that much.

    shape = study_data_shape(spec)               # rows, features, outputs (built-in sources: no loading)
    need = training_memory(spec, shape)          # bytes one trial holds at its peak, an upper bound
    check_training_memory(spec)                  # SpecError naming the estimate and the limit, if too much

What one trial holds, read from `tuner.nn.mlp`, `tuner.nn.train` and `tuner.optim` (`P` is the number of
parameters, sum over dense layers of fan_in * fan_out + fan_out; sizes in the spec's dtype):

- parameters and their gradient, 2 P; the optimizer's state, `OPTIMIZER_COPIES[name]` P (Adam: s, r and
  a step; RMSProp+Nesterov: r, a step, v, the look-ahead copy of θ and α·v), the largest of the spec's;
- the network's per-batch buffers (`layers.Workspaces`), cached for up to four batch sizes: the training
  batch, the epoch's last partial batch, the validation set's evaluation chunk (`EVAL_CHUNK` rows, or
  fewer) and its last partial chunk. Per row: the input's cast copy; per dense layer its output, its
  dL/dx (not the first layer's) and a one; per non-linear hidden layer its output and scratch; per batch
  normalization its output, x̂, scratch and a one; dL/doutput and an int64 row index (four per-unit
  rows of each batch normalization, per batch size, too);
- the data (x in the dtype, y as int64 labels or float targets) with the two float64 working copies of
  x made while it is read and standardised (freed before training, but a peak all the same), the
  gathered minibatch, the epoch's permutation (int64), and, while the network is initialised, its
  largest weight matrix drawn in float64 (`INIT_TEMPORARIES` copies at once for orthogonal and sparse).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from tuner.errors import SpecError
from tuner.nn.data import BUILTIN, Dataset
from tuner.nn.mlp import EVAL_CHUNK
from tuner.study.data import load_study_data
from tuner.study.params import Choice, Fixed
from tuner.study.spec import StudySpec

# Arrays the size of the parameters that each optimizer allocates in `start`, at most: its state arrays,
# plus one for its scratch (one chunk of its fused update, at most the whole array on a small net); the
# Nesterov variants' compiled loops (`tuner[fast]`) need one fewer (no α·v). tests/study/test_budget.py
# measures them, so that this table follows the optimizers.
OPTIMIZER_COPIES = {"sgd": 1, "momentum": 2, "nesterov": 4, "adagrad": 2, "rmsprop": 2, "rmsprop_nesterov": 5,
                    "adam": 3}
# Float64 copies of the largest weight matrix alive at once while a scheme draws it, measured on a
# 4096 x 4096 layer (peak RSS): QR's factors and workspace for orthogonal, argsort's keys for sparse.
INIT_TEMPORARIES = {"orthogonal": 5, "sparse": 2}
_INDEX_BYTES = 8  # int64 labels, row indices and permutations
_FLOAT64 = 8


@dataclass(frozen=True)
class DataShape:
    """What the estimate needs of a dataset: its training and validation rows, features and outputs."""

    train_rows: int
    val_rows: int
    features: int
    outputs: int
    classification: bool = True

    @classmethod
    def of(cls, data: Dataset) -> DataShape:
        return cls(len(data.x_train), len(data.x_val), data.n_features, data.n_outputs, data.is_classification)


# The built-in sources' rows, features, outputs and task, so that a spec on one is checked without
# generating it; split as `tuner.nn.data` splits them (tests compare with the loaded data).
BUILTIN_SIZES = {
    "digits": (1797, 64, 10, True),
    "mnist1d": (5000, 40, 10, True),
    "synthetic_classification": (2000, 20, 4, True),
    "synthetic_regression": (2000, 10, 1, False),
}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one trial holds, by what holds them, and its peak (`total`).

    The phases do not overlap: the data is read (its float64 working copies, `loading`) before the
    network exists, and the network is initialised (`init`) before the optimizer allocates its state.
    """

    n_params: int
    parameters: int  # the parameters and their gradient
    optimizer: int  # the optimizer's state
    buffers: int  # the network's per-batch buffers and the gathered minibatch
    data: int  # the dataset and the epoch's permutation, held throughout
    loading: int
    init: int

    @property
    def total(self) -> int:
        training = self.parameters + max(self.init, self.optimizer + self.buffers)
        return self.data + max(self.loading, training)


def study_data_shape(spec: StudySpec) -> DataShape:
    """The shape of the spec's data: from `BUILTIN_SHAPES` for a built-in source, else read from the file."""
    if spec.data.source in BUILTIN:
        rows, features, outputs, classification = BUILTIN_SIZES[spec.data.source]
        val_rows = min(max(1, round(spec.data.val_fraction * rows)), rows - 1)
        return DataShape(rows - val_rows, val_rows, features, outputs, classification)
    return DataShape.of(load_study_data(spec))


def training_memory(spec: StudySpec, shape: DataShape) -> MemoryEstimate:
    """An upper bound of the bytes one trial of `spec` holds on data of `shape` (the list in the module doc)."""
    item = np.dtype(spec.train.dtype).itemsize
    sizes = [shape.features, *spec.model.hidden, shape.outputs]
    layers = list(pairwise(sizes))
    n_params = sum(m * n + n for m, n in layers)
    copies = max(OPTIMIZER_COPIES[name] for name in spec.search.optimizers)

    batch = min(spec.train.batch_size, shape.train_rows)
    chunk = min(EVAL_CHUNK, shape.val_rows)
    cached_rows = batch + shape.train_rows % batch + chunk + shape.val_rows % chunk * (shape.val_rows > chunk)
    hidden, n_layers = sum(spec.model.hidden), len(layers)
    nonlinear = 0 if spec.model.activation == "linear" else 2 * hidden
    norms = 3 * hidden + n_layers - 1 if spec.model.batchnorm else 0
    dense = sizes[-1] + 2 * hidden + n_layers  # outputs, dL/dx of all but the first layer, ones
    per_row = item * (shape.features + dense + shape.outputs + nonlinear + norms) + _INDEX_BYTES
    per_unit = 4 * 4 * hidden * item if spec.model.batchnorm else 0
    label = _INDEX_BYTES if shape.classification else shape.outputs * item
    rows = shape.train_rows + shape.val_rows
    return MemoryEstimate(
        n_params=n_params,
        parameters=2 * n_params * item,
        optimizer=copies * n_params * item,
        buffers=cached_rows * per_row + batch * (shape.features * item + label) + per_unit,
        data=rows * (shape.features * item + label) + shape.train_rows * _INDEX_BYTES,
        loading=rows * shape.features * 2 * _FLOAT64,
        init=max(INIT_TEMPORARIES.get(s, 1) for s in _values(spec.search.init)) * max(m * n for m, n in layers)
        * _FLOAT64,
    )


def _values(param: Fixed | Choice) -> tuple:
    return param.values if isinstance(param, Choice) else (param.value,)


def available_memory() -> int | None:
    """Bytes this process may still take: MemAvailable of /proc/meminfo (os.sysconf's available pages
    elsewhere), lowered to what the cgroup v2 memory limit at /sys/fs/cgroup leaves (a container's);
    None when the system does not say."""
    available = _meminfo_available()
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return None
    cgroup = _cgroup_room()
    return available if cgroup is None else min(available, cgroup)


def check_training_memory(spec: StudySpec, shape: DataShape | None = None) -> None:
    """Refuse a spec whose training cannot fit in the memory this machine has free (SpecError, exit 2).

    `shape` defaults to `study_data_shape(spec)`, which reads a data file; a caller holding the data
    passes `DataShape.of(data)`. Nothing is refused when the system does not say what memory is free.
    """
    limit = available_memory()
    need = training_memory(spec, shape or study_data_shape(spec))
    if limit is not None and need.total > limit:
        raise SpecError(
            f"{spec.label}: training this network ({need.n_params:,} parameters) needs about "
            f"{format_bytes(need.total)} of memory at its peak, more than the {format_bytes(limit)} available "
            "on this machine; use fewer or narrower hidden layers or a smaller train.batch_size"
        )


def format_bytes(n: float) -> str:
    """A size in binary units, one decimal: 512 B, 1.5 KiB, 12.3 GiB, 4096.0 PiB."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} PiB"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """What the cgroup v2 memory limit leaves (memory.max - memory.current), or None without a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text()))
    except (OSError, ValueError):
        return None
