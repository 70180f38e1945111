"""Activation statistics of a network on one minibatch: the numbers the init-scale heuristic reads.

For each dense layer l (input side first, output layer last) with s_l = a_{l-1} W_l + b_l and
a_l = f(s_l):

- `weight_std`: std of the entries of W_l (fan_in x fan_out).
- `pre_mean`, `pre_std`: mean and std of what the layer's non-linearity sees over every entry of the
  batch x units matrix: s_l, or with batch normalization BN_l(s_l) (`model.pre_activations`).
- `post_mean`, `post_std`: the same for a_l (the output layer is linear: a = s; softmax belongs to the loss).
- `saturated_fraction` (tanh and sigmoid layers, else None): the fraction of the batch x units entries in
  the flat tails of the non-linearity, where its derivative is below ~0.02: tanh |a| > 0.99 (tanh' < 0.0199),
  sigmoid a < 0.01 or a > 0.99 (σ' < 0.0099).
- `dead_fraction` (relu and leaky_relu layers, else None): the fraction of units whose pre-activation is
  <= 0 for every example of the batch. A ReLU unit there outputs 0 for the whole batch and gets no
  gradient from it; a leaky unit outputs only its small negative slope.
- `grad_std`: std of dL/dW_l from one backward pass at the current parameters (None when no targets).

The values are read off the network's own forward (and backward) pass, in train mode (batch statistics,
as in training); the model's buffers (running statistics) and its mode are left as they were.

Ref.: Goodfellow et al., *Deep Learning*, sec. 8.4 ("look at the range or standard deviation of
activations or gradients on a single minibatch").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuner.errors import ProbeError

if TYPE_CHECKING:
    from tuner.nn.mlp import MLP

KNOWN_ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")
SATURATING = ("tanh", "sigmoid")
RECTIFYING = ("relu", "leaky_relu")
TANH_SATURATION = 0.99  # |a| above this: tanh'(s) = 1 - a^2 < 0.0199
SIGMOID_SATURATION = 0.01  # a below this or above 1 - this: σ'(s) = a(1 - a) < 0.0099


@dataclass(frozen=True)
class LayerStats:
    """The statistics of one dense layer on one batch (see the module docstring for each field)."""

    layer: int
    fan_in: int
    fan_out: int
    activation: str
    weight_std: float
    pre_mean: float
    pre_std: float
    post_mean: float
    post_std: float
    saturated_fraction: float | None
    dead_fraction: float | None
    grad_std: float | None

    def to_dict(self) -> dict:
        """A JSON-able dict of the fields; a non-finite number (an overflowing network) becomes None."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()}


def layer_activation(model: MLP, layer: int) -> str:
    """The non-linearity after dense layer `layer`: the model's for hidden layers, linear for the output."""
    return "linear" if layer == model.n_layers - 1 else model.activation


def check_activation(model: MLP) -> None:
    """ProbeError when the probes do not know the model's activation."""
    if model.activation not in KNOWN_ACTIVATIONS:
        raise ProbeError(
            f"the probe does not know activation {model.activation!r} (known: {', '.join(KNOWN_ACTIVATIONS)})"
        )


def check_batch(model: MLP, x: np.ndarray) -> np.ndarray:
    """`x` as a 2-D array of the model's dtype with the model's input width, else ProbeError."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ProbeError(f"the probe needs a batch of at least 2 examples as a 2-D array, got shape {x.shape}")
    if x.shape[1] != model.layer_sizes[0]:
        raise ProbeError(f"the batch has {x.shape[1]} features, the network takes {model.layer_sizes[0]}")
    if not np.all(np.isfinite(x)):
        raise ProbeError("the batch holds non-finite values")
    return x.astype(model.dtype, copy=False)


def _std(a: np.ndarray) -> float:
    return float(np.std(a, dtype=np.float64))


def _mean(a: np.ndarray) -> float:
    return float(np.mean(a, dtype=np.float64))


def activation_stats(model: MLP, x: np.ndarray, y: np.ndarray | None = None) -> list[LayerStats]:
    """Per-layer statistics of `model` on the batch `x` (one forward pass; one backward pass when `y` is given).

    With targets `y`, `model.grad` is overwritten by the batch's gradient; the parameters are not changed.
    """
    check_activation(model)
    x = check_batch(model, x)
    with model.restoring():
        if y is not None:
            model.loss_and_grad(x, y)  # forward + backward: fills pre_activations, activations and grad
        else:
            model.forward(x)
    return [_layer_stats(model, layer, y is not None) for layer in range(model.n_layers)]


def _layer_stats(model: MLP, layer: int, with_grad: bool) -> LayerStats:
    """Layer `layer`'s statistics from the network's last pass."""
    w = model.weights[layer]
    pre, post = model.pre_activations[layer], model.activations[layer]
    kind = layer_activation(model, layer)
    saturated = dead = None
    if kind == "tanh":
        saturated = float(np.mean(np.abs(post) > TANH_SATURATION))
    elif kind == "sigmoid":
        saturated = float(np.mean((post < SIGMOID_SATURATION) | (post > 1.0 - SIGMOID_SATURATION)))
    elif kind in RECTIFYING:
        dead = float(np.mean(np.all(pre <= 0, axis=0)))
    return LayerStats(
        layer=layer,
        fan_in=int(w.shape[0]),
        fan_out=int(w.shape[1]),
        activation=kind,
        weight_std=_std(w),
        pre_mean=_mean(pre),
        pre_std=_std(pre),
        post_mean=_mean(post),
        post_std=_std(post),
        saturated_fraction=saturated,
        dead_fraction=dead,
        grad_std=_std(model.weight_grads[layer]) if with_grad else None,
    )
