"""Initial weights and biases of a dense layer (W is fan_in x fan_out, m = fan_in, n = fan_out).

Every scheme is a base distribution times the per-layer multiplier `scale` (default 1), the "initial scale"
the studies tune (Goodfellow et al., *Deep Learning*, sec. 8.4):

    zeros           0                                   (no asymmetry: every unit of a layer stays identical)
    small           0.01·N(0, 1)
    lecun           N(0, 1)/√m                          Var(w) = 1/m keeps Var(s) = Var(x)
    he              N(0, 1)·√(2/m)                      ReLU switches half the units off: twice the variance
    uniform_fan_in  U(−1/√m, 1/√m)
    glorot_uniform  U(−√(6/(m+n)), √(6/(m+n)))          eq. 8.23
    orthogonal      gain·Q, Q from the QR of a Gaussian  option `gain` (default 1)
    sparse          exactly k non-zeros N(0, σ²) per unit options `k` (default 10, capped at m), `sigma` (1)

Orthogonal (Saxe et al. 2014): Q comes from the reduced QR of an N(0, 1) matrix of shape
max(m, n) x min(m, n), with each column multiplied by the sign of R's diagonal so that Q is uniformly
(Haar) distributed, as `torch.nn.init.orthogonal_` does; W = Q when m >= n (then WᵀW = gain²·I), W = Qᵀ when
m < n (then WWᵀ = gain²·I). `default_gain(activation)` gives the usual gain per non-linearity.

Sparse (Martens 2010): each unit (column) gets exactly k incoming weights drawn from N(0, σ²), at rows chosen
uniformly without replacement; the others are 0, so a unit's total input does not grow with m.

Biases: `zeros`; `constant` (a small positive value such as 0.01 or 0.1 keeps ReLU units active at the
start); `class_frequencies` for a softmax output layer: b = log c with c normalised to sum to 1, so that
softmax(b) = c, the training-set class frequencies.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tuner.domains import Domain
from tuner.errors import HyperparameterError

SCALE = Domain(0.0)  # a scheme's multiplier, the per-layer init scale the studies tune
SCHEMES = ("zeros", "small", "lecun", "he", "uniform_fan_in", "glorot_uniform", "orthogonal", "sparse")
BIASES = ("zeros", "constant", "class_frequencies")
OPTIONS: dict[str, tuple[str, ...]] = {"orthogonal": ("gain",), "sparse": ("k", "sigma")}
SPARSE_K = 10
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def default_gain(activation: str, *, slope: float = 0.01) -> float:
    """The orthogonal gain that preserves activation scale through `activation` (as `torch.nn.init.calculate_gain`).

    relu √2, leaky_relu √(2/(1 + slope²)), tanh 5/3, sigmoid and linear 1.
    """
    gains = {"relu": math.sqrt(2.0), "leaky_relu": math.sqrt(2.0 / (1.0 + slope**2)), "tanh": 5.0 / 3.0}
    if activation not in (*gains, "sigmoid", "linear"):
        raise HyperparameterError(
            f"unknown activation {activation!r}; known: relu, leaky_relu, tanh, sigmoid, linear"
        )
    return gains.get(activation, 1.0)


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise HyperparameterError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise HyperparameterError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in _DTYPES:
        raise HyperparameterError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def weights(
    scheme: str,
    fan_in: int,
    fan_out: int,
    *,
    scale: float = 1.0,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float32,
    **options: float,
) -> np.ndarray:
    """A fan_in x fan_out weight matrix drawn from `scheme` times `scale` (see the module docstring).

    Draws in float64 from `rng`, then casts to `dtype`. Raises HyperparameterError for an unknown scheme,
    an option the scheme does not take, or a value out of its domain.
    """
    if scheme not in SCHEMES:
        raise HyperparameterError(f"unknown init scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    takes = OPTIONS.get(scheme, ())
    for key in options:
        if key not in takes:
            known = f"it takes {', '.join(takes)}" if takes else "it takes none"
            raise HyperparameterError(f"init scheme {scheme} does not take option {key!r} ({known})")
    m, n = _size("fan_in", fan_in), _size("fan_out", fan_out)
    scale = SCALE.check("init_scale", scale)
    dt = _dtype(dtype)
    if not isinstance(rng, np.random.Generator):
        raise HyperparameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")

    if scheme == "zeros":
        return np.zeros((m, n), dtype=dt)
    if scheme == "small":
        w = 0.01 * rng.standard_normal((m, n))
    elif scheme == "lecun":
        w = rng.standard_normal((m, n)) / math.sqrt(m)
    elif scheme == "he":
        w = rng.standard_normal((m, n)) * math.sqrt(2.0 / m)
    elif scheme == "uniform_fan_in":
        w = rng.uniform(-1.0 / math.sqrt(m), 1.0 / math.sqrt(m), (m, n))
    elif scheme == "glorot_uniform":
        limit = math.sqrt(6.0 / (m + n))
        w = rng.uniform(-limit, limit, (m, n))
    elif scheme == "orthogonal":
        w = _positive("gain", options.get("gain", 1.0)) * _orthogonal(m, n, rng)
    else:
        k = min(_size("k", options.get("k", SPARSE_K)), m)
        w = _sparse(m, n, k, _positive("sigma", options.get("sigma", 1.0)), rng)
    w *= scale
    return w.astype(dt)


def _orthogonal(m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((max(m, n), min(m, n)))
    q, r = np.linalg.qr(a)  # reduced: q is max x min with orthonormal columns
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)  # sign correction: Haar-distributed Q
    return q if m >= n else q.T


def _sparse(m: int, n: int, k: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    rows = np.argsort(rng.random((m, n)), axis=0)[:k]  # per column, k distinct rows uniformly at random
    w = np.zeros((m, n))
    w[rows, np.arange(n)] = sigma * rng.standard_normal((k, n))
    return w


def biases(
    kind: str,
    fan_out: int,
    *,
    value: float = 0.0,
    class_frequencies: np.ndarray | None = None,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """The initial bias vector of a layer with `fan_out` units.

    `zeros`; `constant` (every entry `value`); `class_frequencies` (b = log(c / Σc), so softmax(b) equals
    the normalised frequencies; every frequency must be > 0).
    """
    if kind not in BIASES:
        raise HyperparameterError(f"unknown bias kind {kind!r}; known: {', '.join(BIASES)}")
    n = _size("fan_out", fan_out)
    dt = _dtype(dtype)
    if kind == "zeros":
        return np.zeros(n, dtype=dt)
    if kind == "constant":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise HyperparameterError(f"bias_value must be a finite number, got {value!r}")
        return np.full(n, value, dtype=dt)
    if class_frequencies is None:
        raise HyperparameterError("bias class_frequencies needs the class frequencies, got None")
    c = np.asarray(class_frequencies, dtype=np.float64)
    if c.shape != (n,):
        raise HyperparameterError(f"class_frequencies must have one value per output ({n}), got shape {c.shape}")
    bad = np.flatnonzero(~np.isfinite(c) | (c <= 0))
    if bad.size:
        raise HyperparameterError(
            f"class_frequencies must be finite and > 0, got {c[bad[0]]} for class {int(bad[0])}"
        )
    return np.log(c / c.sum()).astype(dt)
