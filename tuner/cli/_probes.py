"""How `tuner study create` and `tuner study show` print what the probes found, the ranges they set, and the
ranges whose best trials press against an edge."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tuner.text import fmt


def _range(low: object, high: object) -> str:
    return "-" if low is None or high is None else f"{fmt(low, digits=3)} .. {fmt(high, digits=3)}"


def init_guess_table(rows: list[dict], scheme: str | None, draws: int | None = None) -> Table:
    """The init-scale guess per layer with the range it set."""
    how = f"LSUV on {draws} draws of the weights" if isinstance(draws, int) and draws > 1 else "LSUV"
    table = Table("layer", "fan in -> out", "multiplier", "search range (log)",
                  title=f"init-scale guess ({how}, relative to {scheme or 'the base scheme'})", title_justify="left")
    for r in rows:
        sizes = f"{r['fan_in']} -> {r['fan_out']}" if "fan_in" in r else "-"
        table.add_row(str(r["layer"]), sizes, fmt(r["multiplier"], digits=3), _range(r.get("low"), r.get("high")))
    return table


def lr_probe_table(rows: list[dict]) -> Table:
    """Each optimizer's probe: edge, suggested eps0 and the eps0 range it set."""
    table = Table("optimizer", "edge", "suggested eps0", "eps0 range (log)", "sweeps", "loss fell",
                  title="learning-rate probe (range test, read without lag)", title_justify="left")
    for r in rows:
        fall = "-" if r.get("fall") is None else f"{100 * r['fall']:.0f}%"
        table.add_row(r["optimizer"], fmt(r["edge"], digits=3), fmt(r["suggestion"], digits=3), _range(r["low"], r["high"]),
                      r["sweeps"] or "-", fall)
    return table


def ranges_table(rows: list[dict]) -> Table:
    """The searched ranges, the best trial's value in each, and where the best trials press an edge."""
    table = Table("parameter", "range", "best trial", "position", "best trials at low / high edge", "edge",
                  title="search ranges", title_justify="left")
    for r in rows:
        table.add_row(r["parameter"], _range(r["low"], r["high"]) + (" (log)" if r["log"] else ""), fmt(r["best"], digits=3),
                      f"{r['position']:.2f}", f"{r['at_low']} / {r['at_high']} of {r['top']}",
                      Text(r["edge"], style="bold red") if r["edge"] else "")
    return table


def print_probes(out: Console, probes: dict) -> None:
    """The probes' tables (nothing when no probe ran) and their notes; `probes` as `probes_of` gives it."""
    init_rows, lr_rows = probes["init_guess"], probes["lr_probe"]
    if init_rows:
        out.print(init_guess_table(init_rows, probes["scheme"], probes.get("draws")))
    if lr_rows:
        out.print(lr_probe_table(lr_rows))
        for r in lr_rows:
            if r.get("note"):
                out.print(f"note ({r['optimizer']}): {r['note']}")
