"""A multilayer perceptron whose parameters live in one flat array, with a hand-written backward pass.

For dense layers l = 0 .. L−1 with a_{−1} = x:

    s_l = a_{l−1} W_l + b_l          W_l: fan_in x fan_out, b_l: fan_out
    a_l = f(s_l)  (hidden layers),   a_{L−1} = s_{L−1}  (the output layer is linear; softmax is in the loss)

Backward, from δ_{L−1} = dL/da_{L−1}:

    dW_l = a_{l−1}ᵀ δ_l,   db_l = Σ_rows δ_l,   δ_{l−1} = f'(s_{l−1}) ⊙ (δ_l W_lᵀ)   (not computed for l = 0)

Layout: `params` is one contiguous array holding, layer after layer, W_l (row-major) then b_l;
`weights[l]` and `biases[l]` are views into it, and `weight_grads[l]`, `bias_grads[l]` the matching views
into `grad`. An optimizer therefore updates every parameter with a few vectorised calls.

Speed: the hot path (`loss_and_grad`) allocates nothing of the batch's size. Every intermediate lives in
buffers allocated once per batch size (a small cache keyed on it), the matrix products write straight into
those buffers and into the gradient views with `np.dot(..., out=)`, the non-linearities work in place, the
input layer's δ (dL/dx) is never computed, and every scalar is cast to the model's dtype so float32 stays
float32. bench/RESULTS.md gives the figures.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from tuner.errors import HyperparameterError, ModelError
from tuner.nn import activations as act
from tuner.nn import init as nn_init
from tuner.nn.losses import (
    LOSSES,
    _mean_squared_error,
    _softmax_cross_entropy,
    check_labels,
)

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_CACHED_BATCH_SIZES = 4  # training batch, last partial batch, evaluation chunk, a probe's batch
EVAL_CHUNK = 4096  # evaluate/predict go through the network this many rows at a time to bound memory


class _Buffers:
    """Every per-minibatch array of one batch size: pre-activations, activations, deltas, scratch."""

    def __init__(self, sizes: tuple[int, ...], batch: int, dtype: np.dtype, linear_hidden: bool) -> None:
        n_layers = len(sizes) - 1
        self.x = np.empty((batch, sizes[0]), dtype=dtype)  # used only when the input needs a dtype cast
        self.pre = [np.empty((batch, n), dtype=dtype) for n in sizes[1:]]
        # The output layer is linear, and so are hidden layers with the linear activation: a_l is s_l.
        self.act = [
            s if (l == n_layers - 1 or linear_hidden) else np.empty_like(s) for l, s in enumerate(self.pre)
        ]
        self.delta = [np.empty((batch, n), dtype=dtype) for n in sizes[1:]]
        self.scratch = [np.empty((batch, n), dtype=dtype) for n in sizes[1:]]
        self.ones = np.ones(batch, dtype=dtype)  # db = 1ᵀδ as a BLAS product: twice as fast as δ.sum(axis=0)
        self.rows = np.arange(batch)  # the row index of the labels' picks in the loss


class MLP:
    """A fully connected network trained with a softmax cross-entropy or a mean-squared-error loss.

    Arguments (checked here, once): `layer_sizes` (inputs, hidden..., outputs; at least two entries),
    `activation` (one of `activations.ACTIVATIONS`, for every hidden layer), `loss` (`cross_entropy` on
    integer labels, or `mse`), `init` (a scheme of `init.SCHEMES`), `init_scale` (the multiplier of the
    scheme: one float, or one per dense layer), `init_options` (the scheme's options: `gain` for
    orthogonal, `k`/`sigma` for sparse; without `gain`, orthogonal uses `init.default_gain` of each layer's
    non-linearity, 1 for the linear output layer), `bias` (`zeros`; `constant`: `bias_value` in every hidden
    layer and 0 in the output layer; `class_frequencies`: log c in the output layer, so that the initial
    softmax reproduces them, and 0 elsewhere), `dtype` (float32 or float64) and `rng` (a
    `numpy.random.Generator`, or an int seed for one).

    After `forward(x)`, `pre_activations[l]` (s_l) and `activations[l]` (a_l) hold the layer values of that
    batch; they are buffers reused by the next pass with the same batch size (copy them to keep them).
    `backward` reads them and the input of that `forward` (kept by reference, not copied).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        *,
        loss: str = "cross_entropy",
        init: str = "he",
        init_scale: float | Sequence[float] = 1.0,
        init_options: dict[str, float] | None = None,
        bias: str = "zeros",
        bias_value: float = 0.0,
        class_frequencies: Sequence[float] | np.ndarray | None = None,
        dtype: np.dtype | type | str = np.float32,
        rng: np.random.Generator | int,
    ) -> None:
        self.layer_sizes = _check_sizes(layer_sizes)
        self.n_layers = len(self.layer_sizes) - 1
        self._act = act.get(activation)
        self.activation = activation
        if loss not in LOSSES:
            raise ModelError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
        self.loss_name = loss
        self.dtype = _check_dtype(dtype)
        rng = _check_rng(rng)
        scales = _check_scales(init_scale, self.n_layers)
        options = dict(init_options or {})
        if bias not in nn_init.BIASES:
            raise HyperparameterError(f"unknown bias kind {bias!r}; known: {', '.join(nn_init.BIASES)}")
        if bias == "class_frequencies" and loss != "cross_entropy":
            raise ModelError(f"bias class_frequencies needs the cross_entropy loss, got loss {loss!r}")

        shapes = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True))
        self.params = np.empty(sum(m * n + n for m, n in shapes), dtype=self.dtype)
        self.grad = np.zeros_like(self.params)
        self.weights, self.biases = _views(self.params, shapes)
        self.weight_grads, self.bias_grads = _views(self.grad, shapes)
        for layer, (m, n) in enumerate(shapes):
            output = layer == self.n_layers - 1
            layer_options = options
            if init == "orthogonal" and "gain" not in options:
                layer_options = {**options, "gain": nn_init.default_gain("linear" if output else activation)}
            self.weights[layer][...] = nn_init.weights(
                init, m, n, scale=scales[layer], rng=rng, dtype=self.dtype, **layer_options
            )
            kind = bias if (bias == "constant" and not output) or (bias == "class_frequencies" and output) else "zeros"
            self.biases[layer][...] = nn_init.biases(
                kind, n, value=bias_value, class_frequencies=class_frequencies, dtype=self.dtype
            )

        self._buffers: OrderedDict[int, _Buffers] = OrderedDict()
        self._current: _Buffers | None = None
        self._x: np.ndarray | None = None
        self.pre_activations: list[np.ndarray] = []
        self.activations: list[np.ndarray] = []

    def __repr__(self) -> str:
        sizes = "-".join(map(str, self.layer_sizes))
        return f"MLP({sizes}, {self.activation}, loss={self.loss_name}, dtype={self.dtype.name})"

    @property
    def n_inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    # -- the hot path ---------------------------------------------------------------------------------

    def _buffers_for(self, batch: int) -> _Buffers:
        buffers = self._buffers.get(batch)
        if buffers is None:
            buffers = _Buffers(self.layer_sizes, batch, self.dtype, self.activation == "linear")
            self._buffers[batch] = buffers
            if len(self._buffers) > _CACHED_BATCH_SIZES:
                self._buffers.popitem(last=False)
        else:
            self._buffers.move_to_end(batch)
        return buffers

    def _input(self, x: np.ndarray) -> tuple[np.ndarray, _Buffers]:
        """`x` checked (2-D, the model's width) and in the model's dtype, with the buffers of its batch size."""
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.layer_sizes[0]:
            got = x.shape[1] if x.ndim == 2 else f"shape {x.shape}"
            raise ModelError(f"expected x with {self.layer_sizes[0]} features, got {got}")
        if x.shape[0] == 0:
            raise ModelError("expected x with at least one row, got 0")
        buffers = self._buffers_for(x.shape[0])
        if x.dtype != self.dtype:
            if x.dtype.kind not in "fiub":
                raise ModelError(f"expected x of a numeric dtype, got {x.dtype}")
            np.copyto(buffers.x, x, casting="unsafe")
            x = buffers.x
        return x, buffers

    def _forward(self, x: np.ndarray, buffers: _Buffers) -> np.ndarray:
        a = x
        last = self.n_layers - 1
        fn = self._act
        for layer in range(self.n_layers):
            s = buffers.pre[layer]
            np.dot(a, self.weights[layer], out=s)
            s += self.biases[layer]
            if layer < last and buffers.act[layer] is not s:
                fn.forward(s, buffers.act[layer], buffers.scratch[layer])
            a = buffers.act[layer]
        self._x, self._current = x, buffers
        self.pre_activations, self.activations = buffers.pre, buffers.act
        return a

    def _backward(self, delta: np.ndarray) -> None:
        buffers = self._current
        assert buffers is not None and self._x is not None
        fn = self._act
        for layer in range(self.n_layers - 1, -1, -1):
            a_in = self._x if layer == 0 else buffers.act[layer - 1]
            np.dot(a_in.T, delta, out=self.weight_grads[layer])
            np.dot(buffers.ones, delta, out=self.bias_grads[layer])
            if layer == 0:
                break  # dL/dx is not needed
            below = buffers.delta[layer - 1]
            np.dot(delta, self.weights[layer].T, out=below)
            fn.backward(buffers.pre[layer - 1], buffers.act[layer - 1], below, below, buffers.scratch[layer - 1])
            delta = below

    def _loss(self, output: np.ndarray, y: np.ndarray, buffers: _Buffers) -> float:
        """Loss of the cached output against checked targets; leaves dL/doutput in the output layer's delta."""
        grad = buffers.delta[-1]
        if self.loss_name == "cross_entropy":
            return _softmax_cross_entropy(output, y, grad, buffers.rows)[0]
        return _mean_squared_error(output, y, grad)[0]

    def _targets(self, y: np.ndarray, batch: int) -> np.ndarray:
        if self.loss_name == "cross_entropy":
            return check_labels(y, batch, self.layer_sizes[-1])
        y = np.asarray(y)
        n_out = self.layer_sizes[-1]
        if y.ndim == 1 and n_out == 1:
            y = y.reshape(-1, 1)
        if y.shape != (batch, n_out):
            raise ModelError(f"expected targets of shape ({batch}, {n_out}), got {y.shape}")
        if y.dtype.kind not in "fiub":
            raise ModelError(f"expected numeric targets, got dtype {y.dtype}")
        return y

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray) -> float:
        """Forward, loss and backward at the current `params`: returns the minibatch loss, fills `grad`.

        `y`: integer class labels (m,) for cross_entropy, targets (m, n_outputs) for mse.
        """
        x, buffers = self._input(x)
        y = self._targets(y, x.shape[0])
        loss = self._loss(self._forward(x, buffers), y, buffers)
        self._backward(buffers.delta[-1])
        return loss

    # -- the public passes ----------------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network's output (m x n_outputs, logits for cross_entropy) as a new array; caches the layers."""
        x, buffers = self._input(x)
        return self._forward(x, buffers).copy()

    def backward(self, grad_output: np.ndarray) -> None:
        """Fill `grad` with dL/dparams from dL/doutput of the last `forward` (m x n_outputs)."""
        if self._current is None:
            raise ModelError("backward needs a forward pass first")
        expected = self._current.delta[-1].shape
        grad_output = np.asarray(grad_output)
        if grad_output.shape != expected:
            raise ModelError(f"expected grad_output of shape {expected}, got {grad_output.shape}")
        delta = self._current.delta[-1]
        if grad_output is not delta:
            np.copyto(delta, grad_output, casting="same_kind")
        self._backward(delta)

    def _checked_set(self, x: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.layer_sizes[0]:
            self._input(x)  # raises the shape error
        if y is not None:
            y = self._targets(y, x.shape[0])
        return x, y

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float | None]:
        """(mean loss, accuracy) on a whole set; accuracy is None for mse. Leaves `grad` untouched."""
        x, y = self._checked_set(x, y)
        n = x.shape[0]
        if n == 0:
            raise ModelError("expected x with at least one row, got 0")
        total, correct = 0.0, 0
        for start in range(0, n, EVAL_CHUNK):
            xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            xb, buffers = self._input(xb)
            output = self._forward(xb, buffers)
            total += self._loss(output, yb, buffers) * len(xb)
            if self.loss_name == "cross_entropy":
                correct += int(np.count_nonzero(output.argmax(axis=1) == yb))
        accuracy = correct / n if self.loss_name == "cross_entropy" else None
        return total / n, accuracy

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The mean loss on (x, y) at the current `params`."""
        return self.evaluate(x, y)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices (argmax of the logits) for cross_entropy; the outputs themselves for mse."""
        x, _ = self._checked_set(x, None)
        parts = []
        for start in range(0, x.shape[0], EVAL_CHUNK):
            xb, buffers = self._input(x[start : start + EVAL_CHUNK])
            output = self._forward(xb, buffers)
            parts.append(output.argmax(axis=1) if self.loss_name == "cross_entropy" else output.copy())
        return np.concatenate(parts)


def _views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    weights, biases, offset = [], [], 0
    for m, n in shapes:
        weights.append(flat[offset : offset + m * n].reshape(m, n))
        offset += m * n
        biases.append(flat[offset : offset + n])
        offset += n
    return weights, biases


def _check_sizes(layer_sizes: Sequence[int]) -> tuple[int, ...]:
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


def _check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in _DTYPES:
        raise ModelError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def _check_rng(rng: object) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ModelError(f"rng must be a numpy.random.Generator or an int seed >= 0, got {rng!r}")


def _check_scales(init_scale: float | Sequence[float], n_layers: int) -> list[float]:
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
