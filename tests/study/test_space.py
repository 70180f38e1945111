"""The search space: suggestions stay inside the spec, conditional parameters follow the optimizer."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.errors import SpecError
from tuner.optim import HYPERPARAMETERS
from tuner.study import TrialConfig, load_spec, parse_spec, suggest, trial_seed
from tuner.study.autos import has_auto, resolve_auto
from tuner.study.space import make_pruner, make_sampler
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
    config = suggest(optuna.trial.FixedTrial(params), spec)
    assert config == TrialConfig(
        optimizer="nesterov",
        hparams={"eps0": 0.1, "alpha": 0.9, "eps_tau": pytest.approx(0.01), "tau_fraction": 1.0},
        init="lecun",
        init_scales=(1.5, 0.5, 2.0),
        params={**params, "eps_tau": pytest.approx(0.01), "tau_fraction": 1.0},
    )


def test_an_anchored_eps0_is_a_factor_of_the_optimizers_anchor() -> None:
    spec = parse_spec(MINIMAL + '[search]\noptimizer = ["sgd", "adam"]\n'
                                'eps0 = { anchor = { sgd = 0.1, adam = 0.002 }, low = 0.1, high = 10 }\ninit_scale = 1.0\n')
    config = suggest(optuna.trial.FixedTrial({"optimizer": "adam", "eps0_factor": 3.0, "init_scale": 1.0}), spec)
    assert config.hparams["eps0"] == pytest.approx(0.006) and config.params["eps0"] == pytest.approx(0.006)
    assert config.params["eps0_factor"] == 3.0 and config.hparams["eps_tau"] == pytest.approx(0.00006)


def test_an_equal_share_takes_the_queued_optimizer_and_prefixes_every_name() -> None:
    spec = parse_spec(MINIMAL + '[study]\noptimizer_share = "equal"\n' + FULL_SEARCH)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({}, user_attrs={"optimizer": "rmsprop"})
    trial = study.ask()
    config = suggest(trial, spec)
    assert config.optimizer == "rmsprop" and "optimizer" not in trial.params
    assert sorted(trial.params) == ["rmsprop.delta", "rmsprop.eps0", "rmsprop.eps_tau_ratio", "rmsprop.init",
                                    "rmsprop.init_scale_0", "rmsprop.init_scale_1", "rmsprop.init_scale_2",
                                    "rmsprop.rho"]
    assert config.params["eps0"] == trial.params["rmsprop.eps0"]  # the config keeps the plain names
    assert {"optimizer", "eps0", "rho", "init_scale_0"} <= set(config.params)


def test_fixed_values_are_recorded_not_suggested() -> None:
    spec = parse_spec(MINIMAL + '[search]\noptimizer = "momentum"\neps0 = 0.05\nalpha = 0.8\ninit = "he"\n'
                      "init_scale = 1.0\n")
    study = _random_study()
    trial = study.ask()
    config = suggest(trial, spec)
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
        config = suggest(trial, spec)
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
    study = optuna.create_study(sampler=make_sampler(spec), direction=spec.study.direction)
    study.optimize(lambda t: suggest(t, spec).hparams["eps0"], n_trials=12)
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
    config = suggest(trial, spec)
    assert sorted(trial.params) == names
    assert len(config.init_scales) == 3
    if shared == "true":
        assert len(set(config.init_scales)) == 1
    if init_scale.startswith("["):
        assert (config.init_scales[0], config.init_scales[2]) == (1.0, 1.5)


def test_integer_range_is_suggested_as_an_integer() -> None:
    spec = parse_spec(MINIMAL + '[search]\noptimizer = "sgd"\neps0 = 0.1\ninit_scale = { low = 1, high = 4, step = 1 }\n'
                      "init_scale_shared = true\n")
    trial = _random_study().ask()
    suggest(trial, spec)
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
        + "".join(f"{other} = 0.1\n" for other in ("eps0", "init_scale") if other != name)
    )
    spec = parse_spec(text)
    trial = _random_study(seed).ask()
    config = suggest(trial, spec)
    value = trial.params[name]
    assert low <= value <= high
    assert config.params[name] == value


def test_auto_must_be_resolved_before_suggest() -> None:
    spec = parse_spec(MINIMAL + '[search]\neps0 = "auto"\n')
    assert has_auto(spec)
    with pytest.raises(SpecError, match=r"^<spec>: search\.eps0: 'auto' must be resolved"):
        suggest(optuna.trial.FixedTrial({"optimizer": "sgd"}), spec)


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


def test_tpe_is_multivariate_grouped_with_the_constant_liar_and_the_spec_startup() -> None:
    # The space is conditional on the optimizer (group), its parameters interact (multivariate), and parallel
    # workers must not all propose the point of a running trial (constant liar). Optuna keeps the options in
    # these attributes; a sampler built without one of them fails here.
    sampler = make_sampler(parse_spec(MINIMAL + "[study]\nn_startup_trials = 7\n"))
    assert (sampler._multivariate, sampler._group, sampler._constant_liar) == (True, True, True)
    assert sampler._n_startup_trials == 7
    assert make_sampler(parse_spec(MINIMAL))._n_startup_trials == 10


def test_tpe_proposes_random_points_until_the_startup_trials_are_done() -> None:
    spec = parse_spec(FULL_SEARCH.replace("[model]", MINIMAL + "[study]\nn_startup_trials = 4\nseed = 5\n[model]"))

    def eps0s(sampler: optuna.samplers.BaseSampler) -> list[float]:
        study = optuna.create_study(sampler=sampler, direction="maximize")
        values = []
        for _ in range(6):
            trial = study.ask()
            values.append(suggest(trial, spec).hparams["eps0"])
            study.tell(trial, values[-1])  # rewards a large eps0: TPE's model would move towards it
        return values

    tpe, again = eps0s(make_sampler(spec)), eps0s(make_sampler(spec))
    assert tpe == again  # seeded
    assert max(tpe[4:]) > min(tpe[:4])  # after the startup, the model leaves the random points


def test_samplers_are_seeded() -> None:
    spec = parse_spec(MINIMAL + '[study]\nsampler = "random"\nseed = 3\n[search]\neps0 = { low = 1e-4, high = 1.0 }\n'
                      "init_scale = 1.0\n")

    def first_rates() -> list[float]:
        study = optuna.create_study(sampler=make_sampler(spec))
        return [suggest(study.ask(), spec).hparams["eps0"] for _ in range(3)]

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


@pytest.mark.parametrize(("warmup", "startup"), [(3, 2), (0, 1)])
def test_median_pruner_waits_for_its_startup_trials_and_warmup_epochs(warmup: int, startup: int) -> None:
    spec = parse_spec(MINIMAL + f"[study]\npruner = \"median\"\nn_warmup_epochs = {warmup}\nn_startup_trials = {startup}\n")
    study = optuna.create_study(direction="maximize", pruner=make_pruner(spec))
    for _ in range(startup):  # good trials: accuracy 0.9 at every epoch
        trial = study.ask()
        for epoch in range(1, 6):
            trial.report(0.9, epoch)
        study.tell(trial, 0.9)
    bad = study.ask()
    decisions = []
    for epoch in range(1, 6):
        bad.report(0.1, epoch)
        decisions.append(bad.should_prune())
    # Optuna's warm-up counts steps: a report at step s is judged once s >= n_warmup_steps
    assert decisions == [epoch >= warmup for epoch in range(1, 6)]


def test_median_pruner_does_not_prune_before_its_startup_trials() -> None:
    spec = parse_spec(MINIMAL + "[study]\npruner = \"median\"\nn_warmup_epochs = 0\nn_startup_trials = 3\n")
    study = optuna.create_study(direction="maximize", pruner=make_pruner(spec))
    for value in (0.9, 0.9):
        trial = study.ask()
        trial.report(value, 1)
        study.tell(trial, value)
    bad = study.ask()
    bad.report(0.1, 1)
    assert not bad.should_prune()  # only 2 of 3 startup trials finished


def test_hyperband_spans_one_epoch_to_the_whole_run() -> None:
    pruner = make_pruner(parse_spec(MINIMAL + '[study]\npruner = "hyperband"\n[train]\nepochs = 27\n'))
    assert (pruner._min_resource, pruner._max_resource) == (1, 27)


def test_direction() -> None:
    assert parse_spec(MINIMAL).study.direction == "maximize"
    assert parse_spec(MINIMAL + '[study]\nobjective = "val_loss"\n').study.direction == "minimize"


def test_trial_seed() -> None:
    assert trial_seed(0, 5) == trial_seed(0, 5)
    seeds = {trial_seed(s, n) for s in range(3) for n in range(100)}
    assert len(seeds) == 300
    assert all(0 <= s < 2**32 for s in seeds)


@pytest.mark.parametrize("name", ["digits-mlp", "mnist1d-mlp", "deep-tanh"])
def test_example_specs_suggest(name: str) -> None:
    spec = load_spec(Path(__file__).resolve().parents[2] / "studies" / f"{name}.toml")
    assert has_auto(spec)  # the shipped specs anchor the search on the probes: resolved here with stand-ins
    spec = resolve_auto(spec, init_scale_guess=[1.0] * spec.model.n_layers,
                        eps0_anchors=dict.fromkeys(spec.search.optimizers, 0.01))
    study = optuna.create_study(sampler=make_sampler(spec), pruner=make_pruner(spec), direction=spec.study.direction)
    study.optimize(lambda t: suggest(t, spec).hparams["eps0"], n_trials=3)
    assert len(study.trials[0].params) >= 3
