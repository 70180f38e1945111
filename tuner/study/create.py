"""Creating a study: the probes of `"auto"`, then the Optuna study and tuner's record, made whole or repaired.

The validated spec is stored in `tuner_studies`, so workers on any machine load it from the database
rather than from a local file. Creation is detectably incomplete until it is whole:

1. the data file is read and the probes run, before anything is stored (a bad file or a spec they cannot
   probe leaves nothing behind);
2. the record is inserted with status `creating`: the unique name is claimed atomically, so of two
   processes creating one study at once, one creates it and the other waits for it (`load_if_exists`) or
   is refused;
3. the Optuna study, its attributes and the warm-start trial are made;
4. the record turns `ready`. Workers and readers use only `ready` studies.

A process killed between 2 and 4 leaves a `creating` record. Steps 2 to 4 take well under a second, so a
record still `creating` after `ABANDONED_AFTER_S` was abandoned: the next `study create` (or `tuner run`)
of that name removes the half-made study and creates it again.
"""

from __future__ import annotations

import json
import time
import warnings

import optuna
from sqlalchemy.engine import Engine

import tuner
from tuner.errors import StudyBusyError, StudyExistsError
from tuner.nn.data import BUILTIN
from tuner.storage import (
    delete_study_records,
    get_study,
    insert_study,
    open_storage,
    optuna_storage,
    update_study,
)
from tuner.storage.records import StudyRecord
from tuner.storage.tables import utcnow
from tuner.study.autos import anchors_of, has_auto, resolve_auto, resolve_spec_autos
from tuner.study.budget import check_training_memory
from tuner.study.data import load_study_data
from tuner.study.limits import check_study_name
from tuner.study.space import make_pruner, make_sampler
from tuner.study.spec import StudySpec
from tuner.study.warm_start import warm_start_trials

SPEC_ATTR = "tuner_spec"
ABANDONED_AFTER_S = 60.0
WAIT_POLL_S = 0.5


def create_study(
    storage_url: str, spec: StudySpec, *, name: str | None = None, load_if_exists: bool = False
) -> tuple[str, bool]:
    """Create the Optuna study and its `tuner_studies` record; return (name, created).

    With `load_if_exists`, an existing study of that name is reused when its stored spec is the same and
    refused when it differs (a silent reuse would mix two searches in one study). The name must follow
    the study-name rule (`tuner.study.limits`); a network that cannot fit in memory is refused.
    """
    study_name = check_study_name(name or spec.study.name)  # before the storage is touched
    engine = open_storage(storage_url, create_if_empty=True)
    existing = _settled(engine, storage_url, study_name, wait=load_if_exists)
    if existing is not None:
        return _reuse(engine, spec, existing, load_if_exists), False
    check_training_memory(spec)  # before the probes build any network
    resolved, init_rec, lr_rec = _resolve_autos(spec)
    try:
        insert_study(engine, study_name, resolved.to_dict(), _spec_text(spec), str(spec.source_path or ""),
                     init_guess=init_rec, lr_probe=lr_rec, status="creating")
    except StudyExistsError:  # another process claimed the name since: theirs is the study
        existing = _settled(engine, storage_url, study_name, wait=load_if_exists)
        if existing is None:
            raise
        return _reuse(engine, spec, existing, load_if_exists), False
    try:
        _make_optuna_study(engine, storage_url, study_name, spec, resolved, init_rec, lr_rec)
        update_study(engine, study_name, status="ready")
    except BaseException:  # a Ctrl-C too: nothing half-made is left behind when we can help it
        _discard(engine, storage_url, study_name)
        raise
    return study_name, True


def _settled(engine: Engine, url: str, name: str, *, wait: bool) -> StudyRecord | None:
    """The study's record once its creation is settled: None if there is none (or it was abandoned and is
    now removed); with `wait`, a creation in progress elsewhere is waited for."""
    while True:
        record = get_study(engine, name)
        if record is None or record.status == "ready":
            return record
        age = (utcnow() - record.created_at).total_seconds()
        if age > ABANDONED_AFTER_S:
            _discard(engine, url, name)
            return None
        if not wait:
            raise StudyBusyError(f"study '{name}' is being created by another process; try again in a minute")
        time.sleep(WAIT_POLL_S)


GROWABLE = ("study.n_trials",)  # keys a study may change and stay the same search


def _reuse(engine: Engine, spec: StudySpec, existing: StudyRecord, load_if_exists: bool) -> str:
    """Reuse `existing` for `spec`: the same search, perhaps with another total (the study grows or shrinks).

    Any other difference is refused, naming the keys: one study must not mix two searches.
    """
    name = existing.name
    if not load_if_exists:
        raise StudyExistsError(f"study '{name}' already exists; use --load-if-exists to reuse it or --name to pick another")
    stored = _stored_form(spec, existing).to_dict()
    differs = [key for key in differing_keys(existing.spec, stored) if key not in GROWABLE]
    if differs:
        raise StudyExistsError(
            f"study '{name}' already exists with a different spec ({', '.join(differs)}); a study cannot change "
            f"its search: pick another --name (only n_trials may change: 'tuner worker {name} --n-trials N')"
        )
    if stored["study"]["n_trials"] != existing.spec["study"]["n_trials"]:  # the spec's total was edited
        update_study(engine, name, spec=stored, n_trials=None)
    return name


def differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two nested dicts (missing on one side counts)."""
    keys = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            keys += differing_keys(left, right, f"{prefix}{key}.")
        elif left != right:
            keys.append(f"{prefix}{key}")
    return keys


def _discard(engine: Engine, url: str, name: str) -> None:
    """Remove a half-made study: tuner's record and, when it was made, the Optuna study."""
    storage = optuna_storage(url)
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
    delete_study_records(engine, name)


def _spec_text(spec: StudySpec) -> str:
    # A spec rebuilt from a dict has no TOML text; its JSON form is the record then.
    return spec.raw_toml if spec.raw_toml is not None else json.dumps(spec.to_dict(), indent=1)


def _make_optuna_study(engine: Engine, url: str, name: str, spec: StudySpec, resolved: StudySpec,
                       init_rec: dict | None, lr_rec: dict | None) -> None:
    """The Optuna study, its attributes, and the probes' guess queued as its first trial."""
    try:
        study = optuna.create_study(study_name=name, storage=optuna_storage(url), direction=resolved.study.direction,
                                    sampler=make_sampler(resolved), pruner=make_pruner(resolved))
    except optuna.exceptions.DuplicatedStudyError:
        delete_study_records(engine, name)  # the name is an Optuna study's, not ours: give it back
        raise StudyExistsError(
            f"an Optuna study named '{name}' already exists in this storage without a tuner spec; pick another --name"
        ) from None
    with warnings.catch_warnings():  # experimental in Optuna 5: the warning says nothing a user can act on
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([spec.study.objective])  # the dashboard's axes say "val_accuracy", not "Objective 0"
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

