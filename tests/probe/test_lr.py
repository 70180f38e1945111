"""The learning-rate range test: a lag-free reading, checked on curves worked by hand and on a quadratic
whose stability limit is known."""

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
from tuner.probe.lr import (
    LEAD_DECADES,
    RISE,
    centred_mean,
    combine_edges,
    half_width,
    ramp,
    read_sweep,
    suggestion_divisor,
    sweep_edge,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def digits_net(rng: np.random.Generator) -> MLP:
    return MLP([64, 128, 10], "relu", init="he", rng=rng)


@pytest.fixture(scope="module")
def sgd_result(digits):
    return lr_probe(digits_net, "sgd", digits, repeats=3, batch_size=64, rng=np.random.default_rng(0))


def test_ramp_is_exponential_from_eps_min_to_eps_max():
    rates = ramp(1e-6, 10.0, 100)
    assert rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(10.0)
    assert np.diff(np.log(rates)) == pytest.approx(np.full(99, np.log(1e7) / 99))
    assert half_width(1e-5, 10.0, 100) == 8  # half a decade of a 6-decade, 100-step ramp: 100 / 12 = 8.3


def test_centred_mean_by_hand():
    assert centred_mean(np.array([1.0, 2.0, 3.0, 4.0, 9.0]), 1) == pytest.approx([1.5, 2.0, 3.0, 16 / 3, 6.5])


def test_a_symmetric_valley_is_read_where_it_is():
    # |k - 40| + 10 on k = 0..59, then the loss blows up. With h = 2 the centred mean at k = 40 is
    # (12+11+10+11+12)/5 = 11.2, its minimum: the bottom is read at 40 exactly (no lag). Past it the means are
    # 11.4, 12, 13 (k = 41..43) and 14 at k = 44, the first above 1.2 x 11.2 = 13.44: the edge.
    losses = [abs(k - 40) + 10.0 for k in range(60)] + [1e3, math.inf]
    sweep = read_sweep(losses, 2, "non-finite")
    assert sweep.min_index == 40 and sweep.smoothed[40] == pytest.approx(11.2)
    assert sweep.edge_index == 44
    assert RISE == 0.2
    # An exponential moving average (β = 0.98, bias-corrected) of the same losses bottoms out far later:
    m, ema = 0.0, []
    for k, loss in enumerate(losses[:60]):
        m = 0.98 * m + 0.02 * loss
        ema.append(m / (1 - 0.98 ** (k + 1)))
    assert int(np.argmin(ema)) >= 50  # 10+ steps late: a tenth of a 100-step sweep


def test_a_loss_that_never_rises_puts_the_edge_at_the_last_rate():
    sweep = read_sweep([5.0 - 0.01 * k for k in range(50)], 3, "eps_max")
    assert sweep.min_index == 49 and sweep.edge_index == 49
    with pytest.raises(ProbeError, match="not finite from the first step"):
        read_sweep([math.nan, 1.0], 1, "non-finite")


def _regression(seed: int = 0, n: int = 256, d: int = 8) -> tuple[np.ndarray, np.ndarray, float]:
    """A linear regression and the largest eigenvalue L of its loss's Hessian.

    The network is [x 1]·(w, b), the loss mean((x w + b − y)²): its Hessian in (w, b) is (2/n)·AᵀA with
    A = [X 1], the same at every point (a quadratic). Gradient descent is stable iff ε < 2/L.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.geomspace(0.3, 3.0, d)
    y = x @ rng.normal(size=(d, 1)) + 0.1 * rng.normal(size=(n, 1))
    a = np.hstack([x, np.ones((n, 1))])
    return x, y, float(np.linalg.eigvalsh(2 * a.T @ a / n).max())


def _linear(rng: np.random.Generator) -> MLP:
    return MLP([8, 1], "linear", loss="mse", init="lecun", dtype=np.float64, rng=rng)


@pytest.mark.parametrize(("optimizer", "hparams", "limit_times_l"), [("sgd", {}, 2.0), ("momentum", {"alpha": 0.5}, 3.0)])
def test_the_edge_of_a_quadratic_is_its_stability_limit(optimizer, hparams, limit_times_l):
    # Gradient descent on a quadratic: stable iff ε L < 2; heavy-ball momentum (Alg. 8.2): iff ε L < 2(1 + α).
    x, y, curvature = _regression()
    limit = limit_times_l / curvature
    result = lr_probe(_linear, optimizer, (x, y), hparams=hparams, batch_size=32, repeats=3,
                      rng=np.random.default_rng(1))
    # the centred mean sees the blow-up coming up to half a decade early; minibatch noise moves it too
    assert limit / 3 < result.edge < 2 * limit
    assert result.suggestion == pytest.approx(result.edge / suggestion_divisor(result.optimizer))
    # the suggestion is a stable rate: full-batch descent at it converges
    model = _linear(np.random.default_rng(2))
    opt = make(optimizer, eps0=result.suggestion, eps_tau=result.suggestion, **hparams)
    opt.start(model.params, 500)
    first = model.loss(x, y)
    for _ in range(500):
        opt.step(model.params, model.grad, lambda: model.loss_and_grad(x, y))
    assert model.loss(x, y) < 0.05 * first


def test_reading_and_stop(sgd_result):
    r = sgd_result
    assert len(r.sweeps) == 3 and len(r.rates) == 100
    for sweep in r.sweeps:
        assert sweep.stop_reason in ("blow-up", "non-finite")
        assert 10 < len(sweep.losses) <= 100
        finite = [v for v in sweep.losses if math.isfinite(v)]
        assert list(sweep.smoothed) == pytest.approx(list(centred_mean(np.asarray(finite), half_width(1e-5, 10.0, 100))))
        assert sweep.smoothed[sweep.edge_index] > (1 + RISE) * sweep.smoothed[sweep.min_index]
        assert all(s <= (1 + RISE) * sweep.smoothed[sweep.min_index]
                   for s in sweep.smoothed[sweep.min_index : sweep.edge_index])
    assert r.edge == pytest.approx(combine_edges(list(r.edges)))
    assert r.note is None and r.fall > 0.5


def test_later_sweeps_run_the_same_ramp_from_two_decades_below_the_first_edge(sgd_result):
    r = sgd_result
    first_edge = sweep_edge(r.rates, r.sweeps[0])
    start = r.sweeps[1].start
    assert r.sweeps[0].start == 0 and all(s.start == start for s in r.sweeps[1:])
    assert r.rates[start - 1] < first_edge / 10**LEAD_DECADES <= r.rates[start]
    assert r.steps_run == sum(len(s.losses) for s in r.sweeps) < 3 * len(r.rates)
    # an edge is read in the sweep's own steps, at the rate of the ramp's step it reached
    for s in r.sweeps[1:]:
        assert sweep_edge(r.rates, s) == r.rates[start + s.edge_index]
        assert len(s.losses) <= len(r.rates) - start


def test_without_a_lead_every_sweep_runs_the_whole_ramp(digits, sgd_result):
    full = lr_probe(digits_net, "sgd", digits, repeats=3, lead_decades=None, rng=np.random.default_rng(0))
    assert [s.start for s in full.sweeps] == [0, 0, 0]
    assert full.sweeps[0].losses == sgd_result.sweeps[0].losses  # the first sweep is the same either way
    assert full.steps_run > sgd_result.steps_run


def test_the_budget_caps_the_steps_of_all_sweeps(digits):
    kwargs = {"batch_size": 64, "rng": np.random.default_rng(0)}
    full = lr_probe(digits_net, "sgd", digits, repeats=12, **kwargs)
    assert len(full.sweeps) == 12  # no budget: exactly `repeats`
    capped = lr_probe(digits_net, "sgd", digits, repeats=12, budget=250, **kwargs | {"rng": np.random.default_rng(0)})
    assert [s.losses for s in capped.sweeps] == [s.losses for s in full.sweeps[: len(capped.sweeps)]]
    nominal = len(full.rates) - full.sweeps[1].start  # what a later sweep may take at most
    assert capped.steps_run <= 250 < capped.steps_run + nominal
    assert 2 <= len(capped.sweeps) < 12


def test_combine_edges_by_hand():
    # logs 0, 0, 0, 0 and 6 decades: the outlier is clipped to half a decade above the median, so the edge
    # is 10^(0.5 / 5) = 10^0.1; a sweep that never rose moves it by a tenth of a decade, not by 1.2 decades
    assert combine_edges([1.0, 1.0, 1.0, 1.0, 1e6]) == pytest.approx(10**0.1)
    assert combine_edges([0.1, 0.4]) == pytest.approx(0.2)  # two: their geometric mean
    assert combine_edges([0.3]) == pytest.approx(0.3)


def test_deterministic_and_restores_a_model(digits, sgd_result):
    again = lr_probe(digits_net, "sgd", digits, repeats=3, batch_size=64, rng=np.random.default_rng(0))
    assert [s.losses for s in again.sweeps] == [s.losses for s in sgd_result.sweeps]
    model = digits_net(np.random.default_rng(0))
    before = model.params.copy()
    first = lr_probe(model, "sgd", digits, repeats=2, batch_size=64, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(model.params, before)
    second = lr_probe(model, "sgd", digits, repeats=2, batch_size=64, rng=np.random.default_rng(1))
    assert [s.losses for s in first.sweeps] == [s.losses for s in second.sweeps]


def test_stable_across_seeds(digits):
    # The study's seed changes the network's initialisation and the minibatches: the edge moves little.
    edges = [lr_probe(digits_net, "sgd", digits, repeats=3, rng=np.random.default_rng(s)).edge for s in range(3)]
    assert max(edges) / min(edges) < 1.6


def test_fixed_hyperparameters_reach_the_optimizer(digits):
    plain = lr_probe(digits_net, "momentum", digits, hparams={"alpha": 0.0, "eps0": 1.0}, rng=np.random.default_rng(0))
    heavy = lr_probe(digits_net, "momentum", digits, hparams={"alpha": 0.9}, rng=np.random.default_rng(0))
    assert plain.hparams == {"alpha": 0.0} and heavy.hparams == {"alpha": 0.9}  # the ramp owns the rate
    assert plain.sweeps[0].losses[0] == heavy.sweeps[0].losses[0]  # same network, same first batch
    assert plain.sweeps[0].losses[1:5] != heavy.sweeps[0].losses[1:5]


def _train(digits, eps0: float, epochs: int = 10):
    rng = np.random.default_rng(1)
    return train(digits_net(rng), make("sgd", eps0=eps0), digits, epochs, 64, rng)


def test_suggested_rate_trains_and_ten_times_the_edge_does_not(digits, sgd_result):
    good = _train(digits, sgd_result.suggestion)
    bad = _train(digits, 10 * sgd_result.edge)
    assert not good.diverged and good.final.val_loss < 0.3
    assert bad.diverged


def test_plot_writes_a_png(tmp_path, sgd_result):
    path = plot(sgd_result, tmp_path / "lr.png", search_range=(0.01, 1.0))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments(digits):
    with pytest.raises(ProbeError, match="batch size 5000 is larger than the training data"):
        lr_probe(digits_net, "sgd", digits, batch_size=5000, rng=np.random.default_rng(0))
    with pytest.raises(ProbeError, match="eps_min must be < eps_max"):
        lr_probe(digits_net, "sgd", digits, eps_min=1.0, eps_max=0.1, rng=np.random.default_rng(0))
    with pytest.raises(ProbeError, match="steps must be an integer >= 8, got 1"):
        lr_probe(digits_net, "sgd", digits, steps=1, rng=np.random.default_rng(0))
    with pytest.raises(ProbeError, match="repeats must be an integer >= 1, got 0"):
        lr_probe(digits_net, "sgd", digits, repeats=0, rng=np.random.default_rng(0))
    with pytest.raises(ProbeError, match="budget must be an integer >= 100, got 50"):
        lr_probe(digits_net, "sgd", digits, budget=50, rng=np.random.default_rng(0))
