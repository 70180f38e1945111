"""A study at a glance: counts by state, the best trial, and a summary per optimizer (`tuner study show`)."""

from __future__ import annotations

import json

from tuner.analysis.frames import optimizer_summary, trials_frame
from tuner.storage import StudyHandle, trial_state_counts


def study_overview(study: StudyHandle) -> dict:
    """A JSON-able dict: study, direction, counts, diverged, best_trial (number, value, params), optimizers."""
    trials = trials_frame(study)
    best = None
    try:
        t = study.study.best_trial
    except ValueError:  # no complete trial yet
        pass
    else:
        best = {"number": t.number, "value": t.value, "params": t.user_attrs.get("config") or t.params}
    summary = optimizer_summary(trials)
    return {
        "study": study.name,
        "direction": "maximize" if study.maximize else "minimize",
        "counts": trial_state_counts(study.engine, study.name),
        "diverged": int(trials["diverged"].sum()) if "diverged" in trials else 0,
        "best_trial": best,
        "optimizers": json.loads(summary.to_json(orient="records")),
    }
