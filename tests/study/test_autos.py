"""Resolving "auto" init scales and eps0 in a spec with the probes."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from tuner.errors import SpecError
from tuner.nn.data import load_dataset
from tuner.study.autos import (
    has_auto,
    resolve_auto,
    resolve_spec_autos,
    warm_start_params,
)
from tuner.study.params import PerLayer, Range
from tuner.study.space import suggest
from tuner.study.spec import parse_spec

SPEC = """
[study]
name = "auto"
seed = 3
[data]
source = "digits"
[model]
hidden = [32, 32]
activation = "tanh"
[train]
epochs = 2
batch_size = 64
[search]
optimizer = {optimizer}
eps0 = "auto"
init = "lecun"
init_scale = "auto"
"""


def spec(optimizer: str = '"sgd"', **replace: str):
    text = SPEC.format(optimizer=optimizer)
    for old, new in replace.items():
        text = text.replace(old, new)
    return parse_spec(text)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=3)


def test_resolves_both_autos_and_records_are_json(digits):
    resolved, init_rec, lr_rec = resolve_spec_autos(spec(), digits)
    assert not has_auto(resolved)
    guess = init_rec["multipliers"]
    assert len(guess) == 3 and init_rec["scheme"] == "lecun"
    ranges = resolved.search.init_scale
    assert isinstance(ranges, PerLayer)
    for g, r in zip(guess, ranges.values):
        assert (r.low, r.high, r.log) == pytest.approx((g / 4, g * 4, True))
    eps0 = resolved.search.eps0
    assert isinstance(eps0, Range) and eps0.log
    sgd = lr_rec["optimizers"]["sgd"]
    assert (eps0.low, eps0.high) == pytest.approx(tuple(sgd["range"]))
    assert lr_rec["scales"] == guess  # the probe starts from the guessed initialisation
    json.dumps(init_rec), json.dumps(lr_rec)
    again = resolve_spec_autos(spec(), digits)
    assert again[1]["multipliers"] == guess and again[2]["range"] == lr_rec["range"]  # seeded by the study


def test_warm_start_is_the_first_trial(digits):
    resolved, init_rec, lr_rec = resolve_spec_autos(spec('["sgd", "momentum"]'), digits)
    params = warm_start_params(resolved, init_rec, lr_rec)
    assert params["optimizer"] == "sgd"
    assert params["eps0"] == pytest.approx(lr_rec["optimizers"]["sgd"]["suggestion"])
    assert [params[f"init_scale_{i}"] for i in range(3)] == pytest.approx(init_rec["multipliers"])
    low, high = lr_rec["range"]
    assert low <= min(r["range"][0] for r in lr_rec["optimizers"].values())
    assert high >= max(r["range"][1] for r in lr_rec["optimizers"].values())

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(params)
    config = suggest(study.ask(), resolved)
    assert config.init_scales == pytest.approx(tuple(init_rec["multipliers"]))
    assert config.hparams["eps0"] == pytest.approx(params["eps0"]) and config.optimizer == "sgd"


def test_shared_scale_enqueues_the_geometric_mean(digits):
    s = spec(**{'init_scale = "auto"': 'init_scale = "auto"\ninit_scale_shared = true', 'eps0 = "auto"': "eps0 = 0.1"})
    resolved, init_rec, lr_rec = resolve_spec_autos(s, digits)
    assert lr_rec is None
    params = warm_start_params(resolved, init_rec, None)
    assert params == {"init_scale": pytest.approx(float(np.exp(np.mean(np.log(init_rec["multipliers"])))))}


def test_no_auto_runs_nothing(digits):
    s = spec(**{'eps0 = "auto"': "eps0 = 0.1", 'init_scale = "auto"': "init_scale = 1.0"})
    assert resolve_spec_autos(s, digits) == (s, None, None)


def test_auto_scale_needs_one_scheme(digits):
    s = spec(**{'init = "lecun"': 'init = ["lecun", "he"]'})
    with pytest.raises(SpecError, match="'auto' needs one init scheme"):
        resolve_spec_autos(s, digits)


MINIMAL = '[data]\nsource = "digits"\n'


def test_resolve_auto_centres_the_ranges() -> None:
    spec = parse_spec(MINIMAL + '[model]\nhidden = [8, 8]\n[search]\neps0 = "auto"\ninit_scale = "auto"\n')
    resolved = resolve_auto(spec, init_scale_guess=[1.0, 2.0, 0.5], eps0_range=(1e-3, 0.3))
    assert not has_auto(resolved)
    assert resolved.search.eps0 == Range(1e-3, 0.3, log=True)
    assert resolved.search.init_scale == PerLayer(
        (Range(0.25, 4.0, log=True), Range(0.5, 8.0, log=True), Range(0.125, 2.0, log=True))
    )
    assert resolve_auto(spec, init_scale_guess=[1.0, 1.0, 1.0], eps0_range=(0.1, 1), spread=2.0).search.init_scale == (
        PerLayer((Range(0.5, 2.0, log=True),) * 3)
    )
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    config = suggest(trial, resolved)
    assert {"init_scale_0", "init_scale_1", "init_scale_2", "eps0"} <= set(trial.params)
    assert 0.5 <= config.init_scales[1] <= 8.0


def test_resolve_auto_shared_uses_the_geometric_mean() -> None:
    spec = parse_spec(MINIMAL + '[search]\ninit_scale = "auto"\ninit_scale_shared = true\n')
    resolved = resolve_auto(spec, init_scale_guess=[0.5, 2.0])
    assert resolved.search.init_scale == Range(0.25, 4.0, log=True)


def test_resolve_auto_leaves_concrete_values_alone() -> None:
    spec = parse_spec(MINIMAL)
    assert resolve_auto(spec, init_scale_guess=[1.0, 1.0], eps0_range=(0.1, 1.0)) is spec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "search.eps0: 'auto' needs the learning-rate probe's range, got none"),
        ({"eps0_range": (1.0, 0.1)}, "search.eps0: the probe's range must have 0 < low < high, got (1.0, 0.1)"),
        ({"eps0_range": (0.1, 1.0)}, "search.init_scale: 'auto' needs the init-scale guess, got none"),
        (
            {"eps0_range": (0.1, 1.0), "init_scale_guess": [1.0]},
            "search.init_scale: the guess needs 2 values (one per dense layer), got 1",
        ),
        ({"eps0_range": (0.1, 1.0), "init_scale_guess": [1.0, 1.0], "spread": 1.0}, "spread must be > 1, got 1.0"),
    ],
)
def test_resolve_auto_errors(kwargs: dict, message: str) -> None:
    spec = parse_spec(MINIMAL + '[search]\neps0 = "auto"\ninit_scale = "auto"\n')
    with pytest.raises(SpecError) as caught:
        resolve_auto(spec, **kwargs)
    assert str(caught.value) == f"<spec>: {message}"
