"""`tuner study ...`: create, check, list, show, export, delete and clean up studies."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tuner.cli._common import (
    JsonOption,
    NameArgument,
    Output,
    QuietOption,
    SpecArgument,
    StorageOption,
    StudyNameOption,
    TrialOption,
    quiet_optuna,
    safe,
    stdout,
    storage_url,
)
from tuner.cli.spec_check import check
from tuner.errors import TunerError
from tuner.study.limits import MAX_GRACE_S
from tuner.text import printable

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Create, check, list, show, export, delete and clean up studies.\n\n"
    "Example: tuner study list --storage sqlite:///tuner.db",
    no_args_is_help=True,
)
app.command("check")(check)


class ExportFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"
    json = "json"


@app.command("create")
def create(
    spec_path: SpecArgument,
    name: StudyNameOption = None,
    storage: StorageOption = None,
    load_if_exists: Annotated[
        bool, typer.Option("--load-if-exists", help="Reuse an existing study of that name if its spec is the same.")
    ] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Create a study from a spec file; its validated spec is stored in the database for every worker.

    With `"auto"` in the spec the probes run first: what each found and the ranges it set are printed, and
    their picks are queued as the study's first trials. `tuner study check SPEC` validates a spec without
    creating anything.

    Example: tuner study create studies/digits-mlp.toml --storage sqlite:///tuner.db
    """
    from tuner.storage import open_study
    from tuner.study.create import create_study
    from tuner.study.spec import load_spec

    output = Output(quiet, as_json)
    quiet_optuna()
    url = storage_url(storage)
    study_name, created = create_study(url, load_spec(spec_path), name=name, load_if_exists=load_if_exists)
    if quiet:
        return
    from tuner.analysis.overview import created_summary  # pandas: only when something is printed

    summary = created_summary(open_study(url, study_name), created=created, storage=safe(url))
    output.emit(summary, lambda: _print_created(summary, study_name, created, url))


def _print_created(summary: dict, study_name: str, created: bool, url: str) -> None:
    from tuner.cli._probes import print_probes

    verb = "created" if created else "exists, reusing"
    stdout.print(f"study '{printable(study_name)}' {verb} in {safe(url)}")
    probes = summary["probes"]
    print_probes(stdout, probes)
    if summary["queued"]:
        stdout.print(f"queued first: {summary['queued']} trial(s), the probes' picks")


@app.command("list")
def list_(storage: StorageOption = None, quiet: QuietOption = False, as_json: JsonOption = False) -> None:
    """List the studies in the database with their trial counts and best values.

    Example: tuner study list --storage sqlite:///tuner.db --json
    """
    from tuner.study.listing import list_studies  # SQL only: no Optuna, no NumPy

    output = Output(quiet, as_json)
    summaries = list_studies(storage_url(storage))
    output.emit([s.__dict__ for s in summaries], lambda: _print_list(summaries))


def _print_list(summaries: list) -> None:
    from rich.table import Table
    from rich.text import Text

    from tuner.storage.optuna_tables import finished_count
    from tuner.text import fmt

    if not summaries:
        stdout.print("no studies")
        return
    table = Table("study", "direction", "finished / total", "running", "failed", "best")
    for s in summaries:
        finished = finished_count(s.counts)
        table.add_row(Text(printable(s.name)), s.direction, f"{finished} / {s.n_trials}",
                      str(s.counts.get("RUNNING", 0)), str(s.counts.get("FAIL", 0)), fmt(s.best))
    stdout.print(table)


@app.command("show")
def show(name: NameArgument, storage: StorageOption = None, quiet: QuietOption = False,
         as_json: JsonOption = False) -> None:
    """Show a study: best trial, trial counts by state, and the best value per optimizer.

    Example: tuner study show digits-mlp --json
    """
    from tuner.analysis.overview import study_overview
    from tuner.cli.summary import print_overview
    from tuner.storage import open_study

    output = Output(quiet, as_json)
    quiet_optuna()
    overview = study_overview(open_study(storage_url(storage), name))
    output.emit(overview, lambda: print_overview(name, overview))


