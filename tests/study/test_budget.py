"""The memory estimate of a spec's training: worked by hand, held to what the code allocates, and the refusal."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

from tuner.errors import SpecError
from tuner.nn.data import BUILTIN, load_dataset
from tuner.nn.mlp import MLP
from tuner.optim import OPTIMIZERS, make
from tuner.optim._fused import kernels as fused_kernels
from tuner.study.budget import (
    OPTIMIZER_COPIES,
    DataShape,
    available_memory,
    check_training_memory,
    format_bytes,
    study_data_shape,
    training_memory,
)
from tuner.study.spec import parse_spec

SMALL = """
[data]
source = "synthetic_classification"
[model]
hidden = [3]
[train]
batch_size = 2
dtype = "float64"
[search]
optimizer = "sgd"
"""


def test_a_small_network_worked_by_hand():
    shape = DataShape(train_rows=5, val_rows=3, features=4, outputs=2)
    need = training_memory(parse_spec(SMALL), shape)
    # layers 4x3 and 3x2: 12 + 3 + 6 + 2 = 23 parameters of 8 bytes
    assert (need.n_params, need.parameters, need.optimizer) == (23, 2 * 23 * 8, 23 * 8)
    # cached batches of 2, 1 (5 % 2), 3 (the validation chunk) rows; per row 8 * (4 inputs + 5 dense
    # outputs + 3 for the second layer's dL/dx + 2 ones + 2 for dL/doutput + 2 * 3 for the relu's output and
    # scratch) + an 8-byte row index; the gathered minibatch: 2 rows of 4 floats and a label
    assert need.buffers == 6 * (8 * 22 + 8) + 2 * (4 * 8 + 8)
    assert need.data == 8 * (4 * 8 + 8) + 5 * 8  # x and labels, and the epoch's permutation
    assert need.loading == 8 * 4 * 2 * 8  # two float64 working copies of x
    assert need.init == 12 * 8  # he: the 4x3 matrix drawn once in float64
    assert need.total == need.data + need.parameters + need.optimizer + need.buffers


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_optimizer_table_is_what_each_optimizer_allocates(name):
    params = np.zeros(50_000)
    optimizer = make(name, eps0=0.1)
    fused_kernels()  # Numba's import and set-up, once per process, are not the optimizer's arrays
    tracemalloc.start()
    try:
        optimizer.start(params, total_steps=10)
        allocated = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # the state arrays in full, and a scratch chunk of at most one more copy; the Nesterov variants' compiled
    # loops keep no α·v array
    fewer = 1 if optimizer._fused is not None and name in ("nesterov", "rmsprop_nesterov") else 0
    assert OPTIMIZER_COPIES[name] - 1 - fewer <= allocated / params.nbytes <= OPTIMIZER_COPIES[name] + 0.01


@pytest.mark.parametrize(("activation", "dtype", "batchnorm"),
                         [("relu", "float64", False), ("linear", "float32", False), ("tanh", "float32", True)])
def test_the_per_row_buffers_are_what_the_network_allocates(activation, dtype, batchnorm):
    rows = 1000
    spec = parse_spec(f'[data]\nsource = "digits"\n[model]\nhidden = [300, 200]\nactivation = "{activation}"\n'
                      f'batchnorm = {str(batchnorm).lower()}\n[train]\nbatch_size = {rows}\ndtype = "{dtype}"\n')
    need = training_memory(spec, DataShape(train_rows=rows, val_rows=rows, features=40, outputs=10))
    gathered = rows * (40 * np.dtype(dtype).itemsize + 8)
    per_row = (need.buffers - gathered) / (2 * rows)  # a training batch and a validation chunk of 1000 rows
    model = MLP([40, 300, 200, 10], activation, batchnorm=batchnorm, rng=0, dtype=dtype)
    x, y = np.zeros((rows, 40), dtype=dtype), np.zeros(rows, dtype=np.int64)
    tracemalloc.start()
    try:
        model.loss_and_grad(x, y)
        allocated = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert allocated / rows == pytest.approx(per_row, rel=0.01)


@pytest.mark.parametrize("val_fraction", [0.2, 0.3])
@pytest.mark.parametrize("source", BUILTIN)
def test_the_built_in_shapes_are_those_of_the_loaded_data(source, val_fraction):
    spec = parse_spec(f'[data]\nsource = "{source}"\nval_fraction = {val_fraction}\n'
                      + ('[study]\nobjective = "val_loss"\n' if source.endswith("regression") else ""))
    data = load_dataset(source, val_fraction=val_fraction)
    assert study_data_shape(spec) == DataShape.of(data)


def test_a_network_too_large_for_this_machine_is_refused_naming_the_estimate_and_the_limit():
    spec = parse_spec(SMALL.replace("[3]", "[65536, 65536, 65536]"), source_path="huge.toml")
    need = training_memory(spec, study_data_shape(spec))
    assert need.n_params == 20 * 65536 + 65536 + 2 * (65536 * 65536 + 65536) + 65536 * 4 + 4
    with pytest.raises(SpecError) as caught:
        check_training_memory(spec)
    assert re.fullmatch(
        rf"{re.escape(spec.label)}: training this network \({need.n_params:,} parameters\) needs about "
        rf"{re.escape(format_bytes(need.total))} of memory at its peak, more than the [\d.]+ [KMGT]iB available on this machine; use fewer or narrower "
        r"hidden layers or a smaller train.batch_size",
        str(caught.value),
    ), str(caught.value)
    assert caught.value.exit_code == 2


def test_a_network_that_fits_is_accepted():
    assert available_memory() is not None and available_memory() > 0
    check_training_memory(parse_spec(SMALL))


@pytest.mark.parametrize(("n", "shown"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 2**30, "3.0 GiB"),
                                          (5 * 2**50, "5.0 PiB"), (2**62, "4096.0 PiB")])
def test_sizes_are_written_in_binary_units(n, shown):
    assert format_bytes(n) == shown
