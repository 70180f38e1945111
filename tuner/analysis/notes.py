"""What a study shows in optuna-dashboard besides Optuna's own charts: a note and a curve chart.

    from tuner.analysis import open_study
    from tuner.analysis.notes import publish
    publish(open_study("sqlite:///tuner.db", "digits-mlp"))

The note (Markdown, beside the study) holds the spec as TOML, what the probes found and the ranges they
set (the init-scale guess per layer, the learning-rate probe per optimizer), and the searched ranges with
a warning for each range whose best trials press against an edge. The chart (plotly) holds the per-epoch validation curves of the best trials. Publishing
is idempotent: each is written only when it changed (the chart under a fixed id, so it is replaced, not
added to). A note someone wrote by hand in the dashboard (one that does not start with this module's
heading) is left alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import optuna_dashboard
import pandas as pd
import plotly.graph_objects as go

from tuner.analysis.frames import best_trials, curve_metric, curves_frame, init_guess_rows, trials_frame
from tuner.analysis.probes import lr_probe_rows
from tuner.analysis.ranges import edge_warnings, range_edges
from tuner.storage import StudyHandle
from tuner.storage.optuna_adapter import stored_chart
from tuner.text import fmt, printable

CHART_ID = "tuner-validation-curves"
TOP_TRIALS = 5


def note_heading(study_name: str) -> str:
    """The first line of a note this module wrote; how it recognises its own notes."""
    return f"## tuner study {code_span(study_name)}"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall("`+", text)), default=0)


def code_span(text: str) -> str:
    """`text` shown literally inline, whatever it holds: a CommonMark code span (spec 6.1).

    Its delimiters are one backtick longer than the longest run of backticks inside, and a space pads
    text that begins or ends with a backtick (or with a space at both ends, which CommonMark strips).
    Control characters and newlines are escaped first: the span stays on its line.
    """
    text = printable(text)
    fence = "`" * (_longest_backtick_run(text) + 1)
    edges = text[:1] + text[-1:]
    pad = " " if "`" in edges or (edges == "  " and text.strip()) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str, info: str) -> str:
    """`text` shown literally as a fenced code block (CommonMark spec 4.5), whatever lines it holds.

    The fence is longer than any run of backticks in the text, so no line of it can close the block.
    """
    text = printable(text.replace("\r\n", "\n"), keep="\n\t")
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _markdown_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value: object) -> str:
        return "" if value is None else fmt(value, digits=4)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def study_note(study_name: str, spec_toml: str | None, spec: dict | None, init_guess: dict | None,
               lr_probe: dict | None = None, ranges: pd.DataFrame | None = None) -> str:
    """The note's Markdown: the spec as TOML (JSON when no TOML text was stored), the probes' results with
    the ranges they set, and the searched ranges with the edges their best trials press against."""
    parts = [note_heading(study_name), "", "### Spec", ""]
    if spec_toml:
        parts.append(code_block(spec_toml.strip(), "toml"))
    elif spec is not None:
        parts.append(code_block(json.dumps(spec, indent=2, sort_keys=True), "json"))
    else:
        parts.append("no spec stored")
    parts += ["", "### Init-scale guess", ""]
    rows = init_guess_rows(init_guess)
    if rows:
        draws = init_guess.get("draws") if isinstance(init_guess, dict) else None
        averaged = f", averaged over {draws} draws of the weights" if isinstance(draws, int) and draws > 1 else ""
        parts += [
            f"Per-layer multipliers from layer-sequential unit-variance rescaling (LSUV) on one minibatch{averaged}, "
            "and the range each set (`low` .. `high`):",
            "",
            _markdown_table(rows),
        ]
    else:
        parts.append("No guess for this study (its spec has no `\"auto\"` init scale).")
    lr_rows = lr_probe_rows(lr_probe)
    if lr_rows:
        parts += ["", "### Learning-rate probe", "",
                  "Per optimizer: the edge (where the loss rose 20% above its minimum, combined over sweeps), the "
                  "suggested eps0 (a tenth of it, a third for SGD and AdaGrad) and the eps0 range searched "
                  "(`low` .. `high`):", "",
                  _markdown_table(lr_rows)]
    if ranges is not None and not ranges.empty:
        parts += ["", "### Search ranges", "", _markdown_table(ranges.to_dict("records"))]
        parts += [f"\n**Warning**: {line}" for line in edge_warnings(ranges)]
    return "\n".join(parts) + "\n"


def curves_figure(curves: pd.DataFrame, trial_numbers: list[int], metric: str) -> go.Figure:
    """Plotly lines of the per-epoch validation metric of the given trials, best first."""
    fig = go.Figure()
    for number in trial_numbers:
        curve = curves[curves["trial_number"] == number].sort_values("epoch")
        if not curve.empty:
            fig.add_trace(go.Scatter(x=curve["epoch"].tolist(), y=curve[metric].tolist(), mode="lines+markers",
                                     name=f"trial {number}"))
    fig.update_layout(
        title=f"Validation curves of the {len(trial_numbers)} best trials",
        xaxis_title="epoch",
        yaxis_title=metric,
    )
    return fig


@dataclass(frozen=True)
class Published:
    """What `publish` wrote: the note, the chart, both, or neither (nothing had changed)."""

    note: bool
    chart: bool


def publish(handle: StudyHandle, *, top: int = TOP_TRIALS) -> Published:
    """Save the study's note and curve chart for optuna-dashboard, each only when it changed.

    The chart is saved once the study has a complete trial with a recorded curve.
    """
    study, record, study_name = handle.study, handle.record, handle.name
    body = study_note(
        study_name,
        record.spec_toml if record is not None else None,
        record.spec if record is not None else None,
        record.init_guess if record is not None else None,
        record.lr_probe if record is not None else None,
        range_edges(study),
    )
    current = optuna_dashboard.get_note(study)
    note = current != body and (not current.strip() or current.startswith(note_heading(study_name)))
    if note:
        optuna_dashboard.save_note(study, body)

    numbers = best_trials(trials_frame(handle), top)["number"].tolist()
    curves = curves_frame(handle)
    chart = False
    if numbers and not curves[curves["trial_number"].isin(numbers)].empty:
        figure = curves_figure(curves, numbers, curve_metric(handle))
        if stored_chart(study, CHART_ID) != figure.to_json():
            optuna_dashboard.save_plotly_graph_object(study, figure, graph_object_id=CHART_ID)
            chart = True
    return Published(note=note, chart=chart)
