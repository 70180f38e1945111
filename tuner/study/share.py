"""Equal shares of a study's trials for its optimizers: `[study] optimizer_share = "equal"`.

Which optimizer is best is a question about equal tuning budgets (Choi et al. 2019, "On Empirical
Comparisons of Optimizers for Deep Learning"; Schmidt et al. 2021, "Descending through a Crowded Valley"):
left to itself, TPE spends most trials on the optimizer that did well first (46 of 60 on the quick-start
study), and the others are compared untuned. With an equal share:

- the optimizer of each new trial is decided under the study's claim lock (`queue_least_used`, called by
  the worker's claim just before `study.ask`): a trial is queued for the optimizer with the fewest trials
  so far, counting every trial that will or may still count (COMPLETE, PRUNED, RUNNING, WAITING; a FAIL is
  replaced and does not count). Counts never differ by more than one, so with N trials and k optimizers
  each gets floor(N/k) or ceil(N/k), with any number of workers;
- the optimizer rides on the queued trial as the user attribute `optimizer` (a retried copy keeps it);
- every other parameter is suggested under the optimizer's own name space (`adam.eps0`,
  `adam.init_scale_0`, ...): grouped TPE then models each optimizer from its own trials only, so a fast
  learner does not decide where the others sample.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import optuna
from optuna.trial import TrialState

from tuner.study.spec import StudySpec

SHARE_ATTR = "optimizer"  # the user attribute that carries a queued trial's optimizer
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def trial_optimizer(trial: optuna.trial.FrozenTrial) -> str | None:
    """The optimizer a trial has or was queued with, or None."""
    return trial.user_attrs.get(SHARE_ATTR) or trial.params.get("optimizer")


def optimizer_counts(study: optuna.Study, optimizers: tuple[str, ...]) -> dict[str, int]:
    """Trials per optimizer over the states that count toward the total (see the module docstring)."""
    counts = dict.fromkeys(optimizers, 0)
    for trial in study.get_trials(deepcopy=False, states=COUNTED):
        name = trial_optimizer(trial)
        if name in counts:
            counts[name] += 1
    return counts


def least_used(counts: dict[str, int]) -> str:
    """The optimizer with the fewest trials; ties go to the one listed first."""
    return min(counts, key=lambda name: counts[name])


def queue_least_used(study: optuna.Study, optimizers: tuple[str, ...]) -> str | None:
    """Queue a trial for the least-used optimizer, unless a trial is already waiting (`ask` takes that one
    first: a retried copy or a warm start). Returns the optimizer queued, or None. Call it under the
    study's lock, just before `study.ask`, so that no other worker counts in between."""
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return None
    name = least_used(optimizer_counts(study, optimizers))
    study.enqueue_trial({}, user_attrs={SHARE_ATTR: name})
    return name


def share_hook(spec: StudySpec) -> Callable[[optuna.Study], object] | None:
    """What a worker's claim calls just before each ask: `queue_least_used` for an equal share, else None."""
    if spec.study.optimizer_share != "equal":
        return None
    return partial(queue_least_used, optimizers=spec.search.optimizers)
