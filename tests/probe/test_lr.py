"""The learning-rate range test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.errors import ProbeError
from tuner.nn.data import load_dataset
from tuner.nn.mlp import MLP
from tuner.nn.train import train
from tuner.optim import make
from tuner.probe import lr_probe, plot
from tuner.probe.lr import BLOW_UP, ramp


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def digits_net(rng: np.random.Generator) -> MLP:
    return MLP([64, 128, 10], "relu", init="he", rng=rng)


@pytest.fixture(scope="module")
def sgd_result(digits):
    return lr_probe(digits_net, "sgd", digits, batch_size=64, rng=np.random.default_rng(0))


def test_ramp_is_exponential_from_eps_min_to_eps_max():
    rates = ramp(1e-6, 10.0, 100)
    assert rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(10.0)
    assert np.diff(np.log(rates)) == pytest.approx(np.full(99, np.log(1e7) / 99))


def test_curve_smoothing_and_stop(sgd_result):
    r = sgd_result
    n = len(r.losses)
    assert len(r.rates) == len(r.smoothed) == n and 10 < n <= 100
    assert r.rates == pytest.approx(tuple(ramp(1e-6, 10.0, 100)[:n]))
    assert r.smoothed[0] == pytest.approx(r.losses[0])  # bias correction: the first value is the loss itself
    m = 0.0
    for k, loss in enumerate(r.losses):  # m_k = β m_{k-1} + (1-β) L_k ; L̂_k = m_k / (1 - β^(k+1))
        m = 0.98 * m + 0.02 * loss
        if math.isfinite(m):
            assert r.smoothed[k] == pytest.approx(m / (1 - 0.98 ** (k + 1)))
    assert r.stop_reason in ("blow-up", "non-finite")
    if r.stop_reason == "blow-up":
        assert r.smoothed[-1] > BLOW_UP * min(r.smoothed[:-1])
    assert r.min_rate == r.rates[int(np.nanargmin(r.smoothed))]
    assert r.suggestion == pytest.approx(r.min_rate / 10)
    assert (r.low, r.high) == pytest.approx((r.suggestion / 10, r.suggestion * 10))


def test_deterministic_and_restores_a_model(digits, sgd_result):
    again = lr_probe(digits_net, "sgd", digits, batch_size=64, rng=np.random.default_rng(0))
    assert again.losses == sgd_result.losses and again.suggestion == sgd_result.suggestion
    model = digits_net(np.random.default_rng(0))
    before = model.params.copy()
    first = lr_probe(model, "sgd", digits, batch_size=64, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(model.params, before)
    second = lr_probe(model, "sgd", digits, batch_size=64, rng=np.random.default_rng(1))
    assert first.losses == second.losses


def test_momentum_state_carries_over(digits):
    r = lr_probe(digits_net, "momentum", digits, hparams={"alpha": 0.9}, steps=60, batch_size=64,
                 rng=np.random.default_rng(0))
    assert r.hparams == {"alpha": 0.9}
    assert r.suggestion < 1.0


def _train(digits, eps0: float, epochs: int = 10):
    rng = np.random.default_rng(1)
    model = digits_net(rng)
    return train(model, make("sgd", eps0=eps0), digits, epochs, 64, rng)


def test_suggested_rate_trains_and_ten_times_it_does_not(digits, sgd_result):
    good = _train(digits, sgd_result.suggestion)
    bad = _train(digits, 10 * sgd_result.suggestion)
    assert not good.diverged
    assert good.final.val_loss < 0.3
    assert bad.diverged or bad.best.val_loss > 1.5 * good.best.val_loss


def test_plot_writes_a_png(tmp_path, sgd_result):
    path = plot(sgd_result, tmp_path / "lr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments(digits):
    with pytest.raises(ProbeError, match="batch size 5000 is larger than the training data"):
        lr_probe(digits_net, "sgd", digits, batch_size=5000, rng=np.random.default_rng(0))
    with pytest.raises(ProbeError, match="eps_min must be < eps_max"):
        lr_probe(digits_net, "sgd", digits, eps_min=1.0, eps_max=0.1, rng=np.random.default_rng(0))
    with pytest.raises(ProbeError, match="steps"):
        lr_probe(digits_net, "sgd", digits, steps=1, rng=np.random.default_rng(0))
