"""A study's report: one self-contained HTML page and the PNG figures beside it.

    from tuner.analysis import open_study
    from tuner.analysis.report import build_report
    report = build_report(open_study("sqlite:///tuner.db", "digits-mlp"), "report/")
    report.html          # report/report.html, opens offline: every figure is embedded as base64
    report.figures       # {"history": report/history.png, ...}

The page holds the study's counts and best trial, a table per optimizer (with each one's best at the equal
budget), the best trials, the figures (optimization history, best value per optimizer, each optimizer's
best value against the trials spent on it, parameter importances, validation curves of the best trials,
the metric against each layer's init scale with the guess marked), what the probes found and the ranges
they set, the searched ranges with those whose best trials press against an edge marked, and the spec.
The storage URL appears only with its password hidden.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import optuna
import pandas as pd

import tuner
from tuner.analysis import plots
from tuner.analysis.frames import (
    best_trials,
    curve_metric,
    curves_frame,
    init_guess_rows,
    init_scale_columns,
    init_scale_guess,
    optimizer_progress,
    optimizer_summary,
    trials_frame,
)
from tuner.analysis.probes import lr_probe_rows
from tuner.analysis.ranges import edge_warnings, range_edges
from tuner.errors import TunerError
from tuner.storage import StudyHandle, redact
from tuner.text import fmt, printable

HTML_NAME = "report.html"
FIGURES = {
    "history": "Optimization history",
    "optimizers": "Best value per optimizer",
    "progress": "Best value per optimizer against the trials spent on it",
    "importances": "Parameter importances",
    "curves": "Validation curves of the best trials",
    "init_scales": "Validation metric against each layer's init scale",
}
STEPS = ("loading the study", *(f"drawing: {title.lower()}" for title in FIGURES.values()), "writing the page")
MIN_IMPORTANCE_TRIALS = 4


@dataclass(frozen=True)
class Report:
    """Where a report was written."""

    html: Path
    figures: dict[str, Path]


@dataclass(frozen=True)
class _Study:
    name: str
    storage: str
    maximize: bool
    metric: str
    curve_metric: str
    trials: pd.DataFrame
    curves: pd.DataFrame
    spec_toml: str | None
    init_guess: object
    lr_probe: object
    edges: pd.DataFrame
    importances: dict[str, float] | None
    importance_note: str | None
    counts: dict[str, int]


def check_out_dir(out_dir: Path, *, force: bool) -> None:
    """Refuse a path that is a file, or a directory that holds anything, unless `force`."""
    if out_dir.exists() and not out_dir.is_dir():
        raise TunerError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise TunerError(f"{out_dir}: directory exists and is not empty (use --force to write into it)")


def parameter_importances(study: optuna.Study) -> tuple[dict[str, float] | None, str | None]:
    """PED-ANOVA importances normalised to sum 1, or None and the reason they cannot be had."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return None, (
            f"parameter importances need at least {MIN_IMPORTANCE_TRIALS} complete trials, got {len(complete)}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = optuna.importance.get_param_importances(study, normalize=False)
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        return None, f"parameter importances could not be computed: {err}"
    total = sum(raw.values())
    if not raw or not math.isfinite(total) or total <= 0:
        return None, "parameter importances are all zero: too few trials, or no searched parameter varies"
    return {name: value / total for name, value in raw.items()}, None


def _require_complete_trials(study: optuna.Study) -> None:
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise TunerError(f"study '{study.study_name}' has no complete trials: nothing to report")


def _load(handle: StudyHandle) -> _Study:
    trials = trials_frame(handle)
    record = handle.record
    importances, note = parameter_importances(handle.study)
    return _Study(
        name=handle.name,
        storage=redact(handle.url),
        maximize=handle.maximize,
        metric=handle.objective or "value",
        curve_metric=curve_metric(handle),
        trials=trials,
        curves=curves_frame(handle),
        spec_toml=record.spec_toml if record is not None else None,
        init_guess=record.init_guess if record is not None else None,
        lr_probe=record.lr_probe if record is not None else None,
        edges=range_edges(handle.study),
        importances=importances,
        importance_note=note,
        counts=trials["state"].value_counts().to_dict(),
    )


def _figures(s: _Study, top: int) -> dict[str, Callable[[], object]]:
    best = best_trials(s.trials, top)["number"].tolist()
    return {
        "history": lambda: plots.optimization_history(s.trials, metric=s.metric, maximize=s.maximize),
        "optimizers": lambda: plots.best_per_optimizer(optimizer_summary(s.trials), metric=s.metric),
        "progress": lambda: plots.best_against_trials(
            optimizer_progress(s.trials), metric=s.metric,
            equal_budget=optimizer_summary(s.trials).attrs.get("equal_budget", 0)),
        "importances": lambda: plots.param_importances(s.importances, note=s.importance_note),
        "curves": lambda: plots.validation_curves(s.curves, best, metric=s.curve_metric),
        "init_scales": lambda: plots.metric_against_init_scale(
            s.trials, init_scale_columns(s.trials), metric=s.metric, guess=init_scale_guess(s.init_guess)
        ),
    }


