"""Resolving "auto" init scales and eps0 in a spec with the probes, and the warm-start trials."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest

from tuner.errors import ProbeError, SpecError
from tuner.nn.data import load_dataset
from tuner.probe.init_guess import init_scale_guess
from tuner.probe.lr import suggestion_divisor
from tuner.study.autos import (
    EPS0_FACTOR,
    GUESS_DRAWS,
    HIDDEN_SPREAD,
    MAX_PROBE_BUDGET,
    MAX_SWEEPS,
    OUTPUT_SPREAD,
    PROBE_BUDGET,
    guess_record,
    has_auto,
    lr_record,
    probe_batch_size,
    probe_model,
    probe_plan,
    resolve_auto,
    resolve_spec_autos,
    training_batch,
)
from tuner.study.objective import total_steps
from tuner.study.params import Anchored, PerLayer, Range
from tuner.study.space import suggest
from tuner.study.spec import parse_spec, spec_from_dict
from tuner.study.warm_start import warm_start_trials

SPEC = """
[study]
name = "auto"
seed = 3
n_trials = {n_trials}
optimizer_share = "{share}"
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
alpha = {{ low = 0.5, high = 0.99 }}
init = "lecun"
init_scale = "auto"
"""


def spec(optimizer: str = '"sgd"', n_trials: int = 50, share: str = "sampler", **replace: str):
    text = SPEC.format(optimizer=optimizer, n_trials=n_trials, share=share)
    for old, new in replace.items():
        text = text.replace(old, new)
    return parse_spec(text)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=3)


@pytest.fixture(scope="module")
def two_optimizers(digits):
    return resolve_spec_autos(spec('["sgd", "adam"]'), digits)


def test_resolves_both_autos_and_records_are_json(two_optimizers):
    resolved, init_rec, lr_rec = two_optimizers
    assert not has_auto(resolved)
    guess = init_rec["multipliers"]
    assert len(guess) == 3 and init_rec["scheme"] == "lecun"
    ranges = resolved.search.init_scale
    assert isinstance(ranges, PerLayer)
    spreads = (HIDDEN_SPREAD, HIDDEN_SPREAD, OUTPUT_SPREAD)  # the output layer searched more widely
    for g, r, s in zip(guess, ranges.values, spreads, strict=True):
        assert (r.low, r.high, r.log) == pytest.approx((g / s, g * s, True))
    assert init_rec["ranges"] == [[r.low, r.high] for r in ranges.values]
    eps0 = resolved.search.eps0
    assert isinstance(eps0, Anchored) and (eps0.low, eps0.high) == EPS0_FACTOR
    for name in ("sgd", "adam"):
        probe = lr_rec["optimizers"][name]
        assert eps0.anchor(name) == probe["suggestion"] == pytest.approx(probe["edge"] / suggestion_divisor(name))
        assert probe["range"] == pytest.approx([probe["suggestion"] * f for f in EPS0_FACTOR])
    # each optimizer has its own anchor: Adam's good rates lie well below SGD's
    assert eps0.anchor("adam") < eps0.anchor("sgd") / 3
    assert lr_rec["scales"] == guess  # the probe starts from the guessed initialisation
    json.dumps(init_rec), json.dumps(lr_rec)
    assert spec_from_dict(resolved.to_dict()) == resolved  # the stored form reads back


def test_the_same_seed_gives_the_same_records(digits, two_optimizers):
    again = resolve_spec_autos(spec('["sgd", "adam"]'), digits)
    assert again[1]["multipliers"] == two_optimizers[1]["multipliers"]
    assert again[2]["optimizers"]["adam"]["edges"] == two_optimizers[2]["optimizers"]["adam"]["edges"]


def test_the_guess_is_the_geometric_mean_of_lsuv_on_several_draws_of_the_weights(digits):
    s = spec()
    record = guess_record(s, digits)
    assert record["draws"] == GUESS_DRAWS == len(record["draw_multipliers"])
    own = np.array(record["draw_multipliers"])
    assert record["multipliers"] == pytest.approx(np.exp(np.log(own).mean(axis=0)).tolist(), rel=1e-12)
    # each draw is LSUV of one network from the record's seed, on one batch: the first, redone by hand
    rng = np.random.default_rng(s.study.seed)
    x, y = training_batch(digits, probe_batch_size(s, digits), rng)
    first = init_scale_guess(probe_model(s, digits, (1.0, 1.0, 1.0), rng), x, y=y)
    assert own[0].tolist() == list(first.multipliers) and len(set(map(tuple, own.tolist()))) == GUESS_DRAWS
    assert guess_record(s, digits, draws=1)["multipliers"] == list(first.multipliers)
    # the statistics after are the first network at the averaged multipliers: near, not at, std 1
    after = [layer["pre_std"] for layer in record["after"]]
    assert after == pytest.approx([1.0, 1.0, 1.0], abs=0.35) and after != pytest.approx([1.0] * 3, abs=1e-3)


def test_averaging_draws_steadies_a_narrow_output_layer_across_seeds():
    # one output unit: from one network its multiplier follows that network's random weight direction
    # (x1.47 over study seeds on studies/regression.toml); the mean over draws is the scheme's, which every
    # trial draws its weights from
    text = (SPEC.format(optimizer='"sgd"', n_trials=50, share="sampler")
            .replace('source = "digits"', 'source = "synthetic_regression"')
            .replace('name = "auto"', 'name = "auto"\nobjective = "val_loss"'))
    data = load_dataset("synthetic_regression", seed=0)

    def spread(draws: int) -> float:
        out = [guess_record(parse_spec(text.replace("seed = 3", f"seed = {seed}")), data, draws=draws)
               ["multipliers"][-1] for seed in range(8)]
        return max(out) / min(out)

    one, averaged = spread(1), spread(GUESS_DRAWS)
    assert one > 1.3 and averaged < 1 + (one - 1) / 1.5


@pytest.mark.parametrize("draws", [0, -1, 1.5, True])
def test_a_bad_number_of_draws_is_refused(digits, draws):
    with pytest.raises(ProbeError, match=f"draws must be an integer >= 1, got {draws!r}"):
        guess_record(spec(), digits, draws=draws)


def test_the_probe_budget_is_a_share_of_the_study(digits):
    # digits: 1438 training examples, batches of 64 -> 23 steps per epoch, 2 epochs -> 46 steps per trial
    small = spec('["sgd", "adam"]', n_trials=50)
    share = PROBE_BUDGET * 50 * 46 / 2
    assert total_steps(small, digits) == 46 and share == pytest.approx(17.25)
    assert probe_plan(small, digits) == (MAX_SWEEPS, 60, 60)  # below one sweep: one sweep of the minimum length
    big = spec('["sgd", "adam"]', n_trials=50, **{"epochs = 2": "epochs = 40"})  # 920 steps a trial: 345 each
    assert probe_plan(big, digits) == (MAX_SWEEPS, 100, 345)
    huge = spec('"sgd"', n_trials=500, **{"epochs = 2": "epochs = 40"})
    assert probe_plan(huge, digits) == (MAX_SWEEPS, 100, MAX_PROBE_BUDGET)
    # the probes spend the plan's steps and no more: a first sweep of 100, then shorter ones while they fit
    record = lr_record(big, digits, scales=(1.0, 1.0, 1.0))
    for result in record["optimizers"].values():
        starts = [s["start"] for s in result["sweeps"]]
        assert starts[0] == 0 and len(set(starts[1:])) == 1 and starts[1] > 0
        assert result["steps_run"] == sum(len(s["losses"]) for s in result["sweeps"]) <= 345
        assert 345 - result["steps_run"] < 100 - starts[1]  # another sweep would not have fitted


def test_the_warm_start_is_what_the_probes_measured_then_a_half_decade_either_side(two_optimizers):
    resolved, init_rec, lr_rec = two_optimizers
    trials = warm_start_trials(resolved, init_rec, lr_rec)
    # each optimizer at its suggestion, then every optimizer at 0.3 and at 3 times it (start-up: 10 trials)
    assert [(p["optimizer"], p["eps0_factor"]) for p, _ in trials] == [
        ("sgd", 1.0), ("adam", 1.0), ("sgd", 0.3), ("adam", 0.3), ("sgd", 3.0), ("adam", 3.0)]
    assert all(a == {"warm_start": "probe"} for _, a in trials)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for params, attrs in trials:
        assert [params[f"init_scale_{i}"] for i in range(3)] == pytest.approx(init_rec["multipliers"])
        study.enqueue_trial(params, user_attrs=attrs)
    for name, factor in [(p["optimizer"], p["eps0_factor"]) for p, _ in trials]:
        config = suggest(study.ask(), resolved)
        assert config.optimizer == name and config.params["eps0_factor"] == factor
        assert config.init_scales == pytest.approx(tuple(init_rec["multipliers"]))
        assert config.hparams["eps0"] == pytest.approx(factor * lr_rec["optimizers"][name]["suggestion"])


@pytest.mark.parametrize(("startup", "expected"), [
    (0, [("sgd", 1.0), ("adam", 1.0)]),  # the suggestions always; the further picks only inside start-up
    (3, [("sgd", 1.0), ("adam", 1.0), ("sgd", 0.3)]),
])
def test_the_queue_never_outgrows_the_samplers_start_up(two_optimizers, startup, expected):
    resolved, init_rec, lr_rec = two_optimizers
    resolved = resolved.model_copy(update={"study": resolved.study.model_copy(update={"n_startup_trials": startup})})
    trials = warm_start_trials(resolved, init_rec, lr_rec)
    assert [(p["optimizer"], p["eps0_factor"]) for p, _ in trials] == expected


def test_a_study_with_fewer_trials_than_optimizers_queues_no_more_than_it_runs(two_optimizers):
    resolved, init_rec, lr_rec = two_optimizers
    resolved = resolved.model_copy(update={"study": resolved.study.model_copy(update={"n_trials": 1})})
    trials = warm_start_trials(resolved, init_rec, lr_rec)
    assert [(p["optimizer"], p["eps0_factor"]) for p, _ in trials] == [("sgd", 1.0)]  # "adam" would wait forever


def test_the_warm_start_fixes_searched_hyperparameters_at_the_default_the_probe_used(digits):
    resolved, init_rec, lr_rec = resolve_spec_autos(spec('["momentum", "sgd"]'), digits)
    (momentum, _), (sgd, _), *_ = warm_start_trials(resolved, init_rec, lr_rec)
    assert momentum["optimizer"] == "momentum" and momentum["alpha"] == 0.9  # its default, inside 0.5 .. 0.99
    assert "alpha" not in sgd


def test_an_equal_share_starts_every_optimizer_from_its_probe(digits):
    resolved, init_rec, lr_rec = resolve_spec_autos(spec('["sgd", "momentum"]', share="equal"), digits)
    trials = warm_start_trials(resolved, init_rec, lr_rec)
    assert [attrs for _, attrs in trials] == [{"warm_start": "probe", "optimizer": o}
                                              for o in ("sgd", "momentum") * 3]
    sgd, momentum = (params for params, _ in trials[:2])
    assert [p[f"{o}.eps0_factor"] for p, o in zip((p for p, _ in trials), ("sgd", "momentum") * 3, strict=True)] == [
        1.0, 1.0, 0.3, 0.3, 3.0, 3.0]
    assert set(sgd) == {"sgd.eps0_factor", "sgd.init_scale_0", "sgd.init_scale_1", "sgd.init_scale_2"}
    assert momentum["momentum.alpha"] == 0.9 and "optimizer" not in momentum


def test_shared_scale_enqueues_the_geometric_mean(digits):
    s = spec(**{'init_scale = "auto"': 'init_scale = "auto"\ninit_scale_shared = true', 'eps0 = "auto"': "eps0 = 0.1"})
    resolved, init_rec, lr_rec = resolve_spec_autos(s, digits)
    assert lr_rec is None
    centre = float(np.exp(np.mean(np.log(init_rec["multipliers"]))))
    assert resolved.search.init_scale == Range(centre / HIDDEN_SPREAD, centre * HIDDEN_SPREAD, log=True)
    assert warm_start_trials(resolved, init_rec, None) == [({"init_scale": pytest.approx(centre)},
                                                            {"warm_start": "probe"})]


def test_no_auto_runs_nothing(digits):
    s = spec(**{'eps0 = "auto"': "eps0 = 0.1", 'init_scale = "auto"': "init_scale = 1.0"})
    assert resolve_spec_autos(s, digits) == (s, None, None)
    assert warm_start_trials(s, None, None) == []


def test_auto_scale_needs_one_scheme(digits):
    s = spec(**{'init = "lecun"': 'init = ["lecun", "he"]'})
    with pytest.raises(SpecError, match="'auto' needs one init scheme"):
        resolve_spec_autos(s, digits)


MINIMAL = '[data]\nsource = "digits"\n'


def test_resolve_auto_anchors_the_ranges() -> None:
    s = parse_spec(MINIMAL + '[model]\nhidden = [8, 8]\n[search]\noptimizer = ["sgd", "adam"]\n'
                             'eps0 = "auto"\ninit_scale = "auto"\n')
    resolved = resolve_auto(s, init_scale_guess=[1.0, 2.0, 0.5], eps0_anchors={"sgd": 0.1, "adam": 0.002})
    assert not has_auto(resolved)
    assert resolved.search.eps0 == Anchored((("sgd", 0.1), ("adam", 0.002)), 0.1, 10.0)
    assert resolved.search.init_scale == PerLayer(
        (Range(0.25, 4.0, log=True), Range(0.5, 8.0, log=True), Range(0.05, 5.0, log=True))
    )
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    config = suggest(trial, resolved)
    assert {"init_scale_0", "init_scale_1", "init_scale_2", "eps0_factor"} <= set(trial.params)
    assert "eps0" not in trial.params  # the factor is searched; the absolute rate is recorded
    assert config.params["eps0"] == pytest.approx(dict(resolved.search.eps0.anchors)[config.optimizer]
                                                  * trial.params["eps0_factor"])
    assert 0.5 <= config.init_scales[1] <= 8.0


def test_resolve_auto_leaves_concrete_values_alone() -> None:
    s = parse_spec(MINIMAL + "[search]\neps0 = 0.1\ninit_scale = 1.0\n")
    assert resolve_auto(s, init_scale_guess=[1.0, 1.0], eps0_anchors={"sgd": 0.1}) is s


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "search.eps0: 'auto' needs the learning-rate probe's suggestions, got none"),
        ({"eps0_anchors": {"sgd": 0.1}}, "search.eps0: no finite suggestion > 0 for adam"),
        ({"eps0_anchors": {"sgd": 0.1, "adam": math.nan}}, "search.eps0: no finite suggestion > 0 for adam"),
        ({"eps0_anchors": {"sgd": 0.1, "adam": 0.01}}, "search.init_scale: 'auto' needs the init-scale guess, got none"),
        (
            {"eps0_anchors": {"sgd": 0.1, "adam": 0.01}, "init_scale_guess": [1.0]},
            "search.init_scale: the guess needs 2 values (one per dense layer), got 1",
        ),
    ],
)
def test_resolve_auto_errors(kwargs: dict, message: str) -> None:
    s = parse_spec(MINIMAL + '[search]\noptimizer = ["sgd", "adam"]\neps0 = "auto"\ninit_scale = "auto"\n')
    with pytest.raises(SpecError) as caught:
        resolve_auto(s, **kwargs)
    assert str(caught.value) == f"<spec>: {message}"
