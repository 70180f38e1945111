"""Resolving "auto" init scales and eps0 in a spec with the probes."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from tuner.errors import SpecError
from tuner.nn.data import load_dataset
from tuner.probe.study import resolve_spec_autos, warm_start_params
from tuner.study.space import has_auto, suggest
from tuner.study.params import PerLayer, Range
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
    config = suggest(study.ask(), resolved, 3)
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
