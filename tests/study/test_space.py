"""The search space: suggestions stay inside the spec, conditional parameters follow the optimizer."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.errors import SpecError
from tuner.study import TrialConfig, load_spec, parse_spec, suggest, trial_seed
from tuner.study.space import direction, has_auto, make_pruner, make_sampler, resolve_auto
from tuner.optim import HYPERPARAMETERS
from tuner.study.params import PerLayer, Range
from tuner.study.spec import OPTIONAL_HPARAMS

MINIMAL = '[data]\nsource = "digits"\n'
FULL_SEARCH = """
[model]
hidden = [16, 16]
[search]
optimizer = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_nesterov", "adam"]
eps0 = { low = 1e-4, high = 1.0, log = true }
alpha = { low = 0.5, high = 0.99 }
rho = { low = 0.8, high = 0.999 }
rho1 = { low = 0.8, high = 0.95 }
rho2 = { low = 0.99, high = 0.9999 }
delta = { low = 1e-8, high = 1e-6, log = true }
eps_tau_ratio = [0.01, 0.1]
init = ["he", "lecun"]
init_scale = { low = 0.25, high = 4.0, log = true }
"""


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _random_study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def test_fixed_trial() -> None:
    spec = parse_spec(MINIMAL + FULL_SEARCH)
    params = {
        "optimizer": "nesterov", "eps0": 0.1, "alpha": 0.9, "eps_tau_ratio": 0.1, "init": "lecun",
        "init_scale_0": 1.5, "init_scale_1": 0.5, "init_scale_2": 2.0,
    }
    config = suggest(optuna.trial.FixedTrial(params), spec, 3)
    assert config == TrialConfig(
        optimizer="nesterov",
        hparams={"eps0": 0.1, "alpha": 0.9, "eps_tau": pytest.approx(0.01), "tau_fraction": 1.0},
        init="lecun",
        init_scales=(1.5, 0.5, 2.0),
        params={**params, "eps_tau": pytest.approx(0.01), "tau_fraction": 1.0},
    )


def test_fixed_values_are_recorded_not_suggested() -> None:
    spec = parse_spec(MINIMAL + '[search]\noptimizer = "momentum"\neps0 = 0.05\nalpha = 0.8\ninit = "he"\n')
    study = _random_study()
    trial = study.ask()
    config = suggest(trial, spec, 2)
    assert trial.params == {}
    assert config.hparams == {"eps0": 0.05, "alpha": 0.8, "eps_tau": pytest.approx(0.0005), "tau_fraction": 1.0}
    assert config.init_scales == (1.0, 1.0)
    assert config.params == {
        "optimizer": "momentum", "eps0": 0.05, "alpha": 0.8, "eps_tau_ratio": 0.01, "eps_tau": pytest.approx(0.0005),
        "tau_fraction": 1.0, "init": "he", "init_scale": 1.0,
    }


def test_conditional_parameters_follow_the_optimizer() -> None:
    spec = parse_spec(MINIMAL + FULL_SEARCH)
    study = _random_study(seed=1)
    seen = set()
    for _ in range(200):
        trial = study.ask()
        config = suggest(trial, spec, 3)
        study.tell(trial, 0.0)
        optimizer = trial.params["optimizer"]
        seen.add(optimizer)
        taken = set(HYPERPARAMETERS[optimizer])
        suggested = set(trial.params) & set(OPTIONAL_HPARAMS)
        assert suggested == taken, (optimizer, trial.params)
        assert set(config.hparams) == {"eps0", "eps_tau", "tau_fraction"} | taken
        assert set(trial.params) == {"optimizer", "eps0", "eps_tau_ratio", "init"} | taken | {
            "init_scale_0", "init_scale_1", "init_scale_2"
        }
    assert seen == set(HYPERPARAMETERS)


def test_tpe_sampler_runs_the_conditional_space() -> None:
    spec = parse_spec(MINIMAL + FULL_SEARCH + "[study]\nn_startup_trials = 3\n")
    study = optuna.create_study(sampler=make_sampler(spec), direction=direction(spec))
    study.optimize(lambda t: suggest(t, spec, 3).hparams["eps0"], n_trials=12)
    for trial in study.trials:
        extra = set(trial.params) & set(OPTIONAL_HPARAMS)
        assert extra == set(HYPERPARAMETERS[trial.params["optimizer"]])


@pytest.mark.parametrize(
    ("init_scale", "shared", "names"),
    [
        ("{ low = 0.5, high = 2.0 }", "false", ["init_scale_0", "init_scale_1", "init_scale_2"]),
        ("{ low = 0.5, high = 2.0 }", "true", ["init_scale"]),
        ("[1.0, { low = 0.5, high = 2.0 }, 1.5]", "false", ["init_scale_1"]),
        ("1.5", "false", []),
    ],
)
def test_init_scale_parameter_names(init_scale: str, shared: str, names: list[str]) -> None:
    spec = parse_spec(
        MINIMAL + f'[model]\nhidden = [4, 4]\n[search]\noptimizer = "sgd"\neps0 = 0.1\ninit_scale = {init_scale}\n'
        f"init_scale_shared = {shared}\n"
    )
    trial = _random_study().ask()
    config = suggest(trial, spec, 3)
    assert sorted(trial.params) == names
    assert len(config.init_scales) == 3
    if shared == "true":
        assert len(set(config.init_scales)) == 1
    if init_scale.startswith("["):
        assert (config.init_scales[0], config.init_scales[2]) == (1.0, 1.5)


def test_integer_range_is_suggested_as_an_integer() -> None:
    spec = parse_spec(MINIMAL + '[search]\noptimizer = "sgd"\ninit_scale = { low = 1, high = 4, step = 1 }\n'
                      "init_scale_shared = true\n")
    trial = _random_study().ask()
    suggest(trial, spec, 2)
    assert isinstance(trial.params["init_scale"], int)
    assert isinstance(trial.distributions["init_scale"], optuna.distributions.IntDistribution)


range_names = st.sampled_from(["eps0", "alpha", "rho", "delta", "tau_fraction", "init_scale"])
unit_floats = st.floats(min_value=1e-5, max_value=0.99, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(name=range_names, a=unit_floats, b=unit_floats, log=st.booleans(), seed=st.integers(0, 2**16))
def test_suggestions_stay_inside_their_range(name: str, a: float, b: float, log: bool, seed: int) -> None:
    low, high = sorted((a, b))
    if low == high:
        return
    optimizer = "rmsprop_nesterov"  # takes alpha, rho and delta
    text = MINIMAL + (
        f'[search]\noptimizer = "{optimizer}"\n'
        f"{name} = {{ low = {low!r}, high = {high!r}, log = {str(log).lower()} }}\n"
        "init_scale_shared = true\n"
    )
    spec = parse_spec(text)
    trial = _random_study(seed).ask()
    config = suggest(trial, spec, 2)
    value = trial.params[name]
    assert low <= value <= high
    assert config.params[name] == value


def test_auto_must_be_resolved_before_suggest() -> None:
    spec = parse_spec(MINIMAL + '[search]\neps0 = "auto"\n')
    assert has_auto(spec)
    with pytest.raises(SpecError, match=r"^<spec>: search\.eps0: 'auto' must be resolved"):
        suggest(optuna.trial.FixedTrial({"optimizer": "sgd"}), spec, 2)


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
    trial = _random_study().ask()
    config = suggest(trial, resolved, 3)
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


def test_per_layer_list_must_match_the_network() -> None:
    spec = parse_spec(MINIMAL + "[search]\ninit_scale = [1.0, 2.0]\n")
    with pytest.raises(SpecError, match=r"search\.init_scale: expected 3 entries"):
        suggest(optuna.trial.FixedTrial({"optimizer": "sgd", "eps0": 0.1}), spec, 3)


@pytest.mark.parametrize(
    ("sampler", "cls"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("qmc", optuna.samplers.QMCSampler),
    ],
)
def test_make_sampler(sampler: str, cls: type) -> None:
    spec = parse_spec(MINIMAL + f'[study]\nsampler = "{sampler}"\n')
    assert isinstance(make_sampler(spec), cls)
    assert isinstance(make_sampler(spec, seed=7), cls)


def test_samplers_are_seeded() -> None:
    spec = parse_spec(MINIMAL + '[study]\nsampler = "random"\nseed = 3\n')

    def first_rates() -> list[float]:
        study = optuna.create_study(sampler=make_sampler(spec))
        return [suggest(study.ask(), spec, 2).hparams["eps0"] for _ in range(3)]

    assert first_rates() == first_rates()


@pytest.mark.parametrize(
    ("pruner", "cls"),
    [
        ("none", optuna.pruners.NopPruner),
        ("median", optuna.pruners.MedianPruner),
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
    ],
)
def test_make_pruner(pruner: str, cls: type) -> None:
    spec = parse_spec(MINIMAL + f'[study]\npruner = "{pruner}"\n')
    assert isinstance(make_pruner(spec), cls)


def test_direction() -> None:
    assert direction(parse_spec(MINIMAL)) == "maximize"
    assert direction(parse_spec(MINIMAL + '[study]\nobjective = "val_loss"\n')) == "minimize"


def test_trial_seed() -> None:
    assert trial_seed(0, 5) == trial_seed(0, 5)
    seeds = {trial_seed(s, n) for s in range(3) for n in range(100)}
    assert len(seeds) == 300
    assert all(0 <= s < 2**32 for s in seeds)


@pytest.mark.parametrize("name", ["digits-mlp", "mnist1d-mlp", "deep-tanh"])
def test_example_specs_suggest(name: str) -> None:
    spec = load_spec(Path(__file__).resolve().parents[2] / "studies" / f"{name}.toml")
    study = optuna.create_study(sampler=make_sampler(spec), pruner=make_pruner(spec), direction=direction(spec))
    study.optimize(lambda t: suggest(t, spec, spec.model.n_layers).hparams["eps0"], n_trials=3)
    assert len(study.trials[0].params) >= 3
