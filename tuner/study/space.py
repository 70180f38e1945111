"""The search space: a validated spec -> Optuna suggestions -> one trial's configuration.

Optuna parameter names: `optimizer`, `eps0` (or `eps0_factor`, the factor of the trial's optimizer's
anchor when eps0 is anchored, as `"auto"` resolves), `alpha`, `rho`, `rho1`, `rho2`, `delta`,
`eps_tau_ratio`, `tau_fraction`, `init`, and `init_scale` (one multiplier for every layer) or
`init_scale_0` .. `init_scale_{L-1}` (one per dense layer, input side first). A fixed value is never
suggested, only recorded; `alpha`, `rho`, `rho1`, `rho2` and `delta` are suggested only when the trial's
optimizer takes them, which makes the space conditional: TPE runs with `multivariate=True, group=True` so
that each optimizer's sub-space is modelled on its own.

With `[study] optimizer_share = "equal"` the optimizer is not suggested: it comes with the queued trial
(`tuner.study.share`), and every other name gets the optimizer as a prefix (`adam.eps0_factor`,
`adam.init_scale_0`): each optimizer has a model of its own. The trial's `config` user attribute (and
`TrialConfig.params`) always uses the plain names, with eps0 and the init scales as absolute values.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from tuner.errors import SpecError
from tuner.optim import HYPERPARAMETERS
from tuner.study.params import Anchored, Auto, Choice, Fixed, Param, PerLayer, Range
from tuner.study.share import SHARE_ATTR
from tuner.study.spec import OPTIONAL_HPARAMS, StudySpec

DEFAULT_STARTUP_TRIALS = 10  # TPE's random start-up when the spec gives no n_startup_trials


@dataclass(frozen=True)
class TrialConfig:
    """What one trial trains with.

    `hparams` holds `eps0`, `eps_tau` (= eps_tau_ratio x eps0, eq. 8.14), the optimizer's own
    hyperparameters that the spec sets, and `tau_fraction`: pop `tau_fraction`, turn it into
    `tau = tau_fraction x total iterations`, and pass the rest to `tuner.optim.make`.
    `init_scales` has one multiplier per dense layer. `params` is the flat record of every value, suggested
    or fixed, under the Optuna parameter names (plus `eps_tau`).
    """

    optimizer: str
    hparams: dict[str, float]
    init: str
    init_scales: tuple[float, ...]
    params: dict[str, Any]


def _suggest(trial: optuna.trial.BaseTrial, name: str, param: Param, label: str) -> Any:
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.values))
    if isinstance(param, Range) and param.is_int:
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, Range):
        return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)
    plain = name.rsplit(".", 1)[-1]  # without an equal share's optimizer prefix
    key = "init_scale" if plain.startswith("init_scale") else "eps0" if plain == "eps0_factor" else plain
    if isinstance(param, Auto):
        raise SpecError(f"{label}: search.{key}: 'auto' must be resolved (resolve_auto) before trials are suggested")
    raise SpecError(f"{label}: search.{key}: cannot suggest {param!r}")


def suggest(trial: optuna.trial.BaseTrial, spec: StudySpec) -> TrialConfig:
    """Ask `trial` (any Optuna trial, `FixedTrial` included) for the values the spec leaves open."""
    search, label = spec.search, spec.label
    params: dict[str, Any] = {}
    optimizer = _optimizer(trial, spec)
    params["optimizer"] = optimizer
    prefix = f"{optimizer}." if spec.study.optimizer_share == "equal" else ""

    def value(name: str, param: Param) -> Any:
        params[name] = _suggest(trial, prefix + name, param, label)
        return params[name]

    if isinstance(search.eps0, Anchored):
        factor = float(value("eps0_factor", Range(search.eps0.low, search.eps0.high, log=True)))
        eps0 = params["eps0"] = search.eps0.anchor(optimizer) * factor
    else:
        eps0 = float(value("eps0", search.eps0))
    hparams = {"eps0": eps0}
    for name in OPTIONAL_HPARAMS:
        param = getattr(search, name)
        if param is not None and name in HYPERPARAMETERS[optimizer]:
            hparams[name] = float(value(name, param))
    ratio = float(value("eps_tau_ratio", search.eps_tau_ratio))
    hparams["eps_tau"] = params["eps_tau"] = ratio * eps0
    hparams["tau_fraction"] = float(value("tau_fraction", search.tau_fraction))
    init = value("init", search.init)
    return TrialConfig(optimizer, hparams, init, _init_scales(spec, value), params)


def _optimizer(trial: optuna.trial.BaseTrial, spec: StudySpec) -> str:
    """The trial's optimizer: the one its queued trial carries under an equal share, else suggested."""
    if spec.study.optimizer_share == "equal" and SHARE_ATTR in trial.user_attrs:
        return str(trial.user_attrs[SHARE_ATTR])
    return _suggest(trial, "optimizer", spec.search.optimizer, spec.label)


def _init_scales(spec: StudySpec, value: Callable[[str, Param], Any]) -> tuple[float, ...]:
    """One multiplier per dense layer (the spec checked that a per-layer list has one entry each)."""
    scale, n_layers = spec.search.init_scale, spec.model.n_layers
    if isinstance(scale, PerLayer):
        return tuple(float(value(f"init_scale_{i}", p)) for i, p in enumerate(scale.values))
    if isinstance(scale, Fixed) or spec.search.init_scale_shared:
        return (float(value("init_scale", scale)),) * n_layers
    return tuple(float(value(f"init_scale_{i}", scale)) for i in range(n_layers))


def make_sampler(spec: StudySpec, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded with `seed` (default: the study's seed).

    tpe: multivariate and grouped (the space is conditional on the optimizer), with the constant liar so
    parallel workers spread out. qmc: scrambled Sobol; categorical parameters fall back to random sampling.
    """
    seed = spec.study.seed if seed is None else seed
    startup = spec.study.n_startup_trials
    if spec.study.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # `group` and QMCSampler are marked experimental; the choice is the spec's, so the warning says nothing
    # the user can act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.study.sampler == "qmc":
            return optuna.samplers.QMCSampler(
                scramble=True,
                seed=seed,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False,
            )
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            group=True,
            constant_liar=True,
            n_startup_trials=DEFAULT_STARTUP_TRIALS if startup is None else startup,
        )


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The spec's pruner; one step is one epoch.

    median: no pruning in the first `n_startup_trials` trials (default 5) nor before epoch
    `n_warmup_epochs` (default a tenth of the run). hyperband: resources from 1 epoch to the run's length.
    successive_halving: Optuna's automatic minimum resource.
    """
    study, epochs = spec.study, spec.train.epochs
    if study.pruner == "none":
        return optuna.pruners.NopPruner()
    if study.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if study.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.MedianPruner(
        n_startup_trials=5 if study.n_startup_trials is None else study.n_startup_trials,
        n_warmup_steps=epochs // 10 if study.n_warmup_epochs is None else study.n_warmup_epochs,
    )


def trial_seed(study_seed: int, trial_number: int) -> int:
    """The training seed of a trial, from (study seed, trial number): any trial can be replayed alone."""
    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0])
