"""What the command groups share: the storage option, stderr output, and the live progress line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from tuner.storage import redact, resolve_url
from tuner.text import fmt, printable

StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Database URL (SQLAlchemy form). Default: $TUNER_STORAGE, else sqlite:///tuner.db here.",
        show_default=False,
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts.")]


def _trial_choice(value: str) -> int | str:
    """`--trial`: a trial number (>= 0) or `best`."""
    if value == "best":
        return value
    if value.isascii() and value.isdigit():
        return int(value)
    raise typer.BadParameter(f"expected a trial number or 'best', got {value!r}")


TrialOption = Annotated[
    str,
    typer.Option("--trial", "-t", callback=_trial_choice, metavar="N|best",
                 help="A trial number, or 'best': the study's best COMPLETE trial."),
]

# Off a terminal (pipes, CI logs) rich would wrap tables at 80 columns; a wider page keeps rows whole.
# No markup and no emoji codes: what is printed holds user text (study names, paths, parameter names),
# which must come out literally, and `[/]` in a name must not crash a command. User text also goes
# through `printable`, so that it cannot carry terminal escape sequences.
stderr = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True,
                 width=None if sys.stderr.isatty() else 160)
stdout = Console(highlight=False, markup=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def storage_url(value: str | None) -> str:
    """The URL the command uses: --storage, else $TUNER_STORAGE, else sqlite:///tuner.db."""
    return resolve_url(value)


def safe(url: str) -> str:
    """The URL with its password hidden, for anything printed."""
    return redact(url)


class TrialProgress:
    """Trials done / total and the best value so far: a live bar on a terminal, one line per update elsewhere."""

    def __init__(self, total: int, label: str, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self._progress: Progress | None = None
        self._task = None
        self._label = printable(label)
        self._total = total

    def __enter__(self) -> TrialProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("best {task.fields[best]}"),
                TextColumn("{task.fields[states]}"),
                TimeElapsedColumn(),
                console=stderr,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=self._total, best="-", states="")
        return self

    def update(self, finished: int, best: float | None, counts: dict[str, int]) -> None:
        states = " ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()) if v)
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=min(finished, self._total), best=fmt(best), states=states)
        else:
            stderr.print(f"{self._label}: {finished}/{self._total} trials, best {fmt(best)} ({states})")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
