"""Studies: spec files (parse + validate), the search space, the objective and the worker loop."""

from tuner.study.space import (
    TrialConfig,
    direction,
    make_pruner,
    make_sampler,
    resolve_auto,
    suggest,
    trial_seed,
)
from tuner.study.spec import StudySpec, load_spec, parse_spec, spec_from_dict

__all__ = [
    "StudySpec",
    "TrialConfig",
    "direction",
    "load_spec",
    "make_pruner",
    "make_sampler",
    "parse_spec",
    "resolve_auto",
    "spec_from_dict",
    "suggest",
    "trial_seed",
]