def build_report(
    handle: StudyHandle,
    out_dir: str | Path,
    *,
    force: bool = False,
    top: int = 5,
    on_step: Callable[[str], None] | None = None,
) -> Report:
    """Write `report.html` and one PNG per figure into `out_dir`; `on_step(description)` follows progress.

    Refuses a study without a complete trial, and an output directory that is not empty unless `force`
    (files of the same names are then overwritten).
    """
    if top < 1:
        raise TunerError(f"top must be >= 1, got {top}")
    out_dir = Path(out_dir)
    step = on_step or (lambda description: None)
    step(STEPS[0])
    _require_complete_trials(handle.study)
    check_out_dir(out_dir, force=force)
    study = _load(handle)
    try:
        return _write(study, out_dir, top, step)
    except OSError as err:  # a full disk, a path through a file, no permission
        raise TunerError(f"cannot write the report to {out_dir}: {err.strerror or err}") from None


def _write(study: _Study, out_dir: Path, top: int, step: Callable[[str], None]) -> Report:
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    for (key, draw), description in zip(_figures(study, top).items(), STEPS[1:-1], strict=True):
        step(description)
        # Parameter and study names come from users: '$' in them is text, not matplotlib's mathtext.
        with matplotlib.rc_context({"text.parse_math": False}):
            figures[key] = plots.save_png(draw(), out_dir / f"{key}.png")
    step(STEPS[-1])
    page = out_dir / HTML_NAME
    page.write_text(render_html(study, figures, top), encoding="utf-8")
    return Report(html=page, figures=figures)


def _fmt(value: object) -> str:
    return "-" if value is pd.NA else fmt(value)


_LINE_BREAKS = "\n\t"  # kept in the spec's text: it is shown as its lines


def _escape(value: object, keep: str = "") -> str:
    """User text (names, parameters, the spec) for the page: HTML-escaped, control characters visible."""
    return html.escape(printable(str(value), keep=keep))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{_escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _figure_html(key: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    title = html.escape(FIGURES[key])
    return (
        f'<figure id="{key}"><img src="data:image/png;base64,{data}" alt="{title}">'
        f'<figcaption>{title} (<a href="{path.name}">{path.name}</a>)</figcaption></figure>'
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
.note { color: #666; }
.warning { color: #a00; font-weight: bold; }
.wide { overflow-x: auto; }
"""


def _probe_sections(s: _Study) -> list[str]:
    """What the probes found and set, and the searched ranges with the pressed edges marked."""
    parts = ["<h2>Init-scale guess</h2>"]
    rows = init_guess_rows(s.init_guess)
    parts.append(_table(pd.DataFrame(rows)) if rows else '<p class="note">no init-scale guess for this study</p>')
    lr_rows = lr_probe_rows(s.lr_probe)
    if lr_rows:
        parts += ["<h2>Learning-rate probe</h2>",
                  '<p class="note">Per optimizer: the edge (the loss 20% above its minimum, combined over sweeps), '
                  "the suggested eps0 (a tenth of it, a third for SGD and AdaGrad) and the eps0 range searched.</p>",
                  _table(pd.DataFrame(lr_rows))]
    parts.append("<h2>Search ranges</h2>")
    if s.edges.empty:
        return [*parts, '<p class="note">no numeric parameter was searched</p>']
    shown = s.edges.assign(edge=s.edges["edge"].map(lambda e: f"PRESSED: {e}" if e else ""))
    parts.append(_table(shown))
    parts += [f'<p class="warning">{html.escape(line)}</p>' for line in edge_warnings(s.edges)]
    return parts


def render_html(s: _Study, figures: dict[str, Path], top: int) -> str:
    """The report page; every figure is embedded, so the file opens offline on its own."""
    e = _escape
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(s.counts.items()))
    diverged = int(s.trials["diverged"].sum())
    best = best_trials(s.trials, top)
    first = best.iloc[0]
    summary = optimizer_summary(s.trials)
    shown = best.dropna(axis=1, how="all").drop(columns=["reason"], errors="ignore")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>tuner report: {e(s.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Study <code>{e(s.name)}</code></h1>",
        "<p>"
        f"{'maximize' if s.maximize else 'minimize'} <code>{e(s.metric)}</code>; "
        f"trials: {e(counts)}; diverged {diverged}.<br>"
        f"Best: trial {int(first['number'])} with {e(_fmt(float(first['value'])))}.<br>"
        f"Storage <code>{e(s.storage)}</code>; generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"by tuner {e(tuner.__version__)}."
        "</p>",
        "<h2>Per optimizer</h2>",
        f'<p class="note">best_at_equal_budget: each optimizer\'s best over its first '
        f'{summary.attrs.get("equal_budget", 0)} finished trials, the fewest any optimizer had.</p>',
        _table(summary),
        f"<h2>The {len(best)} best trials</h2>",
        _table(shown),
        "<h2>Figures</h2>",
    ]
    for key, path in figures.items():
        parts.append(_figure_html(key, path))
        if key == "importances" and s.importance_note:
            parts.append(f'<p class="note">{e(s.importance_note)}</p>')
    parts += _probe_sections(s)
    if s.spec_toml:
        parts += ["<h2>Spec</h2>", f"<pre>{e(s.spec_toml, keep=_LINE_BREAKS)}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
