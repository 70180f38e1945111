"""`tuner study ...`: create, list, show, export, delete and clean up studies."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from tuner.cli._common import (
    JsonOption,
    QuietOption,
    StorageOption,
    TrialOption,
    safe,
    stderr,
    stdout,
    storage_url,
)
from tuner.cli._probes import print_probes, ranges_table
from tuner.errors import TunerError
from tuner.storage import finished_count, open_study
from tuner.study.catalog import cleanup_study, delete_study, list_studies
from tuner.study.create import create_study
from tuner.study.fixed_spec import export_fixed_spec
from tuner.study.limits import MAX_GRACE_S
from tuner.study.replay import pick_trial
from tuner.study.spec import load_spec
from tuner.text import fmt, printable

if TYPE_CHECKING:  # pandas loads with the commands that show or export, not for every `tuner` command
    import pandas as pd

app = typer.Typer(rich_markup_mode="markdown", help="Create, list, show, export, delete and clean up studies.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="The study's name.")]


class ExportFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"
    json = "json"


@app.command("create")
def create(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="A study spec file (TOML).")],
    name: Annotated[str | None, typer.Option("--name", help="Study name (default: the spec's study.name).")] = None,
    storage: StorageOption = None,
    load_if_exists: Annotated[
        bool, typer.Option("--load-if-exists", help="Reuse an existing study of that name if its spec is the same.")
    ] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Create a study from a spec file; its validated spec is stored in the database for every worker.

    With `"auto"` in the spec the probes run first: what each found and the ranges it set are printed, and
    their picks are queued as the study's first trials.

    Example: tuner study create studies/digits-mlp.toml --storage sqlite:///tuner.db
    """
    url = storage_url(storage)
    spec = load_spec(spec_path)
    study_name, created = create_study(url, spec, name=name, load_if_exists=load_if_exists)
    if quiet:
        return
    from tuner.analysis.overview import created_summary  # pandas: only when something is printed

    summary = created_summary(open_study(url, study_name), created=created, storage=safe(url))
    if as_json:
        typer.echo(json.dumps(summary))
        return
    verb = "created" if created else "exists, reusing"
    stdout.print(f"study '{printable(study_name)}' {verb} in {safe(url)}")
    probes = summary["probes"]
    print_probes(stdout, probes["init_guess"], probes["scheme"], probes["lr_probe"])
    if summary["queued"]:
        stdout.print(f"queued first: {summary['queued']} trial(s), the probes' picks")


@app.command("list")
def list_(storage: StorageOption = None, as_json: JsonOption = False) -> None:
    """List the studies in the database with their trial counts and best values.

    Example: tuner study list --storage sqlite:///tuner.db
    """
    summaries = list_studies(storage_url(storage))
    if as_json:
        typer.echo(json.dumps([s.__dict__ for s in summaries], default=str))
        return
    if not summaries:
        stdout.print("no studies")
        return
    table = Table("study", "direction", "finished / total", "running", "failed", "best")
    for s in summaries:
        finished = finished_count(s.counts)
        table.add_row(Text(printable(s.name)), s.direction, f"{finished} / {s.n_trials}",
                      str(s.counts.get("RUNNING", 0)), str(s.counts.get("FAIL", 0)), fmt(s.best))
    stdout.print(table)


def print_summary(url: str, name: str) -> None:
    """The human form of `study_overview`: best trial, counts, and a table per optimizer."""
    from tuner.analysis.overview import (
        study_overview,  # pandas: only for the commands that show
    )

    o = study_overview(open_study(url, name))
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
    print_probes(stdout, o["probes"]["init_guess"], o["probes"]["scheme"], o["probes"]["lr_probe"])
    if o["ranges"]:
        stdout.print(ranges_table(o["ranges"]))
    for line in o["warnings"]:
        stdout.print(f"warning: {line}")


@app.command("show")
def show(name: NameArgument, storage: StorageOption = None, as_json: JsonOption = False) -> None:
    """Show a study: best trial, trial counts by state, and the best value per optimizer.

    Example: tuner study show digits-mlp --json
    """
    url = storage_url(storage)
    if as_json:
        from tuner.analysis.overview import study_overview

        overview = study_overview(open_study(url, name))
        typer.echo(json.dumps(overview, default=lambda v: None if isinstance(v, float) and math.isnan(v) else str(v)))
    else:
        print_summary(url, name)


