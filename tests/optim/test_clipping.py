"""Gradient clipping by global norm: g ← g·c/‖g‖ when ‖g‖ > c, in place."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.optim import clip_by_global_norm


def test_a_long_gradient_is_scaled_to_the_limit_keeping_its_direction():
    g = np.array([3.0, 0.0, -4.0], dtype=np.float32)
    norm = clip_by_global_norm(g, 2.5)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(g, [1.5, 0.0, -2.0], rtol=1e-6)
    assert g.dtype == np.float32


def test_a_short_gradient_is_left_alone():
    g = np.array([0.3, 0.4])
    before = g.copy()
    assert clip_by_global_norm(g, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(g, before)


def test_the_norm_is_global_over_a_2d_array():
    g = np.full((4, 25), 0.5)  # ‖g‖ = √(100·0.25) = 5
    clip_by_global_norm(g, 1.0)
    assert np.linalg.norm(g) == pytest.approx(1.0)
    assert np.all(g == g.flat[0])


def test_squares_that_overflow_float32_still_clip():
    g = np.array([3e20, -4e20], dtype=np.float32)  # Σg² overflows float32, ‖g‖ = 5e20 does not
    norm = clip_by_global_norm(g, 1.0)
    assert norm == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(g, [0.6, -0.8], rtol=1e-5)


def test_a_non_finite_gradient_is_left_for_the_divergence_check():
    g = np.array([np.inf, 1.0], dtype=np.float32)
    assert clip_by_global_norm(g, 1.0) == np.inf
    assert g[1] == 1.0
