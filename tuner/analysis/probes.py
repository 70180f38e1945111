"""What the probes found and the ranges they set, as rows for `study create`, `study show`, the dashboard
note and the report.

The records are the JSON the study stores in `tuner_studies` (`lr_probe`, `init_guess`), written by
`tuner.study.autos`; these functions read them defensively, so a record from an older tuner (without
ranges) still shows what it has.
"""

from __future__ import annotations

LR_COLUMNS = ["optimizer", "edge", "suggestion", "low", "high", "sweeps", "fall", "note"]


def lr_probe_rows(lr_probe: object) -> list[dict]:
    """One row per optimizer probed: the edge (combined over sweeps), the suggested eps0, the eps0 range
    searched (`low`, `high`, absolute), the sweeps run (`"5, 268 steps"`; `"3 x 100"` from a record that
    predates shorter later sweeps), how far the loss fell, a note."""
    if not isinstance(lr_probe, dict) or not isinstance(lr_probe.get("optimizers"), dict):
        return []
    rows = []
    for name, result in lr_probe["optimizers"].items():
        if not isinstance(result, dict):
            continue
        low, high = (result.get("range") or [None, None])[:2]
        repeats, steps, steps_run = result.get("repeats"), result.get("steps"), result.get("steps_run")
        rows.append({
            "optimizer": name,
            "edge": result.get("edge"),
            "suggestion": result.get("suggestion"),
            "low": low,
            "high": high,
            "sweeps": (f"{repeats}, {steps_run} steps" if repeats and steps_run
                       else f"{repeats} x {steps}" if repeats and steps else None),
            "fall": result.get("fall"),
            "note": result.get("note"),
        })
    return rows


def init_range_rows(init_guess: object) -> list[tuple[float, float]]:
    """The per-layer (low, high) init-scale ranges the guess set, or [] (no guess, or an older record)."""
    ranges = init_guess.get("ranges") if isinstance(init_guess, dict) else None
    if not isinstance(ranges, list):
        return []
    return [(float(r[0]), float(r[1])) for r in ranges if isinstance(r, list | tuple) and len(r) == 2]
