"""A multilayer perceptron built from layers (`tuner.nn.layers`) whose parameters live in one flat array.

For dense layers l = 0 .. L−1 with a_{−1} = x:

    s_l = a_{l−1} W_l + b_l          W_l: fan_in x fan_out, b_l: fan_out
    a_l = f(s_l)  (hidden layers),   a_{L−1} = s_{L−1}  (the output layer is linear; softmax is in the loss)

With `batchnorm=True` each hidden layer normalises s_l before its non-linearity, a_l = f(BN_l(s_l))
(`tuner.nn.batchnorm`). Each step's backward is in its layer; the network chains them from
δ_{L−1} = dL/da_{L−1} and never computes dL/dx of the input layer.

Layout: `params` is one contiguous array holding, layer after layer, W_l (row-major), b_l, then (with
batch normalization) γ_l and β_l; `weights[l]` and `biases[l]` are the dense layers' views into it, and
`weight_grads[l]`, `bias_grads[l]` the matching views into `grad`. An optimizer therefore updates every
parameter with a few vectorised calls. The running statistics are buffers (`buffers()`), not parameters.

Modes (`train()`, the default, and `eval()`), `state()`/`load_state()` and `config`: `tuner.nn.state`.
`evaluate` and `predict` always run in eval mode (the running statistics).

Speed: the hot path (`loss_and_grad`) allocates nothing of the batch's size: every intermediate lives in
the layers' workspaces, allocated once per batch size (a small cache keyed on it), products write into
them with `np.dot(..., out=)`, non-linearities work in place, scalars are cast to the model's dtype. On
the small nets a minibatch is ~30 NumPy calls of 1-3 µs against ~40 µs of matrix products (64-128-10,
batch 64), so the per-call Python work is kept small too: a pass with the batch size of the last one
reuses its workspaces without touching the cache, and the backward pass walks a list laid out once per
batch size (`Workspaces.backward_order`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from tuner.errors import HyperparameterError, ModelError
from tuner.nn import activations as act
from tuner.nn import init as nn_init
from tuner.nn.arguments import check_dtype, check_rng, check_scales, check_sizes
from tuner.nn.batchnorm import BatchNorm
from tuner.nn.layers import Dense, Layer, Nonlinearity, Workspaces, bind_layers
from tuner.nn.losses import (
    LOSSES,
    _mean_squared_error,
    _softmax_cross_entropy,
    check_labels,
)
from tuner.nn.state import ModelState

_CACHED_BATCH_SIZES = 4  # training batch, last partial batch, evaluation chunk, a probe's batch
EVAL_CHUNK = 4096  # evaluate/predict go through the network this many rows at a time to bound memory


def build_layers(sizes: tuple[int, ...], fn: act.Activation, batchnorm: bool, dtype: np.dtype) -> list[Layer]:
    """Dense, [BatchNorm,] Nonlinearity for each hidden layer, then the linear output layer (a linear
    activation is no step at all)."""
    layers: list[Layer] = []
    for l, (m, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Dense(m, n))
        if l == len(sizes) - 2:
            break
        if batchnorm:
            layers.append(BatchNorm(n, dtype))
        if fn.name != "linear":
            layers.append(Nonlinearity(fn, n))
    return layers


class MLP(ModelState):
    """A fully connected network trained with a softmax cross-entropy or a mean-squared-error loss.

    Arguments (checked here, once): `layer_sizes` (inputs, hidden..., outputs; at least two entries),
    `activation` (one of `activations.ACTIVATIONS`, for every hidden layer), `loss` (`cross_entropy` on
    integer labels, or `mse`), `init` (a scheme of `init.SCHEMES`), `init_scale` (the multiplier of the
    scheme: one float, or one per dense layer), `init_options` (the scheme's options: `gain` for
    orthogonal, `k`/`sigma` for sparse; without `gain`, orthogonal uses `init.default_gain` of each layer's
    non-linearity, 1 for the linear output layer), `bias` (`zeros`; `constant`: `bias_value` in every hidden
    layer and 0 in the output layer; `class_frequencies`: log c in the output layer, so that the initial
    softmax reproduces them, and 0 elsewhere), `batchnorm` (batch normalization after every hidden dense
    layer, before its non-linearity; γ = 1, β = 0; the init scales apply to the dense weights only),
    `dtype` (float32 or float64) and `rng` (a `numpy.random.Generator`, or an int seed for one).

    After `forward(x)`, `pre_activations[l]` (what layer l's non-linearity sees), `activations[l]` (a_l) and
    `dense_outputs[l]` (s_l) hold the layer values of that batch; they are buffers reused by the next pass
    with the same batch size (copy them to keep them). `backward` reads them and the input of that
    `forward` (kept by reference, not copied).
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
        batchnorm: bool = False,
        dtype: np.dtype | type | str = np.float32,
        rng: np.random.Generator | int,
    ) -> None:
        self.layer_sizes = check_sizes(layer_sizes)
        self.n_layers = len(self.layer_sizes) - 1
        self.activation = activation
        if loss not in LOSSES:
            raise ModelError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
        self.loss_name = loss
        if not isinstance(batchnorm, bool):
            raise ModelError(f"batchnorm must be true or false, got {batchnorm!r}")
        self.batchnorm = batchnorm
        self.dtype = check_dtype(dtype)
        rng = check_rng(rng)
        scales = check_scales(init_scale, self.n_layers)
        if bias not in nn_init.BIASES:
            raise HyperparameterError(f"unknown bias kind {bias!r}; known: {', '.join(nn_init.BIASES)}")
        if bias == "class_frequencies" and loss != "cross_entropy":
            raise ModelError(f"bias class_frequencies needs the cross_entropy loss, got loss {loss!r}")

        self.layers = build_layers(self.layer_sizes, act.get(activation), batchnorm, self.dtype)
        self.params, self.grad = bind_layers(self.layers, self.dtype)
        self.dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        self.norms = [layer for layer in self.layers if isinstance(layer, BatchNorm)]
        self.weights = [d.weight for d in self.dense]
        self.biases = [d.bias for d in self.dense]
        self.weight_grads = [d.weight_grad for d in self.dense]
        self.bias_grads = [d.bias_grad for d in self.dense]
        self._initialise(init, scales, dict(init_options or {}), bias, bias_value, class_frequencies, rng)

        self.training = True
        self._buffers: OrderedDict[int, Workspaces] = OrderedDict()
        self._current: Workspaces | None = None
        self._x: np.ndarray | None = None
        self.pre_activations: list[np.ndarray] = []
        self.activations: list[np.ndarray] = []
        self.dense_outputs: list[np.ndarray] = []

    def _initialise(self, init: str, scales: list[float], options: dict[str, float], bias: str, bias_value: float,
                    class_frequencies: Sequence[float] | np.ndarray | None, rng: np.random.Generator) -> None:
        """Dense weights from the scheme times each layer's scale, biases by kind; γ = 1, β = 0."""
        for layer, dense in enumerate(self.dense):
            output = layer == self.n_layers - 1
            layer_options = options
            if init == "orthogonal" and "gain" not in options:
                layer_options = {**options, "gain": nn_init.default_gain("linear" if output else self.activation)}
            dense.weight[...] = nn_init.weights(
                init, dense.fan_in, dense.fan_out, scale=scales[layer], rng=rng, dtype=self.dtype, **layer_options
            )
            kind = bias if (bias == "constant" and not output) or (bias == "class_frequencies" and output) else "zeros"
            dense.bias[...] = nn_init.biases(
                kind, dense.fan_out, value=bias_value, class_frequencies=class_frequencies, dtype=self.dtype
            )
        for norm in self.norms:
            norm.gamma.fill(1)
            norm.beta.fill(0)

    def __repr__(self) -> str:
        sizes = "-".join(map(str, self.layer_sizes))
        norm = ", batchnorm" if self.batchnorm else ""
        return f"MLP({sizes}, {self.activation}{norm}, loss={self.loss_name}, dtype={self.dtype.name})"

    @property
    def n_inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    # -- the hot path ---------------------------------------------------------------------------------

    def _buffers_for(self, batch: int) -> Workspaces:
        buffers = self._buffers.get(batch)
        if buffers is None:
            buffers = Workspaces(self.layers, batch, self.dtype, self.n_inputs)
            self._buffers[batch] = buffers
            if len(self._buffers) > _CACHED_BATCH_SIZES:
                self._buffers.popitem(last=False)
        else:
            self._buffers.move_to_end(batch)
        return buffers

    def _check_x(self, x: np.ndarray) -> None:
        """ModelError unless `x` is 2-D with the model's width, at least one row, and numeric."""
        if x.ndim != 2 or x.shape[1] != self.layer_sizes[0]:
            got = x.shape[1] if x.ndim == 2 else f"shape {x.shape}"
            raise ModelError(f"expected x with {self.layer_sizes[0]} features, got {got}")
        if x.shape[0] == 0:
            raise ModelError("expected x with at least one row, got 0")
        if x.dtype != self.dtype and x.dtype.kind not in "fiub":
            raise ModelError(f"expected x of a numeric dtype, got {x.dtype}")

    def _input(self, x: np.ndarray) -> tuple[np.ndarray, Workspaces]:
        """`x` checked (2-D, the model's width) and in the model's dtype, with the buffers of its batch size."""
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        self._check_x(x)
        return self._converted(x)

    def _converted(self, x: np.ndarray) -> tuple[np.ndarray, Workspaces]:
        """`x` (already checked) in the model's dtype, with the buffers of its batch size (those of the last
        pass when the size is the same: the training loop's case, without the cache's bookkeeping)."""
        buffers = self._current
        if buffers is None or buffers.batch != x.shape[0]:
            buffers = self._buffers_for(x.shape[0])
        if x.dtype != self.dtype:
            np.copyto(buffers.x, x, casting="unsafe")
            x = buffers.x
        return x, buffers

    def _forward(self, x: np.ndarray, buffers: Workspaces, training: bool) -> np.ndarray:
        a = x
        for layer, work in zip(self.layers, buffers.work, strict=True):
            a = layer.forward(a, work, training)
        self._x, self._current = x, buffers
        self.pre_activations, self.activations, self.dense_outputs = buffers.pre, buffers.act, buffers.dense
        return a

    def _backward(self, delta: np.ndarray) -> None:
        buffers = self._current
        assert buffers is not None and self._x is not None
        for layer, work, x_in in buffers.backward_order:
            delta = layer.backward(self._x if x_in is None else x_in, delta, work)
            if delta is None:
                break  # the first layer: dL/dx is not needed

    def _loss(self, output: np.ndarray, y: np.ndarray, buffers: Workspaces) -> float:
        """Loss of the cached output against checked targets; leaves dL/doutput in the output layer's delta."""
        grad = buffers.delta
        if self.loss_name == "cross_entropy":
            return _softmax_cross_entropy(output, y, grad, buffers.loss_scratch)[0]
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
        loss = self._loss(self._forward(x, buffers, self.training), y, buffers)
        self._backward(buffers.delta)
        return loss

    def check_set(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A whole training set checked once, as `loss_and_grad_checked` takes minibatches of it: `x` as
        `loss_and_grad` checks it, `y` as class indices (intp) for cross_entropy or targets for mse."""
        x = np.asarray(x)
        self._check_x(x)
        return x, self._targets(y, x.shape[0])

    def loss_and_grad_checked(self, x: np.ndarray, y: np.ndarray) -> float:
        """`loss_and_grad` on rows of a set that `check_set` returned: no checks per minibatch (the
        training loop's path; a wrong shape or label here is undefined, not an error)."""
        x, buffers = self._converted(x)
        loss = self._loss(self._forward(x, buffers, self.training), y, buffers)
        self._backward(buffers.delta)
        return loss

    # -- the public passes ----------------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network's output (m x n_outputs, logits for cross_entropy) as a new array; caches the layers."""
        x, buffers = self._input(x)
        return self._forward(x, buffers, self.training).copy()

    def backward(self, grad_output: np.ndarray) -> None:
        """Fill `grad` with dL/dparams from dL/doutput of the last `forward` (m x n_outputs)."""
        if self._current is None:
            raise ModelError("backward needs a forward pass first")
        expected = self._current.delta.shape
        grad_output = np.asarray(grad_output)
        if grad_output.shape != expected:
            raise ModelError(f"expected grad_output of shape {expected}, got {grad_output.shape}")
        delta = self._current.delta
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
            output = self._forward(xb, buffers, False)
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
            output = self._forward(xb, buffers, False)
            parts.append(output.argmax(axis=1) if self.loss_name == "cross_entropy" else output.copy())
        return np.concatenate(parts)


