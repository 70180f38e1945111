"""Gradient clipping by global norm (Goodfellow et al., *Deep Learning*, sec. 10.11.1; Pascanu et al. 2013).

    if ‖g‖ > c:  g ← g · c/‖g‖

‖g‖ is the L2 norm over all parameters at once (they live in one flat array), so the direction of the
step is kept and only its length is capped. This guards against exploding gradients: a cliff in the loss
surface would otherwise throw the parameters far away in one step.

PyTorch's `clip_grad_norm_` scales by c/(‖g‖ + 1e-6); here the factor is exactly c/‖g‖, so a clipped
gradient has norm c (up to rounding).
"""

from __future__ import annotations

import math

import numpy as np


def clip_by_global_norm(grad: np.ndarray, max_norm: float) -> float:
    """Scale `grad` in place so that its L2 norm is at most `max_norm`; return the norm before clipping.

    A non-finite norm is returned unchanged and the gradient left alone: the training loop's divergence
    check is what should end such a run, not a silent rescaling to NaN.
    """
    flat = grad.reshape(-1)
    with np.errstate(over="ignore"):
        norm = math.sqrt(float(np.dot(flat, flat)))  # BLAS dot: one pass over memory, no temporary
    if not math.isfinite(norm) and np.isfinite(flat).all():
        # The squares overflowed float32 although every entry is finite: the rare case clipping is for.
        wide = flat.astype(np.float64)
        norm = math.sqrt(float(np.dot(wide, wide)))
    if norm > max_norm and math.isfinite(norm):
        grad *= grad.dtype.type(max_norm / norm)
    return norm