@app.command("export")
def export(
    name: NameArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write.")],
    fmt_: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv, parquet or json.")] = ExportFormat.csv,
    storage: StorageOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Export one row per trial (every parameter, state, value, duration, diverged flag) to a file.

    Example: tuner study export digits-mlp --format parquet --out digits.parquet
    """
    if out.exists() and not force:
        raise TunerError(f"{out}: already exists (use --force to overwrite)")
    if not out.parent.is_dir():
        raise TunerError(f"{out}: no directory {out.parent} to write into")
    from tuner.analysis import trials_frame

    frame = trials_frame(open_study(storage_url(storage), name))
    _write_whole(out, lambda path: _write_frame(frame, path, fmt_))
    stderr.print(f"wrote {len(frame)} trials to {printable(str(out))}")


@app.command("export-spec")
def export_spec(
    name: NameArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="The spec file to write (TOML).")],
    trial: TrialOption = "best",
    storage: StorageOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Write a trial's configuration as a spec file with every searched value fixed.

    The optimizer, eps0, the hyperparameters, the schedule, the init scheme and each layer's init scale
    are the trial's own; `train.seed` is the trial's training seed, so `tuner run OUT` trains the same run
    again (and `tuner train` on that study saves its model). One trial, no pruner; the rest is the study's
    spec as stored.

    Example: tuner study export-spec digits-mlp --trial best --out digits-best.toml
    """
    if out.exists() and not force:
        raise TunerError(f"{out}: already exists (use --force to overwrite)")
    if not out.parent.is_dir():
        raise TunerError(f"{out}: no directory {out.parent} to write into")
    handle = open_study(storage_url(storage), name)
    picked = pick_trial(handle, trial)
    text = export_fixed_spec(handle, picked)
    _write_whole(out, lambda path: path.write_text(text, encoding="utf-8"))
    stderr.print(f"wrote the spec of trial {picked.number} to {printable(str(out))}")


def _write_frame(frame: pd.DataFrame, path: Path, fmt_: ExportFormat) -> None:
    if fmt_ is ExportFormat.csv:
        frame.to_csv(path, index=False)
    elif fmt_ is ExportFormat.json:
        frame.to_json(path, orient="records", indent=1)
    else:
        try:
            frame.to_parquet(path, index=False)
        except ImportError:
            raise TunerError("parquet export needs pyarrow: pip install 'tuner[parquet]'") from None


def _write_whole(out: Path, write: Callable[[Path], None]) -> None:
    """`write(path)` so that `out` holds the whole file or is left as it was, never a part of it.

    A regular file is written beside `out` under a temporary name and renamed over it once complete (a
    rename is atomic), so a full disk or a kill mid-way leaves no partial export. Anything else that
    exists (/dev/stdout, a FIFO) is written in place: it cannot be replaced by a rename.
    """
    if out.exists() and not out.is_file():
        try:
            write(out)
        except OSError as err:
            raise TunerError(f"cannot write {out}: {err.strerror or err}") from None
        return
    part = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    try:
        write(part)
        os.replace(part, out)
    except OSError as err:
        raise TunerError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        part.unlink(missing_ok=True)


@app.command("delete")
def delete(
    name: NameArgument,
    storage: StorageOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the study's trials and curves are deleted.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Delete even while workers of the study run (they stop).")] = False,
) -> None:
    """Delete a study, its trials, curves and worker records.

    Refused while a worker of the study looks alive (seen within two of its heartbeats), unless --force:
    the workers then stop with one line, and nothing of the study is left for a new study of the same name.

    Example: tuner study delete digits-mlp --yes
    """
    if not yes:
        raise TunerError(f"deleting study '{name}' removes all its trials; add --yes to confirm")
    delete_study(storage_url(storage), name, force=force)
    stdout.print(f"deleted study '{printable(name)}'")


@app.command("cleanup")
def cleanup(
    name: NameArgument,
    storage: StorageOption = None,
    grace_period: Annotated[
        int, typer.Option("--grace-period", min=1, max=MAX_GRACE_S,
                          help="Seconds without a heartbeat before a RUNNING trial counts as dead.")
    ] = 60,
    force: Annotated[bool, typer.Option("--force", help="Clean up even while workers of the study look alive.")] = False,
) -> None:
    """Fail the trials left RUNNING by dead workers and queue them again.

    Refused while a worker of the study looks alive (seen within two of its heartbeats), unless --force:
    live workers clean up after dead ones by themselves.

    Example: tuner study cleanup digits-mlp --grace-period 120
    """
    failed = cleanup_study(storage_url(storage), name, grace_period=grace_period, force=force)
    stdout.print(f"failed and re-queued {len(failed)} stale trials" + (f": {failed}" if failed else ""))
