"""Every optimizer's update as one compiled loop over its arrays, when Numba is installed (`tuner[fast]`).

NumPy applies an update rule one operation at a time: the chunked form (`Optimizer._chunks`) fetches
each chunk from memory once, but still runs 2 to 12 passes over it in L2 and one call per operation and
chunk. A compiled loop reads each element of θ, g and the state once and writes it once. On 669,706
float32 parameters: momentum 292 µs a step against 438, Adam 399 against 1,161, and in the training loop
an Adam epoch 13% shorter (bench/RESULTS.md, "Fused updates").

Each loop body is the operations of the optimizer's NumPy rule, on the same dtype, in the same order,
with no fast-math: IEEE arithmetic rounds each operation the same way in both, so the two give the same
bits (tests/optim/test_fused.py holds them to that). Scalars are passed in the parameters' dtype; a
Python float literal in a loop body would make Numba compute in float64, so there is none.

`kernels()` imports Numba on first use (about 0.2 s); a process's first call of a loop takes about 0.25 s
more (Numba compiles it, or loads it from its cache next to this file, and sets up LLVM either way).
`TUNER_FUSED=0` in the environment turns the loops off: the NumPy rules run instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

ENV_VAR = "TUNER_FUSED"


@functools.cache
def kernels() -> SimpleNamespace | None:
    """The compiled update loops, or None when Numba is not installed or `TUNER_FUSED=0`."""
    if os.environ.get(ENV_VAR, "1").strip() == "0":
        return None
    try:
        import numba  # noqa: PLC0415 - 0.3 s of import, paid only by a run whose arrays are large enough
    except ImportError:
        return None
    try:
        return _loops(numba.njit(cache=True, error_model="numpy"))
    except RuntimeError:  # nowhere to write Numba's cache (a read-only install, no home): compile in memory
        return _loops(numba.njit(cache=False, error_model="numpy"))


def _loops(jit: Callable) -> SimpleNamespace:
    """Each optimizer's loop, compiled by `jit` on its first call for each dtype."""
    @jit
    def sgd(theta, g, lr):
        for i in range(theta.size):
            theta[i] -= g[i] * lr

    @jit
    def momentum(theta, g, v, lr, alpha):
        for i in range(theta.size):
            vi = v[i] * alpha - g[i] * lr
            v[i] = vi
            theta[i] += vi

    # The Nesterov variants' NumPy rules keep α·v in an array between the look-ahead and the update; a loop
    # computes it again from v instead (the same product of the same numbers: the same bits), one array
    # less to write and read back.
    @jit
    def look_ahead(theta, v, kept, alpha):
        for i in range(theta.size):
            kept[i] = theta[i]
            theta[i] += v[i] * alpha

    @jit
    def nesterov(theta, g, v, kept, lr, alpha):
        for i in range(theta.size):
            vi = v[i] * alpha - g[i] * lr
            v[i] = vi
            theta[i] = kept[i] + vi

    @jit
    def adagrad(theta, g, r, lr, delta):
        for i in range(theta.size):
            gi = g[i]
            ri = r[i] + gi * gi
            r[i] = ri
            theta[i] -= gi / (np.sqrt(ri) + delta) * lr

    @jit
    def rmsprop(theta, g, r, lr, rho, one_minus_rho, delta):
        for i in range(theta.size):
            gi = g[i]
            ri = r[i] * rho + gi * one_minus_rho * gi
            r[i] = ri
            theta[i] -= gi / np.sqrt(ri + delta) * lr

    @jit
    def rmsprop_nesterov(theta, g, r, v, kept, lr, alpha, rho, one_minus_rho, delta):
        for i in range(theta.size):
            gi = g[i]
            ri = r[i] * rho + gi * one_minus_rho * gi
            r[i] = ri
            vi = v[i] * alpha - gi / np.sqrt(ri + delta) * lr
            v[i] = vi
            theta[i] = kept[i] + vi

    @jit
    def adam(theta, g, s, r, rate, rho1, one_minus_rho1, rho2, one_minus_rho2, delta):
        for i in range(theta.size):
            gi = g[i]
            si = s[i] * rho1 + gi * one_minus_rho1
            s[i] = si
            ri = r[i] * rho2 + gi * one_minus_rho2 * gi
            r[i] = ri
            theta[i] -= si / (np.sqrt(ri) + delta) * rate

    return SimpleNamespace(sgd=sgd, momentum=momentum, look_ahead=look_ahead, nesterov=nesterov, adagrad=adagrad,
                           rmsprop=rmsprop, rmsprop_nesterov=rmsprop_nesterov, adam=adam)
