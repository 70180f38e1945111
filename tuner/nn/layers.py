"""The steps a network is made of: a dense layer and a non-linearity (batch normalization is in `batchnorm`).

A layer is a forward/backward pair with an explicit cache, the workspace:

    work = layer.workspace(batch, dtype, input_grad)   # every array of one batch size, allocated once
    out = layer.forward(x, work, training)             # writes work.out (and what backward needs)
    grad_in = layer.backward(x, grad_out, work)        # fills the layer's parameter gradients; dL/dx

`forward` returns `work.out`, a buffer the next pass of that batch size overwrites. `backward` gets the
input of that `forward` back (the network keeps every layer's output, so no layer copies its input) and
returns dL/dx, which it may write into `grad_out` itself (in place); it returns None when the workspace was
made with `input_grad=False` (the first layer: dL/dinput is never needed).

Trainable parameters live in the network's one flat array: `bind(params, grad)` hands a layer its slice of
`params` and of `grad` (`n_params` entries each), and the layer keeps views into them (`weight`, `bias`,
`weight_grad`, `bias_grad` for a dense layer), so an optimizer updates every layer with a few vectorised
calls. Non-trainable state (batch normalization's running statistics) is in `buffers`, a dict of named
arrays the layer owns; `training` selects batch statistics (True) or the running ones (False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuner.nn.activations import Activation
from tuner.nn.losses import softmax_scratch


@dataclass
class Work:
    """A layer's arrays of one batch size; every layer has its output `out` there."""

    out: np.ndarray


class Layer:
    """The interface every step implements; a layer without parameters or buffers keeps these defaults."""

    n_params = 0
    width = 0  # the number of units of the layer's output

    def bind(self, params: np.ndarray, grad: np.ndarray) -> None:
        """Keep views into this layer's slices (`n_params` entries) of the flat parameter and gradient arrays."""

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        """Named non-trainable arrays (e.g. running statistics), the layer's own; updated in place."""
        return {}

    def workspace(self, batch: int, dtype: np.dtype, input_grad: bool) -> Work:
        raise NotImplementedError

    def forward(self, x: np.ndarray, work: Work, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, x: np.ndarray, grad_out: np.ndarray, work: Work) -> np.ndarray | None:
        raise NotImplementedError


@dataclass
class DenseWork(Work):
    """A dense layer's arrays of one batch size: its output s, dL/dx (None for the first layer) and a
    vector of ones (db = 1ᵀδ as a BLAS product: twice as fast as δ.sum(axis=0))."""

    grad_in: np.ndarray | None
    ones: np.ndarray


