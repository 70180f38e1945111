"""The study's first trials: the probes' own picks, queued with `study.enqueue_trial` when it is created.

The warm start is exactly what the probes measured: the guessed init scales, eps0 at the probe's
suggestion (`eps0_factor` = 1), and every searched hyperparameter the probe left at the optimizer's
default (alpha 0.9, Adam's rho1 0.9 and rho2 0.999, ...) at that default. So the guess itself is
evaluated first, and the sampler starts from points known to train. One trial per optimizer of the spec,
in its order, when the learning-rate probe ran (each optimizer has its own suggestion; measured against
one trial for the first optimizer only: bench/RESULTS.md, "Auto as an anchor"), else one trial with the
guessed scales.

Then, while the queue is shorter than the sampler's random start-up (`n_startup_trials`, default 10), the
same picks at `eps0_factor` = 0.3 and then 3, every optimizer in turn: the best rate of a full run lies
within about half a decade of the suggestion on most of the measured problems, and not in the same
direction on all, so those start-up trials are spent along the axis the probe is least sure of instead
of at random (measured: bench/RESULTS.md, "Heuristic vs search"). These further picks never make the
queue longer than the start-up phase the spec asked for, nor than the study's total; nor do the first
picks, when a study has fewer trials than optimizers (the optimizers listed last get none: a queued trial
the study never runs would stay waiting in the storage).

With `optimizer_share = "equal"` each trial carries its optimizer (`tuner.study.share`) and its names
under the optimizer's prefix. Values are clipped into the searched ranges; parameters left
out are sampled as usual.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from tuner.optim import HYPERPARAMETERS
from tuner.optim import make as make_optimizer
from tuner.study.params import Anchored, Choice, PerLayer, Range
from tuner.study.share import SHARE_ATTR
from tuner.study.space import DEFAULT_STARTUP_TRIALS
from tuner.study.spec import OPTIONAL_HPARAMS, StudySpec

WARM_START_ATTR = "warm_start"  # user attribute marking a queued probe pick
RATE_STEPS = (0.3, 3.0)  # the eps0 factors of the further picks, after the suggestions themselves


def warm_start_trials(spec: StudySpec, init_rec: dict | None, lr_rec: dict | None) -> list[tuple[dict, dict]]:
    """(params, user_attrs) of each trial to queue first, in order; [] when no probe ran.

    `spec` is the resolved spec (no `"auto"` left).
    """
    if init_rec is None and lr_rec is None:
        return []
    equal = spec.study.optimizer_share == "equal"
    optimizers = spec.search.optimizers if equal or lr_rec is not None else spec.search.optimizers[:1]
    optimizers = optimizers[: spec.study.n_trials]  # a queued trial past the study's total would wait forever
    trials = [_trial(spec, optimizer, _picks(spec, optimizer, init_rec, probed=lr_rec is not None), equal,
                     probed=lr_rec is not None) for optimizer in optimizers]
    if lr_rec is None or not isinstance(spec.search.eps0, Anchored):
        return trials
    startup = DEFAULT_STARTUP_TRIALS if spec.study.n_startup_trials is None else spec.study.n_startup_trials
    startup = min(startup, spec.study.n_trials)
    for factor, optimizer in itertools.product(RATE_STEPS, optimizers):
        if len(trials) >= startup:
            break
        trials.append(_trial(spec, optimizer, _picks(spec, optimizer, init_rec, probed=True, factor=factor), equal,
                             probed=True))
    return trials


def _trial(spec: StudySpec, optimizer: str, params: dict[str, Any], equal: bool, *,
           probed: bool) -> tuple[dict, dict]:
    """(params, user_attrs) of one queued trial: with an equal share the names carry the optimizer's prefix."""
    attrs: dict[str, Any] = {WARM_START_ATTR: "probe"}
    if equal:
        params = {f"{optimizer}.{name}": value for name, value in params.items()}
        attrs[SHARE_ATTR] = optimizer
    elif isinstance(spec.search.optimizer, Choice) and probed:
        params["optimizer"] = optimizer
    return params, attrs


def _picks(spec: StudySpec, optimizer: str, init_rec: dict | None, *, probed: bool,
           factor: float = 1.0) -> dict[str, Any]:
    """The plain-named parameters of one optimizer's warm start, eps0 at `factor` times its suggestion."""
    search, params = spec.search, {}
    if init_rec is not None:
        guess = [float(g) for g in init_rec["multipliers"]]
        if isinstance(search.init_scale, PerLayer):
            params.update({f"init_scale_{i}": _clip(g, p) for i, (g, p) in enumerate(zip(guess, search.init_scale.values,
                                                                                          strict=True))})
        else:
            params["init_scale"] = _clip(math.exp(sum(math.log(g) for g in guess) / len(guess)), search.init_scale)
    if probed and isinstance(search.eps0, Anchored):
        params["eps0_factor"] = _clip(factor, Range(search.eps0.low, search.eps0.high, log=True))
        defaults = make_optimizer(optimizer)
        for name in OPTIONAL_HPARAMS:
            param = getattr(search, name)
            if name in HYPERPARAMETERS[optimizer] and isinstance(param, Range | Choice):
                default = float(getattr(defaults, name))
                if isinstance(param, Range) or default in param.values:
                    params[name] = _clip(default, param)
    return params


def _clip(value: float, param: object) -> float:
    if isinstance(param, Range):
        return min(max(value, param.low), param.high)
    return value
