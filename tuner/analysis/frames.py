"""pandas DataFrames of a study, built from a study opened once (`open_study`).

    from tuner.analysis import open_study, trials_frame, curves_frame, optimizer_summary
    study = open_study("sqlite:///tuner.db", "digits-mlp")
    trials = trials_frame(study)
    optimizer_summary(trials)

The same frames back `tuner study show` and `tuner study export`. A trials frame carries the study's
direction in `frame.attrs["maximize"]`, so that `optimizer_summary` and `best_trials` rank the right way;
a frame that lost it (read back from an export, rebuilt by hand) takes it from `study=` or `maximize=`,
and without either they raise AnalysisError rather than guess (a guess of "maximize" ranked a loss study's
worst trial best).
"""

from __future__ import annotations

import math

import pandas as pd

from tuner.analysis.probes import init_range_rows
from tuner.errors import AnalysisError
from tuner.storage import StudyHandle, load_curves
from tuner.study.spec import spec_from_dict

TRIAL_COLUMNS = ["number", "state", "value", "best_epoch", "datetime_start", "datetime_complete", "duration_s",
                 "diverged", "reason", "seed", "blas_threads"]
CURVE_COLUMNS = ["trial_number", "epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]
SUMMARY_COLUMNS = ["optimizer", "trials", "complete", "pruned", "failed", "diverged", "best", "median",
                   "best_at_equal_budget"]
PROGRESS_COLUMNS = ["optimizer", "spent", "number", "value", "best_so_far"]
FINISHED = ("COMPLETE", "PRUNED")  # the trials a study's budget counts


def trials_frame(study: StudyHandle) -> pd.DataFrame:
    """One row per trial: number, state, value, best epoch, start and end times, duration, diverged flag,
    reason, seed, BLAS threads, then every parameter.

    `best_epoch` is the epoch whose validation metric was the best of the trial's (the epoch its value
    comes from, for a complete trial; the earliest on a tie), read from the metric reported each epoch;
    empty for a trial that reported none. `datetime_start` and `datetime_complete` are Optuna's (the
    machine's local time, as Optuna records them); empty while a trial waits or runs.

    Parameters come from the trial's full configuration (`config` user attribute: searched and fixed
    values alike). The init-scale multipliers are always columns `init_scale_0 .. init_scale_{L-1}`, one
    per dense layer: a study that shares one scale (Optuna parameter `init_scale`) keeps that column and
    has its value copied to every layer's, so analysis reads per-layer scales the same way for any spec.
    """
    n_layers = stored_n_layers(study)
    rows = []
    for t in study.study.get_trials(deepcopy=False):
        config = t.user_attrs.get("config") or {}
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete is not None and t.datetime_start is not None
            else math.nan
        )
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value if t.value is not None else math.nan,
            "best_epoch": best_epoch(t.intermediate_values, maximize=study.maximize),
            "datetime_start": t.datetime_start,
            "datetime_complete": t.datetime_complete,
            "duration_s": duration,
            "diverged": bool(t.user_attrs.get("diverged", False)),
            "reason": t.user_attrs.get("reason"),
            "seed": config.get("seed"),
            "blas_threads": config.get("blas_threads"),  # what a replay needs to be bit for bit
        }
        row.update(config or t.params)
        if "init_scale" in row and n_layers is not None:
            for layer in range(n_layers):
                row.setdefault(f"init_scale_{layer}", row["init_scale"])
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = pd.DataFrame(columns=TRIAL_COLUMNS) if frame.empty else frame.sort_values("number", ignore_index=True)
    frame["best_epoch"] = frame["best_epoch"].astype("Int64")
    for column in ("datetime_start", "datetime_complete"):
        frame[column] = pd.to_datetime(frame[column])
    frame.attrs["maximize"] = study.maximize
    return frame


def best_epoch(values: dict[int, float], *, maximize: bool) -> int | None:
    """The epoch of the best finite value among a trial's per-epoch values (the earliest on a tie)."""
    finite = [(epoch, v) for epoch, v in sorted(values.items()) if math.isfinite(v)]
    if not finite:
        return None
    best = max(v for _, v in finite) if maximize else min(v for _, v in finite)
    return next(epoch for epoch, v in finite if v == best)


def curves_frame(study: StudyHandle) -> pd.DataFrame:
    """The per-epoch learning curves of every trial, in long form (one row per trial and epoch)."""
    frame = pd.DataFrame(load_curves(study.engine, study.name))
    if frame.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return frame[CURVE_COLUMNS].sort_values(["trial_number", "epoch"], ignore_index=True)


def curve_metric(study: StudyHandle) -> str:
    """The curve column that holds the study's metric: its objective, else `val_loss`."""
    return study.objective if study.objective in CURVE_COLUMNS else "val_loss"


def _maximize(trials: pd.DataFrame, maximize: bool | None, study: StudyHandle | None) -> bool:
    """The direction to rank by: `maximize`, else the study's, else the one `trials_frame` recorded."""
    if maximize is not None:
        return bool(maximize)
    if study is not None:
        return study.maximize
    if "maximize" in trials.attrs:
        return bool(trials.attrs["maximize"])
    raise AnalysisError("the trials frame does not say the study's direction (it is not trials_frame's own, or "
                        "lost it): pass study=<the StudyHandle> or maximize=True/False")


