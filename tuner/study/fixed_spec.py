"""One trial's configuration as a spec with nothing left to search: `tuner study export-spec`.

Every `[search]` value becomes the trial's own, written as a fixed value (a number or a name, the spec
format's way of saying "never suggested"): the optimizer, eps0 as an absolute rate (an anchored eps0 is
anchor x factor), the hyperparameters the optimizer takes, the schedule's ratio and fraction, the init
scheme and one init scale per layer (a single number when all layers share it). The trial's training seed
becomes `train.seed`, so the one trial of `tuner run` on the file is the same run as the trial it came
from; the study seed, which also splits the data, is kept. `n_trials = 1` and no pruner: the run goes to
its end. Everything else (data, model, training length, dtype) is the study's spec as stored.
"""

from __future__ import annotations

from typing import Any

import tomli_w
from optuna.trial import FrozenTrial

from tuner.storage import StudyHandle
from tuner.study.limits import name_problem
from tuner.study.objective import training_seed
from tuner.study.replay import stored_spec, trial_config
from tuner.study.spec import OPTIONAL_HPARAMS, StudySpec, parse_spec


def export_fixed_spec(handle: StudyHandle, trial: FrozenTrial) -> str:
    """The TOML of `trial` of the study `handle` holds, every searched value fixed (`fixed_spec_toml`)."""
    return fixed_spec_toml(stored_spec(handle), trial, study_name=handle.name)


def fixed_spec_dict(spec: StudySpec, trial: FrozenTrial, *, study_name: str) -> dict[str, Any]:
    """The spec of `trial` with every searched value fixed, as a TOML-ready dict (no None values)."""
    config = trial_config(spec, trial)
    document = spec.to_dict()
    for key in ("source_path", "base_dir"):
        document.pop(key, None)
    name = f"{study_name}-trial-{trial.number}"
    document["study"].update(
        name=name if name_problem(name) is None else f"trial-{trial.number}", n_trials=1, pruner="none",
        n_startup_trials=None, n_warmup_epochs=None, optimizer_share="sampler",
    )
    document["train"]["seed"] = training_seed(spec, trial.number)
    scales = list(config.init_scales)
    document["search"] = {
        "optimizer": config.optimizer,
        "eps0": config.hparams["eps0"],
        **{k: config.hparams[k] for k in OPTIONAL_HPARAMS if k in config.hparams},
        "eps_tau_ratio": config.params["eps_tau_ratio"],
        "tau_fraction": config.hparams["tau_fraction"],
        "init": config.init,
        "init_scale": scales[0] if len(set(scales)) == 1 else scales,
    }
    return _without_none(document)


def _without_none(value: Any) -> Any:
    """TOML has no null: a key whose value is None is left out (it then takes its default, None)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def fixed_spec_toml(spec: StudySpec, trial: FrozenTrial, *, study_name: str) -> str:
    """`fixed_spec_dict` as TOML text with a header saying where it came from; it parses to a valid spec."""
    value = "" if trial.value is None else f", value {trial.value!r}"
    header = (f"# Trial {trial.number} of study '{study_name}' ({trial.state.name}{value}), every searched value\n"
              "# fixed (tuner study export-spec). `tuner run` on this file trains that trial's run again.\n\n")
    text = header + tomli_w.dumps(fixed_spec_dict(spec, trial, study_name=study_name))
    parse_spec(text, source=f"<spec of trial {trial.number}>")  # a SpecError here is tuner's bug, not the user's
    return text
