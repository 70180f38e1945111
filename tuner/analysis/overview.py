"""A study at a glance (`tuner study show`): counts by state, the best trial, a summary per optimizer, what
the probes found, and the searched ranges with the edges their best trials press against."""

from __future__ import annotations

import json

import optuna

from tuner.analysis.frames import init_guess_rows, optimizer_summary, trials_frame
from tuner.analysis.probes import lr_probe_rows
from tuner.analysis.ranges import edge_warnings, range_edges
from tuner.storage import StudyHandle, StudyRecord, trial_state_counts


def study_overview(study: StudyHandle) -> dict:
    """A JSON-able dict: study, direction, counts, diverged, best_trial (number, value, params), optimizers
    (with `equal_budget`: the trials each had at least), probes (`init_guess` and `lr_probe` rows, the ranges
    they set), ranges (`range_edges`) and warnings (one line per range pressed at an edge)."""
    trials = trials_frame(study)
    best = None
    try:
        t = study.study.best_trial
    except ValueError:  # no complete trial yet
        pass
    else:
        best = {"number": t.number, "value": t.value, "params": t.user_attrs.get("config") or t.params}
    summary = optimizer_summary(trials)
    edges = range_edges(study.study)
    record = study.record
    return {
        "study": study.name,
        "direction": "maximize" if study.maximize else "minimize",
        "counts": trial_state_counts(study.engine, study.name),
        "diverged": int(trials["diverged"].sum()) if "diverged" in trials else 0,
        "best_trial": best,
        "optimizers": json.loads(summary.to_json(orient="records")),
        "equal_budget": summary.attrs.get("equal_budget", 0),
        "probes": probes_of(record),
        "ranges": json.loads(edges.to_json(orient="records")),
        "warnings": edge_warnings(edges),
    }


def probes_of(record: StudyRecord | None) -> dict:
    """The stored probes as rows: `scheme` and `draws` of the guess (None for an older record), `init_guess`
    (per layer, with its range) and `lr_probe` (per optimizer, with its eps0 range); empty lists when no
    probe ran."""
    init_guess = record.init_guess if record is not None else None
    return {
        "scheme": init_guess.get("scheme") if isinstance(init_guess, dict) else None,
        "draws": init_guess.get("draws") if isinstance(init_guess, dict) else None,
        "init_guess": init_guess_rows(init_guess),
        "lr_probe": lr_probe_rows(record.lr_probe if record is not None else None),
    }


def created_summary(study: StudyHandle, *, created: bool, storage: str) -> dict:
    """What `tuner study create` reports: the study, whether it was created, the probes and the ranges they
    set, the searched space as stored, and how many trials are queued first (the probes' picks)."""
    waiting = study.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    return {
        "study": study.name,
        "created": created,
        "storage": storage,
        "probes": probes_of(study.record),
        "search": study.record.spec["search"] if study.record is not None else None,
        "queued": len(waiting),
    }
