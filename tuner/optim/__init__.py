"""Optimizers of Goodfellow et al., *Deep Learning*, ch. 8 (Alg. 8.1-8.7), one per module.

    opt = make("nesterov", eps0=0.1, alpha=0.9)   # eps_tau defaults to 0.01*eps0, tau to the run length
    opt.start(model.params, total_steps)          # allocate state, k = 0
    loss = opt.step(model.params, model.grad, closure)   # closure() -> loss; fills grad at current params

Every optimizer takes the schedule of eq. 8.14 (`eps0`, `eps_tau`, `tau`; `linear_decay` is that
schedule as a pure function of k) and optional gradient clipping by global norm (`clip_norm`);
`HYPERPARAMETERS[name]` lists the ones it takes besides those. `DOMAINS[name]` is the `Domain` each value
must lie in (α ∈ [0, 1), δ > 0, ...), checked once when the optimizer is made.
"""

from __future__ import annotations

from tuner.errors import HyperparameterError
from tuner.optim._base import COMMON, Optimizer
from tuner.optim.adagrad import AdaGrad
from tuner.optim.adam import Adam
from tuner.optim.clipping import clip_by_global_norm
from tuner.optim.domains import DOMAINS, Domain
from tuner.optim.momentum import Momentum
from tuner.optim.nesterov import Nesterov
from tuner.optim.rmsprop import RMSProp
from tuner.optim.rmsprop_nesterov import RMSPropNesterov
from tuner.optim.schedule import linear_decay
from tuner.optim.sgd import SGD

_CLASSES: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSProp, RMSPropNesterov, Adam)
}
OPTIMIZERS: tuple[str, ...] = tuple(_CLASSES)
HYPERPARAMETERS: dict[str, tuple[str, ...]] = {name: cls.hyperparameters for name, cls in _CLASSES.items()}
COMMON_HYPERPARAMETERS: tuple[str, ...] = COMMON


def make(name: str, **hparams: float | int | None) -> Optimizer:
    """The optimizer called `name` with the given hyperparameters; the rest take their defaults.

    `eps_tau`, `tau` and `clip_norm` may be None (0.01·eps0, the run's length, no clipping).
    Raises HyperparameterError for an unknown name, a hyperparameter the optimizer does not take, or a
    value out of its domain.
    """
    if name not in _CLASSES:
        raise HyperparameterError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    takes = (*COMMON, *HYPERPARAMETERS[name])
    for key in hparams:
        if key not in takes:
            raise HyperparameterError(f"{name} does not take {key} (it takes {', '.join(takes)})")
    return _CLASSES[name](**hparams)


__all__ = [
    "COMMON_HYPERPARAMETERS",
    "DOMAINS",
    "HYPERPARAMETERS",
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Domain",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSProp",
    "RMSPropNesterov",
    "clip_by_global_norm",
    "linear_decay",
    "make",
]
