"""`"auto"` in a spec: the probes run on the spec's network and data, and their results anchor the search.

`resolve_spec_autos(spec, data)` builds the spec's network with its base init scheme at scale 1 and runs
the init-scale guess (LSUV) on one training batch when `init_scale = "auto"` (on GUESS_DRAWS draws of the
network's weights, their multipliers averaged: `guess_record`), then the learning-rate probe
of every optimizer of the spec, each with its own sweeps, when `eps0 = "auto"` (from the guessed
initialisation when there is one). `resolve_auto` turns their results into the search space:

    init_scale_l   hidden layer l: guess_l/4 .. guess_l·4;  the output layer: guess/10 .. guess·10 (log)
    eps0           anchored: eps0 = anchor[optimizer] · eps0_factor, eps0_factor in 1/10 .. 10 (log), the
                   anchor being the probe's suggestion for that optimizer (Adam's and SGD's good rates
                   differ by two decades: one shared range would give each the other's rates)

The output layer gets its own, wider range: where accuracy peaks its scale moves furthest from "unit
variance" (a small or a large logit scale), and it sets the effective rate of the whole net. These widths
were chosen from measured alternatives (bench/RESULTS.md, "Auto as an anchor"). The probes cost a fixed
share of the study's training: PROBE_BUDGET of its planned minibatch steps, split over the optimizers
(`probe_plan`).

`warm_start_trials` gives the study's first trials (`study.enqueue_trial`): the probes' own picks, so the
guess itself is evaluated first and the sampler starts from it. Everything is seeded from the study's
seed: the same spec gives the same records.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from tuner.errors import ProbeError, SpecError
from tuner.nn.data import Dataset
from tuner.nn.mlp import MLP
from tuner.optim import HYPERPARAMETERS
from tuner.probe.init_guess import init_scale_guess
from tuner.probe.lr import LRProbeResult, lr_probe
from tuner.probe.stats import activation_stats
from tuner.study.objective import build_model, total_steps
from tuner.study.params import Anchored, Auto, Fixed, Param, PerLayer, Range
from tuner.study.space import TrialConfig
from tuner.study.spec import OPTIONAL_HPARAMS, StudySpec

HIDDEN_SPREAD = 4.0  # hidden layers' init scale: guess/4 .. guess*4
OUTPUT_SPREAD = 10.0  # the output layer's: guess/10 .. guess*10
EPS0_FACTOR = (0.1, 10.0)  # eps0 = the probe's suggestion x a factor in this log range
PROBE_BUDGET = 0.015  # the learning-rate probes' share of the study's planned training steps
LR_STEPS, MIN_STEPS = 100, 60  # the first sweep's steps, or fewer (not below MIN_STEPS) on a small budget
MAX_PROBE_BUDGET = 4 * LR_STEPS  # an optimizer's probe never takes more steps, however long the study
MAX_SWEEPS = 12  # nor more sweeps
GUESS_DRAWS = 5  # networks the init-scale guess is averaged over (`guess_record`)


def resolve_auto(
    spec: StudySpec,
    *,
    init_scale_guess: list[float] | None = None,
    eps0_anchors: dict[str, float] | None = None,
) -> StudySpec:
    """Replace `"auto"` with the search space anchored on the probes' results (module docstring); other
    values are left alone. With `init_scale_shared`, one range centred on the guesses' geometric mean."""
    label, search = spec.label, spec.search
    update: dict[str, Param] = {}
    if isinstance(search.eps0, Auto):
        if eps0_anchors is None:
            raise SpecError(f"{label}: search.eps0: 'auto' needs the learning-rate probe's suggestions, got none")
        missing = [o for o in search.optimizers if not (math.isfinite(eps0_anchors.get(o, math.nan))
                                                       and eps0_anchors[o] > 0)]
        if missing:
            raise SpecError(f"{label}: search.eps0: no finite suggestion > 0 for {', '.join(missing)}")
        update["eps0"] = Anchored(tuple((o, float(eps0_anchors[o])) for o in search.optimizers), *EPS0_FACTOR)
    if isinstance(search.init_scale, Auto):
        update["init_scale"] = init_scale_space(spec, init_scale_guess)
    if not update:
        return spec
    return spec.model_copy(update={"search": search.model_copy(update=update)})