@app.command("export")
def export(
    name: NameArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write.")],
    fmt_: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv, parquet or json.")] = ExportFormat.csv,
    storage: StorageOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export one row per trial (every parameter, state, value, best epoch, start and end times, duration,
    diverged flag) to a file.

    Example: tuner study export digits-mlp --format parquet --out digits.parquet
    """
    from tuner.analysis import trials_frame
    from tuner.cli._files import refuse_to_overwrite, write_frame, write_whole
    from tuner.storage import open_study

    output = Output(quiet, as_json)
    refuse_to_overwrite(out, force=force)
    quiet_optuna()
    frame = trials_frame(open_study(storage_url(storage), name))
    write_whole(out, lambda path: write_frame(frame, path, fmt_.value))
    output.emit({"study": name, "out": str(out), "format": fmt_.value, "trials": len(frame)})
    output.note(f"wrote {len(frame)} trials to {printable(str(out))}")


@app.command("export-spec")
def export_spec(
    name: NameArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="The spec file to write (TOML).")],
    trial: TrialOption = "best",
    storage: StorageOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Write a trial's configuration as a spec file with every searched value fixed.

    The optimizer, eps0, the hyperparameters, the schedule, the init scheme and each layer's init scale
    are the trial's own; `train.seed` is the trial's training seed, so `tuner run OUT` trains the same run
    again (and `tuner train` on that study saves its model). One trial, no pruner; the rest is the study's
    spec as stored.

    Example: tuner study export-spec digits-mlp --trial best --out digits-best.toml
    """
    from tuner.cli._files import refuse_to_overwrite, write_whole
    from tuner.storage import open_study
    from tuner.study.fixed_spec import export_fixed_spec
    from tuner.study.replay import pick_trial

    output = Output(quiet, as_json)
    refuse_to_overwrite(out, force=force)
    quiet_optuna()
    handle = open_study(storage_url(storage), name)
    picked = pick_trial(handle, trial)
    text = export_fixed_spec(handle, picked)
    write_whole(out, lambda path: path.write_text(text, encoding="utf-8"))
    output.emit({"study": name, "trial": picked.number, "out": str(out)})
    output.note(f"wrote the spec of trial {picked.number} to {printable(str(out))}")


@app.command("delete")
def delete(
    name: NameArgument,
    storage: StorageOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the study's trials and curves are deleted.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Delete even while workers of the study run (they stop).")] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Delete a study, its trials, curves and worker records.

    Refused while a worker of the study looks alive (seen within two of its heartbeats), unless --force:
    the workers then stop with one line, and nothing of the study is left for a new study of the same name.

    Example: tuner study delete digits-mlp --yes
    """
    output = Output(quiet, as_json)
    if not yes:
        raise TunerError(f"deleting study '{name}' removes all its trials; add --yes to confirm")
    from tuner.study.catalog import delete_study

    quiet_optuna()
    delete_study(storage_url(storage), name, force=force)
    output.emit({"study": name, "deleted": True}, lambda: stdout.print(f"deleted study '{printable(name)}'"))


@app.command("cleanup")
def cleanup(
    name: NameArgument,
    storage: StorageOption = None,
    grace_period: Annotated[
        int, typer.Option("--grace-period", min=1, max=MAX_GRACE_S,
                          help="Seconds without a heartbeat before a RUNNING trial counts as dead.")
    ] = 60,
    force: Annotated[bool, typer.Option("--force", help="Clean up even while workers of the study look alive.")] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fail the trials left RUNNING by dead workers and queue them again.

    Refused while a worker of the study looks alive (seen within two of its heartbeats), unless --force:
    live workers clean up after dead ones by themselves.

    Example: tuner study cleanup digits-mlp --grace-period 120
    """
    from tuner.study.catalog import cleanup_study

    output = Output(quiet, as_json)
    quiet_optuna()
    failed = cleanup_study(storage_url(storage), name, grace_period=grace_period, force=force)
    output.emit({"study": name, "requeued": failed}, lambda: stdout.print(
        f"failed and re-queued {len(failed)} stale trials" + (f": {failed}" if failed else "")))
