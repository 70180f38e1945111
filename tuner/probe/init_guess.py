"""The init-scale guess: layer-sequential unit-variance rescaling (LSUV, Mishkin & Matas 2016).

Layer by layer from the input, with the batch's input a_{l-1} to layer l fixed (the layers before it are
already done):

    repeat:  s_l = a_{l-1} W_l + b_l ;  σ_l = std(s_l)          (over every batch x units entry)
             stop if |σ_l − target| < tol, or after max_iter rescalings
             W_l ← W_l · target/σ_l

then a_l = f(s_l) is the next layer's input. With zero biases one rescaling is exact (std(a W c) =
c·std(a W)); the loop matters when the biases are not zero. The multiplier of layer l is the product of
its rescalings: the `scale` to use with the scheme the model was built with (relative to the model's
initial weights, so a model built with scale 1 gets the scale itself).

Every dense layer is rescaled, the output layer included, as in the paper: for a classifier this puts the
initial logits at std `target`, neither a near-uniform softmax (vanishing logits) nor a saturated one.
`include_output=False` leaves the output layer alone (multiplier 1).

Only the weights change, never the biases. The model is changed in place: it ends LSUV-initialised.
σ_l is read off the network's own forward pass (`model.dense_outputs[l]`, in train mode; the running
statistics and the mode are left as they were), so a layer type the MLP gains needs nothing here. With
batch normalization, a hidden layer's rescaling changes nothing downstream (BN divides it out) and the
output layer's still sets the logits' scale. Cost: one forward pass of one batch per rescaling and per
layer, plus the forward and backward passes of the statistics before and after.
Ref.: D. Mishkin, J. Matas, "All you need is a good init", ICLR 2016 (Alg. 1, without its orthonormal
pre-initialisation: the model keeps its own scheme); Goodfellow et al., *Deep Learning*, sec. 8.4.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuner.errors import ProbeError
from tuner.probe.stats import LayerStats, activation_stats, check_activation, check_batch

if TYPE_CHECKING:
    from tuner.nn.mlp import MLP


@dataclass(frozen=True)
class InitScaleGuess:
    """The result of `init_scale_guess`.

    `multipliers[l]`: the product of layer l's rescalings (relative to the model's initial weights).
    `iterations[l]`: rescalings applied to layer l; `converged[l]`: whether |σ_l − target| < tol was reached.
    `before` / `after`: `activation_stats` on the batch before and after. `seconds`: wall time.
    """

    multipliers: tuple[float, ...]
    iterations: tuple[int, ...]
    converged: tuple[bool, ...]
    target: float
    tol: float
    before: tuple[LayerStats, ...]
    after: tuple[LayerStats, ...]
    seconds: float

    def to_dict(self) -> dict:
        """A JSON-able dict (stats as lists of dicts)."""
        return {
            "multipliers": list(self.multipliers),
            "iterations": list(self.iterations),
            "converged": list(self.converged),
            "target": self.target,
            "tol": self.tol,
            "before": [s.to_dict() for s in self.before],
            "after": [s.to_dict() for s in self.after],
            "seconds": self.seconds,
        }


def _layer_name(model: MLP, layer: int) -> str:
    fan_in, fan_out = model.weights[layer].shape
    return f"layer {layer} ({fan_in} -> {fan_out})"


def _check(value: float, name: str, *, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= low:
        raise ProbeError(f"{name} must be a finite number > {low:g}, got {value!r}")
    return float(value)


def init_scale_guess(
    model: MLP,
    x: np.ndarray,
    *,
    y: np.ndarray | None = None,
    target: float = 1.0,
    tol: float = 0.1,
    max_iter: int = 10,
    include_output: bool = True,
    stats: bool = True,
) -> InitScaleGuess:
    """Rescale `model`'s weights in place, layer by layer, until each pre-activation std is `target` ± `tol`.

    `y` (optional) only adds gradient stds to the before/after statistics; `stats=False` leaves both out
    (empty), for a caller that takes them once over several guesses. Deterministic: it draws no random
    numbers. Raises ProbeError naming the layer when its weights are all zero or its pre-activation std is 0
    or not finite on this batch (nothing to rescale), and for a bad batch or an unknown activation.
    """
    target, tol = _check(target, "target"), _check(tol, "tol")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ProbeError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    check_activation(model)
    x = check_batch(model, x)
    started = time.perf_counter()
    before = activation_stats(model, x, y) if stats else []
    n_layers = model.n_layers
    multipliers, iterations, converged = [1.0] * n_layers, [0] * n_layers, [True] * n_layers
    layers = range(n_layers) if include_output else range(n_layers - 1)
    with model.restoring():
        for layer in layers:
            iterations[layer], converged[layer] = _rescale(model, x, layer, target, tol, max_iter, multipliers)
    after = activation_stats(model, x, y) if stats else []
    return InitScaleGuess(
        multipliers=tuple(multipliers),
        iterations=tuple(iterations),
        converged=tuple(converged),
        target=target,
        tol=tol,
        before=tuple(before),
        after=tuple(after),
        seconds=time.perf_counter() - started,
    )


def _rescale(model: MLP, x: np.ndarray, layer: int, target: float, tol: float, max_iter: int,
             multipliers: list[float]) -> tuple[int, bool]:
    """LSUV's loop for one layer: (rescalings applied, converged); multiplies `multipliers[layer]` in place."""
    w = model.weights[layer]
    if not np.any(w):
        raise ProbeError(
            f"{_layer_name(model, layer)}: the weights are all zero, so rescaling cannot change them; "
            "use a random init scheme"
        )
    for iteration in range(max_iter + 1):
        model.forward(x)
        sigma = float(np.std(model.dense_outputs[layer], dtype=np.float64))
        if not math.isfinite(sigma):
            raise ProbeError(f"{_layer_name(model, layer)}: the pre-activation std is not finite ({sigma})")
        if sigma == 0.0:
            raise ProbeError(
                f"{_layer_name(model, layer)}: the pre-activation std is 0 on this batch "
                "(its inputs are all zero or constant), so it cannot be rescaled to a unit std"
            )
        if abs(sigma - target) < tol:
            return iteration, True
        if iteration == max_iter:
            break
        factor = target / sigma
        w *= w.dtype.type(factor)  # in place: `w` is a view into model.params
        multipliers[layer] *= factor
    return max_iter, False