def init_scale_space(spec: StudySpec, guess: list[float] | None) -> Range | PerLayer:
    """The init-scale ranges around the guess (one per dense layer, or one shared)."""
    label, n_layers = spec.label, spec.model.n_layers
    if guess is None:
        raise SpecError(f"{label}: search.init_scale: 'auto' needs the init-scale guess, got none")
    guess = [float(g) for g in guess]
    if len(guess) != n_layers:
        raise SpecError(
            f"{label}: search.init_scale: the guess needs {n_layers} values (one per dense layer), got {len(guess)}"
        )
    if not all(math.isfinite(g) and g > 0 for g in guess):
        raise SpecError(f"{label}: search.init_scale: the guess must be finite and > 0, got {guess!r}")
    if spec.search.init_scale_shared:
        centre = math.exp(sum(math.log(g) for g in guess) / n_layers)
        return Range(centre / HIDDEN_SPREAD, centre * HIDDEN_SPREAD, log=True)
    spreads = [HIDDEN_SPREAD] * (n_layers - 1) + [OUTPUT_SPREAD]
    return PerLayer(tuple(Range(g / s, g * s, log=True) for g, s in zip(guess, spreads, strict=True)))


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


def probe_batch_size(spec: StudySpec, data: Dataset) -> int:
    """The spec's batch size, or the whole training set when that is smaller (as training takes it)."""
    return min(spec.train.batch_size, len(data.x_train))


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


def guess_record(spec: StudySpec, data: Dataset, *, batch_size: int | None = None, seed: int | None = None,
                 draws: int = GUESS_DRAWS) -> dict:
    """Run the init-scale guess on `draws` networks of the spec (fresh weights each) and one training
    batch; its JSON-able record.

    The multipliers are the geometric means of the draws' (`draw_multipliers`): a layer of few units is
    rescaled by the std of a few columns of random weights, whose direction alone moves it (a regression's
    one output unit: x1.47 between study seeds from one network, x1.27 from five), while the study
    draws new weights for every trial. The statistics are the first draw's, before at scale 1 and after
    at the chosen multipliers; with `draws=1` the record is that network's LSUV.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ProbeError(f"draws must be an integer >= 1, got {draws!r}")
    seed = spec.study.seed if seed is None else seed
    batch_size = probe_batch_size(spec, data) if batch_size is None else batch_size
    rng = np.random.default_rng(seed)
    x, y = training_batch(data, batch_size, rng)
    ones = (1.0,) * spec.model.n_layers
    first = probe_model(spec, data, ones, rng)
    started = time.perf_counter()
    before = activation_stats(first, x, y)
    guesses = [init_scale_guess(first, x, stats=False)]  # the statistics once, of the first network
    guesses += [init_scale_guess(probe_model(spec, data, ones, rng), x, stats=False) for _ in range(draws - 1)]
    own = np.array([g.multipliers for g in guesses])
    multipliers = np.exp(np.log(own).mean(axis=0))
    if draws > 1:  # the first network, LSUV-initialised with its own multipliers, moved to the chosen ones
        for weight, chosen, mine in zip(first.weights, multipliers, own[0], strict=True):
            weight *= weight.dtype.type(chosen / mine)
    after = activation_stats(first, x, y)
    record = guesses[0].to_dict()
    record.update(multipliers=[float(m) for m in multipliers], draws=draws, draw_multipliers=own.tolist(),
                  before=[s.to_dict() for s in before], after=[s.to_dict() for s in after],
                  seconds=time.perf_counter() - started)
    return {"scheme": base_scheme(spec), "batch_size": batch_size, "seed": seed, **record}


def probe_scales(spec: StudySpec, data: Dataset, *, batch_size: int, seed: int) -> tuple[float, ...]:
    """The init scales the learning-rate probe starts from: the guess with `init_scale = "auto"`, else the
    centre of the spec's init_scale."""
    check_probe_data(data, batch_size)
    if isinstance(spec.search.init_scale, Auto):
        return tuple(guess_record(spec, data, batch_size=batch_size, seed=seed)["multipliers"])
    return centre_scales(spec)


