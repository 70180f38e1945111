"""DataFrames, plots and reports built from a study's records.

    frames   trials_frame, curves_frame, optimizer_summary (pandas; re-exported here)
    plots    the report's matplotlib figures
    report   build_report: report.html with the figures embedded, and the PNGs beside it
    notes    publish: the study's note and curve chart for optuna-dashboard

`report` and `notes` are imported from their modules: they load matplotlib, plotly and optuna-dashboard,
which `tuner study show` does not need.
"""

from tuner.analysis.frames import curves_frame, optimizer_summary, trials_frame

__all__ = ["curves_frame", "optimizer_summary", "trials_frame"]
