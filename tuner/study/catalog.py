"""Creating, listing, deleting and cleaning up studies: an Optuna study plus the project's own records.

The validated spec is stored in `tuner_studies` when a study is created, so workers on any machine load it
from the database rather than from a local file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import optuna
from sqlalchemy.engine import Engine

import tuner
from tuner.errors import StudyExistsError, StudyNotFoundError
from tuner.nn.data import BUILTIN
from tuner.storage import (
    delete_study_records,
    get_study,
    insert_study,
    list_study_records,
    open_storage,
    open_study,
    optuna_storage,
    study_lock,
    trial_state_counts,
)
from tuner.storage.optuna_adapter import has_optuna_tables, storage_of
from tuner.storage.records import StudyRecord, fail_stale_workers
from tuner.study.autos import anchors_of, has_auto, resolve_auto, resolve_spec_autos
from tuner.study.data import load_study_data
from tuner.study.space import make_pruner, make_sampler
from tuner.study.spec import StudySpec, spec_from_dict
from tuner.study.stale import fail_dead_trials
from tuner.study.warm_start import warm_start_trials

SPEC_ATTR = "tuner_spec"


@dataclass(frozen=True)
class StudySummary:
    """One line of `tuner study list`."""

    name: str
    direction: str
    n_trials: int
    counts: dict[str, int]
    best: float | None


def create_study(
    storage_url: str, spec: StudySpec, *, name: str | None = None, load_if_exists: bool = False
) -> tuple[str, bool]:
    """Create the Optuna study and its `tuner_studies` record; return (name, created).

    With `load_if_exists`, an existing study of that name is reused when its stored spec is the same and
    refused when it differs (a silent reuse would mix two searches in one study).
    """
    engine = open_storage(storage_url, create_if_empty=True)
    study_name = name or spec.study.name
    existing = get_study(engine, study_name)
    if existing is not None:
        if not load_if_exists:
            raise StudyExistsError(
                f"study '{study_name}' already exists; use --load-if-exists to reuse it or --name to pick another"
            )
        if existing.spec != _stored_form(spec, existing).to_dict():
            raise StudyExistsError(
                f"study '{study_name}' already exists with a different spec; pick another --name"
            )
        return study_name, False

    # The data file is read and the probes run before anything is stored, so a bad file or a spec they
    # cannot probe leaves nothing behind.
    resolved, init_rec, lr_rec = _resolve_autos(spec)
    storage = optuna_storage(storage_url)
    try:
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            direction=resolved.study.direction,
            sampler=make_sampler(resolved),
            pruner=make_pruner(resolved),
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise StudyExistsError(
            f"an Optuna study named '{study_name}' already exists in this storage without a tuner spec; "
            "pick another --name"
        ) from None
    try:
        _record(engine, study, spec, resolved, init_rec, lr_rec)
    except Exception:
        optuna.delete_study(study_name=study_name, storage=storage)
        delete_study_records(engine, study_name)
        raise
    return study_name, True


def _record(engine: Engine, study: optuna.Study, spec: StudySpec, resolved: StudySpec,
            init_rec: dict | None, lr_rec: dict | None) -> None:
    """Store the study's record and attributes, and queue the probes' guess as its first trial."""
    # A spec rebuilt from a dict has no TOML text; its JSON form is the record then.
    spec_toml = spec.raw_toml if spec.raw_toml is not None else json.dumps(spec.to_dict(), indent=1)
    insert_study(engine, study.study_name, resolved.to_dict(), spec_toml, str(spec.source_path or ""),
                 init_guess=init_rec, lr_probe=lr_rec)
    study.set_user_attr(SPEC_ATTR, json.dumps(resolved.to_dict(), sort_keys=True))
    study.set_user_attr("tuner_version", tuner.__version__)
    study.set_user_attr("objective", spec.study.objective)
    if init_rec is not None:
        study.set_user_attr("tuner_init_guess", {"scheme": init_rec["scheme"], "multipliers": init_rec["multipliers"]})
    if lr_rec is not None:
        suggestions = {o: r["suggestion"] for o, r in lr_rec["optimizers"].items()}
        study.set_user_attr("tuner_lr_probe", {"factor": lr_rec["factor"], "suggestions": suggestions})
    for params, user_attrs in warm_start_trials(resolved, init_rec, lr_rec):  # the probes' picks go first
        study.enqueue_trial(params, user_attrs=user_attrs)


def _resolve_autos(spec: StudySpec) -> tuple[StudySpec, dict | None, dict | None]:
    """The spec with its "auto" values resolved by the probes, and the probes' records (None if not run).

    A data file (not a built-in dataset) is loaded and checked here even without "auto": every worker
    would otherwise fail on it, after the study was stored.
    """
    if not has_auto(spec) and spec.data.source in BUILTIN:
        return spec, None, None
    data = load_study_data(spec)
    if not has_auto(spec):
        return spec, None, None
    return resolve_spec_autos(spec, data)


def _stored_form(spec: StudySpec, existing: StudyRecord) -> StudySpec:
    """`spec` as it would have been stored next to `existing`: "auto" resolved with the stored probe results."""
    if not has_auto(spec):
        return spec
    guess, anchors = anchors_of(existing.init_guess, existing.lr_probe)
    return resolve_auto(spec, init_scale_guess=guess, eps0_anchors=anchors)


def list_studies(storage_url: str) -> list[StudySummary]:
    """Every study in the storage with its counts by state and best value."""
    engine = open_storage(storage_url)
    if not has_optuna_tables(engine):
        return []
    tuner_studies = {r.name: r for r in list_study_records(engine)}
    summaries = []
    for s in optuna.get_all_study_summaries(optuna_storage(storage_url, create_tables=False), include_best_trial=True):
        record = tuner_studies.get(s.study_name)
        n_trials = int(record.spec["study"]["n_trials"]) if record is not None else s.n_trials
        best = s.best_trial.value if s.best_trial is not None else None
        summaries.append(
            StudySummary(
                name=s.study_name,
                direction=s.direction.name.lower(),
                n_trials=n_trials,
                counts=trial_state_counts(engine, s.study_name),
                best=best,
            )
        )
    return sorted(summaries, key=lambda s: s.name)


def delete_study(storage_url: str, study_name: str) -> None:
    """Delete the Optuna study and every tuner record of it."""
    handle = open_study(storage_url, study_name)
    optuna.delete_study(study_name=study_name, storage=storage_of(handle.study))
    delete_study_records(handle.engine, study_name)


def cleanup_study(storage_url: str, study_name: str, *, grace_period: int = 60) -> list[int]:
    """Fail the trials left RUNNING by dead workers (no heartbeat for `grace_period` s); return their numbers.

    Each failed trial is queued again with the same parameters, as a live worker would have done. Workers
    still `running` in `tuner_workers` but not seen for `grace_period` s are marked `failed`.
    """
    handle = open_study(storage_url, study_name, heartbeat_interval=max(1, grace_period // 2),
                        grace_period=grace_period)
    engine, study = handle.engine, handle.study
    running = (optuna.trial.TrialState.RUNNING,)
    before = {t.number for t in study.get_trials(deepcopy=False, states=running)}
    with study_lock(engine, study_name):  # a worker claiming at the same moment sees either all or none
        fail_dead_trials(study, engine, grace_period)
    after = {t.number for t in study.get_trials(deepcopy=False, states=running)}
    fail_stale_workers(engine, study_name, grace_period=grace_period,
                       message=f"not seen for {grace_period} s: marked failed by 'tuner study cleanup'")
    return sorted(before - after)


def load_study_spec(engine: Engine, study_name: str) -> StudySpec:
    """The validated spec stored with the study; a missing study names the ones that exist."""
    record = get_study(engine, study_name)
    if record is None:
        names = sorted(r.name for r in list_study_records(engine))
        known = ", ".join(names) if names else "none"
        raise StudyNotFoundError(f"no study named '{study_name}' (studies: {known})")
    return spec_from_dict(record.spec)


def require_study(storage_url: str, study_name: str) -> StudySpec:
    """The stored spec of a study that must exist; a missing one names the studies that do."""
    return load_study_spec(open_storage(storage_url), study_name)
