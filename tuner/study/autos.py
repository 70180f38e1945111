"""`"auto"` in a spec: the probes run on the spec's network and data, and their results set the ranges.

`resolve_spec_autos(spec, data)` builds the spec's network with its base init scheme at scale 1, runs the
init-scale guess (LSUV) on one training batch when `init_scale = "auto"`, then the learning-rate probe
when `eps0 = "auto"` (from the guessed initialisation when there is one), and returns the spec with
concrete log ranges (`resolve_auto`: guess/4 .. guess*4 per layer; the probe's eps0
range) plus a JSON-able record of each probe. `warm_start_params` turns the records into the parameters of
the study's first trial (`study.enqueue_trial`), so the guess itself is evaluated first.

Everything is seeded from the study's seed: the same spec gives the same records.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tuner.errors import ProbeError, SpecError
from tuner.nn.data import Dataset
from tuner.nn.mlp import MLP
from tuner.optim import HYPERPARAMETERS
from tuner.probe.init_guess import init_scale_guess
from tuner.probe.lr import LRProbeResult, lr_probe
from tuner.study.objective import build_model
from tuner.study.params import Auto, Choice, Fixed, Param, PerLayer, Range
from tuner.study.space import TrialConfig
from tuner.study.spec import OPTIONAL_HPARAMS, StudySpec

SPREAD = 4.0  # init-scale search range: guess/SPREAD .. guess*SPREAD
LR_STEPS = 100


def resolve_auto(
    spec: StudySpec,
    *,
    init_scale_guess: list[float] | None = None,
    eps0_range: tuple[float, float] | None = None,
    spread: float = 4.0,
) -> StudySpec:
    """Replace `"auto"` with log ranges centred on the probes' results; other values are left alone.

    init_scale: per layer `guess/spread .. guess*spread` (with `init_scale_shared`, one range centred on
    the geometric mean of the guesses). eps0: `eps0_range`, searched on a log scale.
    """
    label, search = spec.label, spec.search
    if not (math.isfinite(spread) and spread > 1):
        raise SpecError(f"{label}: spread must be > 1, got {spread!r}")
    update: dict[str, Param] = {}
    if isinstance(search.eps0, Auto):
        if eps0_range is None:
            raise SpecError(f"{label}: search.eps0: 'auto' needs the learning-rate probe's range, got none")
        low, high = (float(v) for v in eps0_range)
        if not (0 < low < high and math.isfinite(high)):
            raise SpecError(f"{label}: search.eps0: the probe's range must have 0 < low < high, got {eps0_range!r}")
        update["eps0"] = Range(low, high, log=True)
    if isinstance(search.init_scale, Auto):
        n_layers = spec.model.n_layers
        if init_scale_guess is None:
            raise SpecError(f"{label}: search.init_scale: 'auto' needs the init-scale guess, got none")
        guess = [float(g) for g in init_scale_guess]
        if len(guess) != n_layers:
            raise SpecError(
                f"{label}: search.init_scale: the guess needs {n_layers} values (one per dense layer), got {len(guess)}"
            )
        if not all(math.isfinite(g) and g > 0 for g in guess):
            raise SpecError(f"{label}: search.init_scale: the guess must be finite and > 0, got {guess!r}")
        if search.init_scale_shared:
            centre = math.exp(sum(math.log(g) for g in guess) / len(guess))
            update["init_scale"] = Range(centre / spread, centre * spread, log=True)
        else:
            update["init_scale"] = PerLayer(tuple(Range(g / spread, g * spread, log=True) for g in guess))
    if not update:
        return spec
    return spec.model_copy(update={"search": search.model_copy(update=update)})


def has_auto(spec: StudySpec) -> bool:
    """Whether the spec still holds an `"auto"` value (the probes must run before trials)."""
    return isinstance(spec.search.eps0, Auto) or isinstance(spec.search.init_scale, Auto)


def check_probe_data(data: Dataset, batch_size: int) -> None:
    """ProbeError when one batch cannot be drawn or a classifier's training set has a single class."""
    n = len(data.x_train)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ProbeError(f"batch size must be an integer >= 2, got {batch_size!r}")
    if batch_size > n:
        raise ProbeError(f"batch size {batch_size} is larger than the training data ({n} examples)")
    if data.is_classification:
        classes = np.unique(data.y_train)
        if len(classes) < 2:
            raise ProbeError(
                f"the training data has a single class ({classes[0]!r}); a classifier needs at least 2"
            )


