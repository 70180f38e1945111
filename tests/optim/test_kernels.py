"""The fused, chunked update of every optimizer against the formula of ALGORITHMS.md in plain NumPy.

Each step is checked on its own: the reference starts from a copy of the optimizer's θ and state just
before the step and applies the book's rule to whole arrays, in the same dtype, written as the book
writes it (Adam with ŝ and r̂, RMSProp with δ inside the root). The two must agree to within a few ulps
of the magnitudes the rule combines, on arrays of several chunks (the last one partial) and on a small
one (a single chunk), in float32 and float64, over three steps of a decaying rate.
"""

from __future__ import annotations

import numpy as np
import pytest

from tuner.optim import HYPERPARAMETERS, OPTIMIZERS, make
from tuner.optim._base import CHUNK_BYTES

ULPS = 4
HPARAMS = {"eps0": 0.1, "eps_tau": 0.02, "tau": 3, "alpha": 0.9, "rho": 0.8, "rho1": 0.8, "rho2": 0.95}
STEPS = 3


def reference_step(name, k, theta, state, gradient_at):
    """One step of `name` from θ and `state`: (θ', state', the magnitude each new array combines)."""
    h = HPARAMS
    eps = (1 - k / h["tau"]) * h["eps0"] + k / h["tau"] * h["eps_tau"]  # eq. 8.14, k < τ here
    delta = make(name).delta if "delta" in HYPERPARAMETERS[name] else None  # each optimizer's default
    if name in ("nesterov", "rmsprop_nesterov"):
        interim = theta + h["alpha"] * state["v"]
        g = gradient_at(interim)
    else:
        g = gradient_at(theta)
    new, scale = {}, {}
    if name == "sgd":
        change = -eps * g
    elif name in ("momentum", "nesterov"):
        new["v"] = h["alpha"] * state["v"] - eps * g
        scale["v"] = np.abs(h["alpha"] * state["v"]) + np.abs(eps * g)
        change = new["v"]
    elif name == "adagrad":
        new["r"] = state["r"] + g * g
        change = -eps / (delta + np.sqrt(new["r"])) * g
    elif name in ("rmsprop", "rmsprop_nesterov"):
        new["r"] = h["rho"] * state["r"] + (1 - h["rho"]) * g * g
        change = -eps / np.sqrt(delta + new["r"]) * g
        if name == "rmsprop_nesterov":
            new["v"] = h["alpha"] * state["v"] + change
            scale["v"] = np.abs(h["alpha"] * state["v"]) + np.abs(change)
            change = new["v"]
    else:  # adam
        t = k + 1
        new["s"] = h["rho1"] * state["s"] + (1 - h["rho1"]) * g
        new["r"] = h["rho2"] * state["r"] + (1 - h["rho2"]) * g * g
        scale["s"] = np.abs(h["rho1"] * state["s"]) + np.abs((1 - h["rho1"]) * g)
        s_hat, r_hat = new["s"] / (1 - h["rho1"] ** t), new["r"] / (1 - h["rho2"] ** t)
        change = -eps * s_hat / (np.sqrt(r_hat) + delta)
    scale.setdefault("r", new.get("r"))  # r is a sum of non-negative terms: its own magnitude
    # θ + v carries v's rounding, which is relative to what v combined, not to v (they may cancel).
    scale["theta"] = np.abs(theta) + scale.get("v", np.abs(change))
    return theta + change, new, scale


def assert_within_ulps(actual, expected, scale, what):
    tolerance = ULPS * np.finfo(actual.dtype).eps * scale
    error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    bad = np.flatnonzero(error > tolerance)
    assert bad.size == 0, (
        f"{what}: {bad.size} of {actual.size} elements beyond {ULPS} ulps, e.g. [{bad[0]}]: "
        f"{actual[bad[0]]!r} vs {expected[bad[0]]!r} (scale {scale[bad[0]]!r})"
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", ["chunks", "small"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fused_update_equals_the_formula(name, size, dtype):
    n = 3 * CHUNK_BYTES // np.dtype(dtype).itemsize + 1234 if size == "chunks" else 7
    rng = np.random.default_rng(7)
    params = rng.standard_normal(n).astype(dtype)
    grad = np.zeros_like(params)
    curvature = rng.uniform(0.1, 3.0, n).astype(dtype)
    offsets = [rng.standard_normal(n).astype(dtype) for _ in range(STEPS)]
    seen = []

    def gradient_at(point, k):
        return curvature * point + offsets[k]

    def closure():
        seen.append(params.copy())
        np.copyto(grad, gradient_at(params, len(seen) - 1))
        return 0.0

    takes = ("eps0", "eps_tau", "tau", *HYPERPARAMETERS[name])
    opt = make(name, **{key: value for key, value in HPARAMS.items() if key in takes})
    opt.start(params, STEPS)
    lengths = [part.stop - part.start for part in opt._parts]
    assert len(lengths) == (3 if size == "chunks" else 1) and sum(lengths) == n
    assert size == "small" or lengths[-1] < lengths[0]  # a partial last chunk
    arrays = dict(opt.state)
    for k in range(STEPS):
        theta, state = params.copy(), {key: value.copy() for key, value in opt.state.items()}
        expected, new_state, scale = reference_step(name, k, theta, state, lambda p, k=k: gradient_at(p, k))
        opt.step(params, grad, closure)
        if name in ("nesterov", "rmsprop_nesterov"):
            interim = theta + HPARAMS["alpha"] * state["v"]
            assert_within_ulps(seen[-1], interim, np.abs(theta) + np.abs(interim - theta), f"{name} θ̃, step {k}")
        assert params.dtype == dtype
        assert_within_ulps(params, expected, scale["theta"], f"{name} θ, step {k}")
        for key, value in new_state.items():
            assert_within_ulps(opt.state[key], value, scale[key], f"{name} {key}, step {k}")
    # In place: the state arrays are the ones `start` allocated, not new ones.
    assert all(opt.state[key] is array for key, array in arrays.items())
