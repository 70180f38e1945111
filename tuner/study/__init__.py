"""Studies: spec files, the search space, the objective, `"auto"` from the probes, the catalog, workers.

    spec       load_spec, parse_spec, spec_from_dict: TOML -> a validated, frozen StudySpec
    params     the values of a spec's [search] table (fixed, choice, range, "auto", per layer)
    space      suggest: a spec -> Optuna suggestions -> one trial's TrialConfig; samplers and pruners
    objective  make_objective: one trial = one training run, its curve and its value
    replay     a finished trial trained again the same way, checked against its stored curve
    fixed_spec a trial's configuration as a spec with every searched value fixed
    blas       the BLAS threads a trial records and its replay sets again
    data       load_study_data: the study's dataset, the same split on every worker
    autos      "auto" eps0 and init scales resolved from the probes, and the warm-start trial
    catalog    create, list, delete and clean up studies
    limits     the study-name rule and the upper bound of every number a spec or a command takes
    budget     the memory one trial of a spec takes, and the refusal of a network this machine cannot hold
    stale      failing and re-queueing the trials of dead workers
    worker     the worker loop and its parts (claim, heartbeat, interrupt, supervisor)

The names below are imported lazily, on first use, so that `tuner.study.limits` (the CLI's option bounds)
loads without Optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner.lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use (__getattr__)
    from tuner.study.space import (
        TrialConfig,
        make_pruner,
        make_sampler,
        suggest,
        trial_seed,
    )
    from tuner.study.spec import StudySpec, load_spec, parse_spec, spec_from_dict

# name -> the module that defines it
_WHERE = {
    "TrialConfig": "tuner.study.space",
    "make_pruner": "tuner.study.space",
    "make_sampler": "tuner.study.space",
    "suggest": "tuner.study.space",
    "trial_seed": "tuner.study.space",
    "StudySpec": "tuner.study.spec",
    "load_spec": "tuner.study.spec",
    "parse_spec": "tuner.study.spec",
    "spec_from_dict": "tuner.study.spec",
}

__all__ = [
    "StudySpec",
    "TrialConfig",
    "load_spec",
    "make_pruner",
    "make_sampler",
    "parse_spec",
    "spec_from_dict",
    "suggest",
    "trial_seed",
]


__getattr__ = lazy_exports(__name__, _WHERE)
