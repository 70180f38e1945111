"""The human form of a study's overview (`tuner study show`, and `tuner run` at its end)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from tuner.cli._common import stdout
from tuner.cli._probes import print_probes, ranges_table
from tuner.text import fmt, printable


def print_overview(name: str, o: dict) -> None:
    """`study_overview`'s dict for people: best trial, counts, a table per optimizer, probes, ranges."""
    counts = " ".join(f"{k.lower()} {v}" for k, v in sorted(o["counts"].items()))
    stdout.print(f"study '{printable(name)}' ({o['direction']}): {counts}, diverged {o['diverged']}")
    if o["best_trial"] is None:
        stdout.print("no complete trial yet")
    else:
        b = o["best_trial"]
        stdout.print(f"best trial #{b['number']}: value {fmt(b['value'])}")
        stdout.print("  " + ", ".join(printable(f"{k}={fmt(v)}") for k, v in b["params"].items()))
    if o["optimizers"]:
        table = Table("optimizer", "trials", "complete", "pruned", "failed", "diverged", "best", "median",
                      f"best of first {o['equal_budget']}")
        for r in o["optimizers"]:
            numbers = (str(r[k]) for k in ("trials", "complete", "pruned", "failed", "diverged"))
            table.add_row(Text(printable(str(r["optimizer"]))), *numbers, fmt(r["best"]), fmt(r["median"]),
                          fmt(r["best_at_equal_budget"]))
        stdout.print(table)
    print_probes(stdout, o["probes"])
    if o["ranges"]:
        stdout.print(ranges_table(o["ranges"]))
    for line in o["warnings"]:
        stdout.print(f"warning: {line}")
