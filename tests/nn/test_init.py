"""Init schemes: empirical moments against the formulas of ALGORITHMS.md, structure, biases, argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.errors import HyperparameterError
from tuner.nn.init import SCHEMES, biases, default_gain, weights

M, N = 400, 300  # 120,000 draws: the sample variance is within ~1% of the true one


def draw(scheme: str, m: int = M, n: int = N, **kw) -> np.ndarray:
    return weights(scheme, m, n, rng=np.random.default_rng(0), dtype=np.float64, **kw)


@pytest.mark.parametrize(
    ("scheme", "variance"),
    [
        ("small", 1e-4),
        ("lecun", 1 / M),
        ("he", 2 / M),
        ("uniform_fan_in", 1 / (3 * M)),  # U(-a, a) has variance a²/3 with a = 1/√m
        ("glorot_uniform", 2 / (M + N)),  # a²/3 with a = √(6/(m+n))
    ],
)
def test_mean_and_variance_match_the_formula(scheme, variance):
    w = draw(scheme)
    assert w.shape == (M, N)
    assert abs(w.mean()) < 4 * math.sqrt(variance / w.size)
    assert w.var() == pytest.approx(variance, rel=0.03)


@pytest.mark.parametrize(("scheme", "bound"), [("uniform_fan_in", 1 / math.sqrt(M)), ("glorot_uniform", math.sqrt(6 / (M + N)))])
def test_uniform_schemes_stay_in_their_interval(scheme, bound):
    w = draw(scheme)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound


def test_scale_multiplies_every_scheme():
    for scheme in SCHEMES:
        np.testing.assert_allclose(draw(scheme, 20, 10, scale=0.5), 0.5 * draw(scheme, 20, 10), err_msg=scheme)


def test_zeros():
    assert not np.any(draw("zeros"))


@pytest.mark.parametrize(("m", "n"), [(64, 64), (100, 30), (30, 100)])
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2)])
def test_orthogonal_has_orthonormal_columns_or_rows(m, n, gain):
    w = draw("orthogonal", m, n, gain=gain)
    gram = w.T @ w if m >= n else w @ w.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(m, n)), atol=1e-12)


def test_sparse_has_exactly_k_gaussian_weights_per_unit():
    w = draw("sparse", 500, 400)
    assert np.all(np.count_nonzero(w, axis=0) == 10)
    assert w[w != 0].var() == pytest.approx(1.0, rel=0.05)
    w = draw("sparse", 500, 400, k=3, sigma=0.5)
    assert np.all(np.count_nonzero(w, axis=0) == 3)
    assert w[w != 0].var() == pytest.approx(0.25, rel=0.08)
    assert np.all(np.count_nonzero(draw("sparse", 4, 6), axis=0) == 4)  # k is capped at fan_in


def test_the_generator_alone_decides_the_draw():
    for scheme in SCHEMES:
        np.testing.assert_array_equal(draw(scheme, 9, 7), draw(scheme, 9, 7))
    assert weights("he", 3, 2, rng=np.random.default_rng(0)).dtype == np.float32


def test_default_gain():
    assert default_gain("relu") == pytest.approx(math.sqrt(2))
    assert default_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert default_gain("tanh") == pytest.approx(5 / 3)
    assert default_gain("sigmoid") == default_gain("linear") == 1.0


def test_bias_kinds():
    np.testing.assert_array_equal(biases("zeros", 3), np.zeros(3, dtype=np.float32))
    np.testing.assert_array_equal(biases("constant", 2, value=0.1, dtype=np.float64), [0.1, 0.1])


@pytest.mark.parametrize("frequencies", [[0.5, 0.3, 0.2], [50, 30, 20]])
def test_class_frequency_bias_reproduces_the_frequencies_through_softmax(frequencies):
    b = biases("class_frequencies", 3, class_frequencies=frequencies, dtype=np.float64)
    softmax = np.exp(b) / np.exp(b).sum()
    np.testing.assert_allclose(softmax, [0.5, 0.3, 0.2], rtol=1e-14)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: draw("xavier"), "unknown init scheme 'xavier'; known: zeros, small, lecun, he, uniform_fan_in, "
         "glorot_uniform, orthogonal, sparse"),
        (lambda: draw("he", gain=2.0), "init scheme he does not take option 'gain' (it takes none)"),
        (lambda: draw("sparse", k=3, gain=2.0), "init scheme sparse does not take option 'gain' (it takes k, sigma)"),
        (lambda: draw("he", scale=0.0), "init_scale must be > 0, got 0.0"),
        (lambda: draw("he", scale=-1), "init_scale must be > 0, got -1"),
        (lambda: draw("orthogonal", gain=-1.0), "gain must be a finite number > 0, got -1.0"),
        (lambda: draw("sparse", k=0), "k must be an integer >= 1, got 0"),
        (lambda: draw("he", 0, 3), "fan_in must be an integer >= 1, got 0"),
        (lambda: weights("he", 2, 2, rng=0), "rng must be a numpy.random.Generator, got int"),
        (lambda: weights("he", 2, 2, rng=np.random.default_rng(), dtype=np.int32), "dtype must be float32 or float64"),
        (lambda: biases("ones", 3), "unknown bias kind 'ones'; known: zeros, constant, class_frequencies"),
        (lambda: biases("class_frequencies", 3), "bias class_frequencies needs the class frequencies, got None"),
        (lambda: biases("class_frequencies", 3, class_frequencies=[0.5, 0.5]),
         "class_frequencies must have one value per output (3), got shape (2,)"),
        (lambda: biases("class_frequencies", 2, class_frequencies=[1.0, 0.0]),
         "class_frequencies must be finite and > 0, got 0.0 for class 1"),
    ],
)
def test_bad_values_are_rejected_with_the_value_named(call, message):
    with pytest.raises(HyperparameterError) as info:
        call()
    assert message in str(info.value)