def training_batch(data: Dataset, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One minibatch of the training set, drawn without replacement by `rng`."""
    check_probe_data(data, batch_size)
    idx = rng.choice(len(data.x_train), size=batch_size, replace=False)
    return data.x_train[idx], data.y_train[idx]


def base_scheme(spec: StudySpec) -> str:
    """The init scheme the guess is relative to: the spec's fixed `init` (or the first of a choice).

    With `init_scale = "auto"` a choice of schemes is refused: each scheme needs its own multipliers.
    """
    init = spec.search.init
    if isinstance(init, Fixed):
        return str(init.value)
    if isinstance(spec.search.init_scale, Auto):
        raise SpecError(
            f"{spec.label}: search.init_scale: 'auto' needs one init scheme (its multipliers are relative to "
            f"it), got a choice of {', '.join(map(str, init.values))}"
        )
    return str(init.values[0])


def _centre(param: Fixed | Range) -> float:
    if isinstance(param, Fixed):
        return float(param.value)
    if param.log:
        return math.sqrt(param.low * param.high)
    return (param.low + param.high) / 2


def centre_scales(spec: StudySpec) -> tuple[float, ...]:
    """One multiplier per dense layer at the centre of the spec's init_scale (1 for `"auto"`)."""
    scale, n_layers = spec.search.init_scale, spec.model.n_layers
    if isinstance(scale, Auto):
        return (1.0,) * n_layers
    if isinstance(scale, PerLayer):
        return tuple(_centre(p) for p in scale.values)
    return (_centre(scale),) * n_layers


def probe_model(spec: StudySpec, data: Dataset, scales: tuple[float, ...], rng: np.random.Generator) -> MLP:
    """The spec's network with its base scheme and the given per-layer scales (an `MLP`)."""
    config = TrialConfig(optimizer="", hparams={}, init=base_scheme(spec), init_scales=tuple(scales), params={})
    return build_model(spec, data, config, rng)


def optimizer_hparams(spec: StudySpec, optimizer: str) -> dict[str, float]:
    """The optimizer's fixed hyperparameters in the spec (searched ones take the optimizer's default)."""
    hparams: dict[str, float] = {}
    for name in OPTIONAL_HPARAMS:
        param = getattr(spec.search, name)
        if isinstance(param, Fixed) and name in HYPERPARAMETERS[optimizer]:
            hparams[name] = float(param.value)
    if spec.train.clip_norm is not None:
        hparams["clip_norm"] = spec.train.clip_norm
    return hparams


def guess_record(spec: StudySpec, data: Dataset, *, batch_size: int | None = None, seed: int | None = None) -> dict:
    """Run the init-scale guess on the spec's network and one training batch; its JSON-able record."""
    seed = spec.study.seed if seed is None else seed
    batch_size = spec.train.batch_size if batch_size is None else batch_size
    rng = np.random.default_rng(seed)
    x, y = training_batch(data, batch_size, rng)
    model = probe_model(spec, data, (1.0,) * spec.model.n_layers, rng)
    guess = init_scale_guess(model, x, y=y)
    return {"scheme": base_scheme(spec), "batch_size": batch_size, "seed": seed, **guess.to_dict()}


def probe_scales(spec: StudySpec, data: Dataset, *, batch_size: int, seed: int) -> tuple[float, ...]:
    """The init scales the learning-rate probe starts from: the guess with `init_scale = "auto"`, else the
    centre of the spec's init_scale."""
    check_probe_data(data, batch_size)
    if isinstance(spec.search.init_scale, Auto):
        return tuple(guess_record(spec, data, batch_size=batch_size, seed=seed)["multipliers"])
    return centre_scales(spec)


def spec_lr_probe(
    spec: StudySpec,
    data: Dataset,
    optimizer: str,
    *,
    scales: tuple[float, ...],
    batch_size: int,
    seed: int,
    steps: int = LR_STEPS,
    **bounds: float,
) -> LRProbeResult:
    """The range test of one `optimizer` on the spec's network at init `scales`, with the spec's fixed
    hyperparameters; `bounds` may give eps_min and eps_max."""
    return lr_probe(
        lambda rng: probe_model(spec, data, scales, rng),
        optimizer,
        data,
        hparams=optimizer_hparams(spec, optimizer),
        steps=steps,
        batch_size=batch_size,
        rng=np.random.default_rng(seed),
        **bounds,
    )


def lr_record(
    spec: StudySpec,
    data: Dataset,
    *,
    scales: tuple[float, ...],
    optimizers: tuple[str, ...] | None = None,
    batch_size: int | None = None,
    steps: int = LR_STEPS,
    seed: int | None = None,
) -> dict:
    """Run the learning-rate probe for each optimizer; the record holds every curve and the union range."""
    seed = spec.study.seed if seed is None else seed
    batch_size = spec.train.batch_size if batch_size is None else batch_size
    check_probe_data(data, batch_size)
    results = {
        optimizer: spec_lr_probe(spec, data, optimizer, scales=scales, batch_size=batch_size, seed=seed,
                                 steps=steps).to_dict()
        for optimizer in optimizers or spec.search.optimizers
    }
    low = min(r["range"][0] for r in results.values())
    high = max(r["range"][1] for r in results.values())
    return {"batch_size": batch_size, "seed": seed, "steps": steps, "scales": list(scales),
            "range": [low, high], "optimizers": results}


def resolve_spec_autos(spec: StudySpec, data: Dataset) -> tuple[StudySpec, dict | None, dict | None]:
    """Resolve `"auto"` values of `spec` with the probes: (resolved spec, init-guess record, lr-probe record).

    A record is None when its probe did not run (no `"auto"` for it). The resolved spec has no `"auto"`.
    """
    init_auto, eps_auto = isinstance(spec.search.init_scale, Auto), isinstance(spec.search.eps0, Auto)
    if not (init_auto or eps_auto):
        return spec, None, None
    init_rec = guess_record(spec, data) if init_auto else None
    scales = tuple(init_rec["multipliers"]) if init_rec is not None else centre_scales(spec)
    lr_rec = lr_record(spec, data, scales=scales) if eps_auto else None
    resolved = resolve_auto(
        spec,
        init_scale_guess=list(scales) if init_auto else None,
        eps0_range=tuple(lr_rec["range"]) if lr_rec is not None else None,
        spread=SPREAD,
    )
    return resolved, init_rec, lr_rec


def warm_start_params(spec: StudySpec, init_rec: dict | None, lr_rec: dict | None) -> dict[str, Any]:
    """The parameters to enqueue as the study's first trial (`study.enqueue_trial`): the probes' picks.

    `spec` is the resolved spec. Init scales: `init_scale_0 .. init_scale_{L-1}` = the guess (or
    `init_scale` = their geometric mean with `init_scale_shared`). eps0: the probe's suggestion for the
    spec's first optimizer, with `optimizer` fixed to it when the spec offers a choice. Values are clipped
    into the resolved ranges; parameters left out are sampled as usual.
    """
    params: dict[str, Any] = {}
    if init_rec is not None:
        guess = [float(g) for g in init_rec["multipliers"]]
        if spec.search.init_scale_shared:
            params["init_scale"] = math.exp(sum(math.log(g) for g in guess) / len(guess))
        else:
            params.update({f"init_scale_{i}": g for i, g in enumerate(guess)})
    if lr_rec is not None:
        optimizer = spec.search.optimizers[0]
        if isinstance(spec.search.optimizer, Choice):
            params["optimizer"] = optimizer
        params["eps0"] = float(lr_rec["optimizers"][optimizer]["suggestion"])
    return {name: _clip(spec, name, value) for name, value in params.items()}


def _clip(spec: StudySpec, name: str, value: Any) -> Any:
    if name == "optimizer":
        return value
    if name == "eps0":
        param = spec.search.eps0
    elif isinstance(spec.search.init_scale, PerLayer):
        param = spec.search.init_scale.values[int(name.rsplit("_", 1)[1])]
    else:
        param = spec.search.init_scale
    if isinstance(param, Range):
        return min(max(value, param.low), param.high)
    return value