class ProbePlan(NamedTuple):
    """Each optimizer's range test: a first sweep of `steps`, then shorter ones (`tuner.probe.lr`) while
    they fit in `budget` steps in all, at most `repeats` sweeps."""

    repeats: int
    steps: int
    budget: int


def probe_plan(spec: StudySpec, data: Dataset) -> ProbePlan:
    """Each optimizer's probe: PROBE_BUDGET of the study's planned training steps (n_trials x epochs x
    minibatches per epoch), split over its optimizers, at most MAX_PROBE_BUDGET; a first sweep of LR_STEPS,
    or shorter (at least MIN_STEPS) when the share is smaller, which then is the whole probe."""
    share = PROBE_BUDGET * spec.study.n_trials * total_steps(spec, data) / len(spec.search.optimizers)
    steps = int(min(LR_STEPS, max(MIN_STEPS, share)))
    return ProbePlan(MAX_SWEEPS, steps, max(steps, int(min(share, MAX_PROBE_BUDGET))))


def spec_lr_probe(spec: StudySpec, data: Dataset, optimizer: str, *, scales: tuple[float, ...], batch_size: int,
                  seed: int, steps: int = LR_STEPS, repeats: int = 1, budget: int | None = None,
                  **options: float | None) -> LRProbeResult:
    """The range test of one `optimizer` on the spec's network at init `scales`, with the spec's fixed
    hyperparameters; `options` may give `lr_probe`'s eps_min, eps_max and lead_decades. Every optimizer of
    a study is probed from the same seed: the same networks and minibatches (common random numbers)."""
    return lr_probe(
        lambda rng: probe_model(spec, data, scales, rng),
        optimizer,
        data,
        hparams=optimizer_hparams(spec, optimizer),
        steps=steps,
        repeats=repeats,
        budget=budget,
        batch_size=batch_size,
        rng=np.random.default_rng(seed),
        **options,
    )


def lr_record(spec: StudySpec, data: Dataset, *, scales: tuple[float, ...], seed: int | None = None) -> dict:
    """Run the learning-rate probe of every optimizer of the spec; each result gets the eps0 range it sets."""
    seed = spec.study.seed if seed is None else seed
    batch_size = probe_batch_size(spec, data)
    check_probe_data(data, batch_size)
    plan = probe_plan(spec, data)
    results = {}
    for optimizer in spec.search.optimizers:
        result = spec_lr_probe(spec, data, optimizer, scales=scales, batch_size=batch_size, seed=seed,
                               steps=plan.steps, repeats=plan.repeats, budget=plan.budget)
        low, high = (result.suggestion * f for f in EPS0_FACTOR)
        results[optimizer] = {**result.to_dict(), "range": [low, high]}
    return {"batch_size": batch_size, "seed": seed, "steps": plan.steps, "budget": plan.budget, "scales": list(scales),
            "factor": list(EPS0_FACTOR), "optimizers": results}


def resolve_spec_autos(spec: StudySpec, data: Dataset) -> tuple[StudySpec, dict | None, dict | None]:
    """Resolve `"auto"` values of `spec` with the probes: (resolved spec, init-guess record, lr-probe record).

    A record is None when its probe did not run (no `"auto"` for it). The resolved spec has no `"auto"`;
    the init-guess record holds the per-layer ranges it set (`ranges`), the lr-probe record each
    optimizer's eps0 range (`optimizers[name]["range"]`).
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
        eps0_anchors={o: r["suggestion"] for o, r in lr_rec["optimizers"].items()} if lr_rec else None,
    )
    if init_rec is not None:
        init_rec["ranges"] = [[p.low, p.high] for p in _layer_ranges(resolved)]
    return resolved, init_rec, lr_rec


def _layer_ranges(spec: StudySpec) -> list[Range]:
    scale = spec.search.init_scale
    return list(scale.values) if isinstance(scale, PerLayer) else [scale] * spec.model.n_layers


def anchors_of(init_rec: dict | None, lr_rec: dict | None) -> tuple[list[float] | None, dict[str, float] | None]:
    """The guess and the per-optimizer suggestions held in stored probe records (None where not run)."""
    guess = [float(g) for g in init_rec["multipliers"]] if init_rec else None
    anchors = {o: float(r["suggestion"]) for o, r in lr_rec["optimizers"].items()} if lr_rec else None
    return guess, anchors
