"""`tuner db ...`: migrate the project's tables and show which revision a database is at."""

from __future__ import annotations

from typing import Annotated

import typer

from tuner.cli._common import JsonOption, Output, QuietOption, StorageOption, safe, storage_url
from tuner.errors import SchemaError, TunerError
from tuner.text import printable

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Create or migrate tuner's tables (tuner_*) in a database; Optuna's own tables are left alone.\n\n"
    "Example: tuner db upgrade --storage postgresql+psycopg://tuner@db/tuner",
    no_args_is_help=True,
)


def _describe(revision: str | None, head: str) -> str:
    if revision == head:
        return f"{revision} (head)"
    return f"{printable(revision or 'none')} (head is {head})"


@app.command("upgrade")
def upgrade_(
    storage: StorageOption = None,
    revision: Annotated[str, typer.Option("--revision", help="Target revision.")] = "head",
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Create tuner's tables, or migrate them to the newest revision this tuner knows.

    Example: tuner db upgrade --storage sqlite:///tuner.db
    """
    from tuner.storage import current_revision, head_revision, open_database, upgrade

    output = Output(quiet, as_json)
    url = storage_url(storage)
    engine = open_database(url, create=True)
    before = current_revision(engine)
    upgrade(url, revision)
    after = current_revision(engine)
    head = head_revision()
    if before == after:
        line = f"{safe(url)}: already at revision {_describe(after, head)}"
    else:
        line = f"{safe(url)}: upgraded from revision {printable(before or 'none')} to {_describe(after, head)}"
    output.emit({"storage": safe(url), "before": before, "after": after, "head": head}, lambda: typer.echo(line))


@app.command("current")
def current(storage: StorageOption = None, quiet: QuietOption = False, as_json: JsonOption = False) -> None:
    """Print the revision of tuner's tables; exit 1 when it is not the newest this tuner knows.

    Example: tuner db current --storage sqlite:///tuner.db
    """
    from tuner.storage import current_revision, head_revision, open_database

    output = Output(quiet, as_json)
    url = storage_url(storage)
    engine = open_database(url)  # reading: a mistyped SQLite path is refused, not created
    revision = current_revision(engine)
    head = head_revision()
    if revision != head:
        raise SchemaError(f"{safe(url)}: revision {_describe(revision, head)}: this tuner cannot use it; "
                          "run 'tuner db upgrade'")
    output.emit({"storage": safe(url), "revision": revision, "head": head},
                lambda: typer.echo(f"{safe(url)}: revision {_describe(revision, head)}"))


@app.command("downgrade")
def downgrade_(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops every tuner table.")],
    storage: StorageOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: a downgrade deletes tables and their data.")] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Migrate tuner's tables down to REVISION (Optuna's tables are untouched).

    Example: tuner db downgrade base --storage sqlite:///tuner.db --yes
    """
    from tuner.storage import current_revision, downgrade, open_database

    output = Output(quiet, as_json)
    url = storage_url(storage)
    if not yes:
        raise TunerError(f"a downgrade of {safe(url)} to {revision} can delete data: add --yes to confirm")
    engine = open_database(url)
    before = current_revision(engine)
    downgrade(url, revision)
    after = current_revision(engine)
    output.emit({"storage": safe(url), "before": before, "after": after}, lambda: typer.echo(
        f"{safe(url)}: downgraded from revision {printable(before or 'none')} to {printable(after or 'none')}"))