def optimizer_summary(trials: pd.DataFrame, *, maximize: bool | None = None,
                      study: StudyHandle | None = None) -> pd.DataFrame:
    """Per optimizer: trials, complete, pruned, failed, diverged, best and median value of complete trials,
    and `best_at_equal_budget`: its best over its first m finished trials, m the fewest any optimizer had
    (`frame.attrs["equal_budget"]`), so that optimizers are compared at the same tuning budget.

    The direction is `maximize`, else `study`'s, else the one `trials_frame` records in the frame (a
    `val_loss` study ranks its lowest loss best); the summary records it in `attrs["maximize"]` too.
    """
    maximize = _maximize(trials, maximize, study)
    if trials.empty or "optimizer" not in trials:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    progress = optimizer_progress(trials, maximize=maximize)
    finished = trials["state"].isin(FINISHED).groupby(trials["optimizer"]).sum()  # an optimizer may have none
    budget = int(finished.min())
    rows = []
    for name, group in trials.groupby("optimizer", sort=True):
        complete = group[group["state"] == "COMPLETE"]["value"]
        spent = progress[(progress["optimizer"] == name) & (progress["spent"] <= budget)]["best_so_far"]
        rows.append(
            {
                "optimizer": name,
                "trials": len(group),
                "complete": int((group["state"] == "COMPLETE").sum()),
                "pruned": int((group["state"] == "PRUNED").sum()),
                "failed": int((group["state"] == "FAIL").sum()),
                "diverged": int(group["diverged"].sum()),
                "best": (complete.max() if maximize else complete.min()) if len(complete) else math.nan,
                "median": complete.median() if len(complete) else math.nan,
                "best_at_equal_budget": spent.iloc[-1] if len(spent) else math.nan,
            }
        )
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values("best", ascending=not maximize,
                                                                      ignore_index=True, na_position="last")
    frame.attrs.update(equal_budget=budget, maximize=maximize)
    return frame


def optimizer_progress(trials: pd.DataFrame, *, maximize: bool | None = None,
                       study: StudyHandle | None = None) -> pd.DataFrame:
    """Each optimizer's best value against the trials spent on it (Choi et al. 2019; Schmidt et al. 2021).

    One row per finished (COMPLETE or PRUNED) trial, in trial-number order within its optimizer: `spent` =
    1, 2, ... trials of that optimizer so far, `value` (NaN when pruned), `best_so_far` over its complete
    trials up to here (NaN before the first).
    """
    maximize = _maximize(trials, maximize, study)
    if trials.empty or "optimizer" not in trials:
        return pd.DataFrame(columns=PROGRESS_COLUMNS)
    finished = trials[trials["state"].isin(FINISHED)].sort_values("number")
    parts = []
    for name, group in finished.groupby("optimizer", sort=True):
        values = group["value"].where(group["state"] == "COMPLETE").astype(float)
        best = (values.cummax() if maximize else values.cummin()).ffill()  # a pruned trial keeps the best
        parts.append(pd.DataFrame({"optimizer": name, "spent": range(1, len(group) + 1),
                                   "number": group["number"].to_numpy(), "value": values.to_numpy(),
                                   "best_so_far": best.to_numpy()}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=PROGRESS_COLUMNS)


def best_trials(trials: pd.DataFrame, top: int, *, maximize: bool | None = None,
                study: StudyHandle | None = None) -> pd.DataFrame:
    """The `top` best complete trials, best first (ties: the earlier trial first)."""
    complete = trials[trials["state"] == "COMPLETE"]
    ascending = not _maximize(trials, maximize, study)
    return complete.sort_values(["value", "number"], ascending=[ascending, True]).head(top)


def init_scale_columns(trials: pd.DataFrame) -> list[str]:
    """The per-layer init-scale columns of a trials frame, input side first."""
    columns = [c for c in trials.columns if c.startswith("init_scale_") and c.removeprefix("init_scale_").isdigit()]
    return sorted(columns, key=lambda c: int(c.removeprefix("init_scale_")))


def stored_n_layers(study: StudyHandle) -> int | None:
    """Dense layers of the study's network, from its stored spec; None for a study tuner did not create."""
    if study.record is None:
        return None
    return spec_from_dict(study.record.spec).model.n_layers


def init_scale_guess(init_guess: object) -> list[float] | None:
    """The per-layer multipliers of a stored init-scale guess (`tuner_studies.init_guess`), or None.

    The stored form is `InitScaleGuess.to_dict()` (`multipliers` and per-layer details); a bare list of
    numbers is read as the multipliers.
    """
    if isinstance(init_guess, dict):
        init_guess = init_guess.get("multipliers")
    if not isinstance(init_guess, list | tuple) or not init_guess:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in init_guess):
        return None
    return [float(v) for v in init_guess]


def init_guess_rows(init_guess: object) -> list[dict]:
    """The stored guess as one row per layer: sizes, activation, multiplier, rescalings, pre-activation std.

    `pre_std_before` / `pre_std_after` are the pre-activation standard deviations on the probe's batch
    before and after the rescaling (`LayerStats.pre_std`); `low` / `high` the layer's init-scale range the
    guess set. Columns the stored guess lacks are left out.
    """
    multipliers = init_scale_guess(init_guess)
    if multipliers is None:
        return []
    details = init_guess if isinstance(init_guess, dict) else {}
    ranges = init_range_rows(init_guess)

    def at(key: str, layer: int) -> object:
        values = details.get(key)
        return values[layer] if isinstance(values, list) and layer < len(values) else None

    rows = []
    for layer, multiplier in enumerate(multipliers):
        before, after = at("before", layer), at("after", layer)
        row = {"layer": layer}
        if isinstance(before, dict):
            row.update({k: before.get(k) for k in ("fan_in", "fan_out", "activation")})
        row.update(multiplier=multiplier, iterations=at("iterations", layer), converged=at("converged", layer))
        if isinstance(before, dict):
            row["pre_std_before"] = before.get("pre_std")
        if isinstance(after, dict):
            row["pre_std_after"] = after.get("pre_std")
        if layer < len(ranges):
            row["low"], row["high"] = ranges[layer]
        rows.append({k: v for k, v in row.items() if v is not None})
    return rows
