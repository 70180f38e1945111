"""The checks of the MLP's arguments, once, at its boundary: each error names the value at fault."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from tuner.errors import HyperparameterError, ModelError

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_sizes(layer_sizes: Sequence[int]) -> tuple[int, ...]:
    try:
        sizes = tuple(layer_sizes)
    except TypeError:
        raise ModelError(f"layer_sizes must be a sequence of integers, got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ModelError(f"layer_sizes needs at least 2 entries (inputs, outputs), got {list(sizes)}")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ModelError(f"layer sizes must be integers >= 1, got {size!r} in {list(sizes)}")
    return tuple(int(size) for size in sizes)


def check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in DTYPES:
        raise ModelError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def check_rng(rng: object) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ModelError(f"rng must be a numpy.random.Generator or an int seed >= 0, got {rng!r}")


def check_scales(init_scale: float | Sequence[float], n_layers: int) -> list[float]:
    if isinstance(init_scale, numbers.Real) and not isinstance(init_scale, bool):
        scales = [init_scale] * n_layers
    else:
        try:
            scales = list(init_scale)  # type: ignore[arg-type]
        except TypeError:
            raise HyperparameterError(f"init_scale must be a number or one per layer, got {init_scale!r}") from None
        if len(scales) != n_layers:
            raise HyperparameterError(
                f"init_scale has {len(scales)} values, the network has {n_layers} dense layers"
            )
    for layer, scale in enumerate(scales):
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            where = "" if n_layers == 1 or len(set(map(repr, scales))) == 1 else f" (layer {layer})"
            raise HyperparameterError(f"init_scale must be a finite number > 0, got {scale!r}{where}")
    return [float(scale) for scale in scales]


def check_state(state: object, params: np.ndarray, buffers: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """The parameters and buffers of a `state()` dict, checked against the network's own (names, shapes)."""
    if not isinstance(state, dict) or set(state) != {"params", "buffers"}:
        raise ModelError(f"a model state is a dict with keys 'buffers' and 'params', got {_keys(state)}")
    new_params = np.asarray(state["params"])
    if new_params.shape != params.shape or new_params.dtype.kind != "f":
        raise ModelError(f"the state's params have shape {new_params.shape} and dtype {new_params.dtype}, "
                         f"the network's {params.shape} of floats")
    new_buffers = state["buffers"]
    if not isinstance(new_buffers, dict) or set(new_buffers) != set(buffers):
        raise ModelError(f"the state's buffers are {_keys(new_buffers)}, the network's {sorted(buffers)}")
    for name, array in buffers.items():
        value = np.asarray(new_buffers[name])
        if value.shape != array.shape or value.dtype.kind != "f":
            raise ModelError(f"the state's buffer {name} has shape {value.shape} and dtype {value.dtype}, "
                             f"the network's {array.shape} of floats")
    return new_params, {name: np.asarray(v) for name, v in new_buffers.items()}


def _keys(value: object) -> object:
    return sorted(map(str, value)) if isinstance(value, dict) else type(value).__name__
