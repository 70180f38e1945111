"""The ranges a study searched, read from its trials, and whether its best trials press against an edge.

For every numeric Optuna parameter (a float or int distribution that is not a single value) the range is
the one the trials were suggested from. Its best trials are the top TOP_FRACTION of the complete trials
that have the parameter (at least MIN_TOP; for a parameter of one optimizer only, its trials). Each is
placed in the range as

    u = (log x − log low) / (log high − log low)    (a log range)       u = (x − low) / (high − low)    (else)

and the range is **pressed** at an edge when at least half of those best trials lie within MARGIN of it
(u < MARGIN, or u > 1 − MARGIN): the search wants to go further than the range lets it. The remedy is a
wider range in a new study: Optuna's grouped TPE keeps the first distribution it saw for a parameter
name, so a range widened in the middle of a study is still sampled inside its old bounds (measured:
bench/RESULTS.md, "Auto as an anchor").
"""

from __future__ import annotations

import math

import optuna
import pandas as pd
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

TOP_FRACTION = 0.2
MIN_TOP = 3
MARGIN = 0.1
RANGE_COLUMNS = ["parameter", "low", "high", "log", "trials", "best", "position", "top", "at_low", "at_high", "edge"]


def position(value: float, low: float, high: float, log: bool) -> float:
    """Where `value` lies in [low, high], from 0 to 1 (on a log scale for a log range)."""
    if log:
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def _searched(trials: list[optuna.trial.FrozenTrial]) -> dict[str, FloatDistribution | IntDistribution]:
    """Every numeric parameter with more than one possible value, by the distribution of its last trial."""
    found: dict[str, FloatDistribution | IntDistribution] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            if isinstance(dist, FloatDistribution | IntDistribution) and not dist.single():
                found[name] = dist
    return found


def range_edges(study: optuna.Study) -> pd.DataFrame:
    """One row per searched numeric parameter: its range, the best trial's value and position, how many
    of the best trials lie at each edge, and `edge` = "low", "high" or "" (see the module docstring)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows = []
    for name, dist in sorted(_searched(complete).items()):
        having = [t for t in complete if name in t.params and dist.low <= t.params[name] <= dist.high]
        if not having:
            continue
        having.sort(key=lambda t: (-t.value if maximize else t.value, t.number))
        top = having[: max(MIN_TOP, math.ceil(TOP_FRACTION * len(having)))]
        places = [position(float(t.params[name]), dist.low, dist.high, dist.log) for t in top]
        at_low, at_high = sum(u < MARGIN for u in places), sum(u > 1 - MARGIN for u in places)
        pressed = len(top) >= MIN_TOP and max(at_low, at_high) * 2 >= len(top)
        rows.append({
            "parameter": name, "low": dist.low, "high": dist.high, "log": dist.log, "trials": len(having),
            "best": float(top[0].params[name]), "position": places[0], "top": len(top),
            "at_low": at_low, "at_high": at_high,
            "edge": ("low" if at_low >= at_high else "high") if pressed else "",
        })
    return pd.DataFrame(rows, columns=RANGE_COLUMNS)


def edge_warnings(edges: pd.DataFrame) -> list[str]:
    """One line per pressed range, naming the parameter, the evidence and a wider range to try."""
    lines = []
    for r in edges[edges["edge"] != ""].itertuples():
        count = r.at_low if r.edge == "low" else r.at_high
        bound = r.low if r.edge == "low" else r.high
        if r.log:
            wider = bound / 10 if r.edge == "low" else bound * 10
        else:
            wider = bound - (r.high - r.low) if r.edge == "low" else bound + (r.high - r.low)
        lines.append(
            f"{r.parameter}: {count} of the {r.top} best trials lie at the {r.edge} edge of {r.low:.4g} .. {r.high:.4g}; "
            f"the search wants to go further: widen it (e.g. {r.edge} = {wider:.4g}) in a new study"
        )
    return lines