class Dense(Layer):
    """s = x W + b, with W: fan_in x fan_out (row-major in the flat array, then b).

    Backward, from δ = dL/ds:  dW = xᵀ δ,  db = Σ_rows δ,  dL/dx = δ Wᵀ.

    b is added after the product rather than folded into it ([x, 1] @ [W; b], which the flat layout would
    allow): the fold saves the add and the db product on most shapes (64 x 64 -> 128: 15.7 -> 12.5 µs
    forward), but one more row in the product's inner dimension can push it out of OpenBLAS's
    small-matrix kernel (100 x 100 -> 100: 22 -> 23.5 µs forward, 21 -> 27 µs for dW and db), and the
    network's input would need a copy with a column of ones every minibatch.
    """

    def __init__(self, fan_in: int, fan_out: int) -> None:
        self.fan_in, self.fan_out = fan_in, fan_out
        self.width = fan_out
        self.n_params = fan_in * fan_out + fan_out

    def bind(self, params: np.ndarray, grad: np.ndarray) -> None:
        self.weight, self.bias = self._split(params)
        self.weight_grad, self.bias_grad = self._split(grad)

    def _split(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        size = self.fan_in * self.fan_out
        return flat[:size].reshape(self.fan_in, self.fan_out), flat[size : self.n_params]

    def workspace(self, batch: int, dtype: np.dtype, input_grad: bool) -> DenseWork:
        grad_in = np.empty((batch, self.fan_in), dtype=dtype) if input_grad else None
        return DenseWork(np.empty((batch, self.fan_out), dtype=dtype), grad_in, np.ones(batch, dtype=dtype))

    def forward(self, x: np.ndarray, work: DenseWork, training: bool) -> np.ndarray:
        np.dot(x, self.weight, out=work.out)
        work.out += self.bias
        return work.out

    def backward(self, x: np.ndarray, grad_out: np.ndarray, work: DenseWork) -> np.ndarray | None:
        np.dot(x.T, grad_out, out=self.weight_grad)
        np.dot(work.ones, grad_out, out=self.bias_grad)
        if work.grad_in is None:
            return None
        np.dot(grad_out, self.weight.T, out=work.grad_in)
        return work.grad_in


@dataclass
class NonlinearityWork(Work):
    """A non-linearity's output a = f(s) and the scratch array its passes need."""

    scratch: np.ndarray


class Nonlinearity(Layer):
    """a = f(s) element-wise, for an `activations.Activation`; backward dL/ds = f'(s) ⊙ dL/da, in place."""

    def __init__(self, fn: Activation, width: int) -> None:
        self.fn, self.width = fn, width

    def workspace(self, batch: int, dtype: np.dtype, input_grad: bool) -> NonlinearityWork:
        return NonlinearityWork(np.empty((batch, self.width), dtype=dtype), np.empty((batch, self.width), dtype=dtype))

    def forward(self, x: np.ndarray, work: NonlinearityWork, training: bool) -> np.ndarray:
        return self.fn.forward(x, work.out, work.scratch)

    def backward(self, x: np.ndarray, grad_out: np.ndarray, work: NonlinearityWork) -> np.ndarray:
        return self.fn.backward(x, work.out, grad_out, grad_out, work.scratch)


class Workspaces:
    """Every per-minibatch array of a network for one batch size (`batch`): each layer's workspace, the
    input cast, dL/doutput and the cross-entropy kernel's scratch (`losses.SoftmaxScratch`).

    `pre[l]` is what dense layer l's non-linearity sees (s_l, or BN_l(s_l)), `act[l]` the block's output
    a_l, `dense[l]` the dense output s_l: views of the layers' outputs, for the probes. `backward_order`
    lists (layer, its workspace, its input) from the last layer to the first, whose input (the network's)
    is None here: the backward pass laid out once rather than indexed per minibatch.
    """

    def __init__(self, layers: list[Layer], batch: int, dtype: np.dtype, n_inputs: int) -> None:
        self.batch = batch
        self.x = np.empty((batch, n_inputs), dtype=dtype)  # used only when the input needs a dtype cast
        self.work = [layer.workspace(batch, dtype, i > 0) for i, layer in enumerate(layers)]
        self.delta = np.empty((batch, layers[-1].width), dtype=dtype)
        self.loss_scratch = softmax_scratch(batch, layers[-1].width, dtype)
        inputs = [None, *(work.out for work in self.work[:-1])]
        self.backward_order = list(zip(layers, self.work, inputs, strict=True))[::-1]
        self.dense: list[np.ndarray] = []
        self.pre: list[np.ndarray] = []
        self.act: list[np.ndarray] = []
        for layer, work in zip(layers, self.work, strict=True):
            out = work.out
            if isinstance(layer, Dense):
                self.dense.append(out)
                self.pre.append(out)
                self.act.append(out)
            elif isinstance(layer, Nonlinearity):
                self.act[-1] = out
            else:  # a normalization: what the non-linearity sees
                self.pre[-1] = self.act[-1] = out


def bind_layers(layers: list[Layer], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The flat parameter and gradient arrays, each layer bound to its slice of them, in order."""
    params = np.empty(sum(layer.n_params for layer in layers), dtype=dtype)
    grad = np.zeros_like(params)
    offset = 0
    for layer in layers:
        layer.bind(params[offset : offset + layer.n_params], grad[offset : offset + layer.n_params])
        offset += layer.n_params
    return params, grad
