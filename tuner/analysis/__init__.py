"""DataFrames, plots, reports and dashboard notes built from a study opened once.

    from tuner.analysis import open_study, trials_frame, curves_frame, optimizer_summary
    study = open_study("sqlite:///tuner.db", "digits-mlp")
    trials_frame(study)

    frames    trials_frame, curves_frame, optimizer_summary, best_trials (pandas; re-exported here)
    overview  study_overview: what `tuner study show` prints
    plots     the report's matplotlib figures
    report    build_report: report.html with the figures embedded, and the PNGs beside it
    notes     publish: the study's note and curve chart for optuna-dashboard

`report` and `notes` are imported from their modules: they load matplotlib, plotly and optuna-dashboard,
which `tuner study show` does not need.
"""

from tuner.analysis.frames import (
    best_trials,
    curves_frame,
    optimizer_summary,
    trials_frame,
)
from tuner.storage import StudyHandle, open_study

__all__ = ["StudyHandle", "best_trials", "curves_frame", "open_study", "optimizer_summary", "trials_frame"]
