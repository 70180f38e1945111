"""`tuner report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tuner.cli._common import (
    JsonOption,
    NameArgument,
    Output,
    QuietOption,
    StorageOption,
    quiet_optuna,
    stderr,
    stdout,
    storage_url,
)
from tuner.study.limits import MAX_TOP
from tuner.text import printable

if TYPE_CHECKING:
    from rich.progress import Progress


def report(
    name: NameArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="The directory to write report.html and the PNGs into.")],
    storage: StorageOption = None,
    force: Annotated[bool, typer.Option("--force", help="Write into OUT even if it is not empty.")] = False,
    top: Annotated[
        int, typer.Option("--top", "-k", min=1, max=MAX_TOP, help="How many of the best trials to show.")
    ] = 5,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Write an HTML report of a study with its figures as PNG files beside it.

    The page is self-contained (figures embedded), so it opens offline: optimization history, best value
    per optimizer, parameter importances, validation curves of the best trials, and the validation metric
    against each layer's init scale with the init-scale guess marked.

    Example: tuner report digits-mlp --out report/
    """
    from tuner.analysis.report import (  # matplotlib: loaded only when a report is made
        STEPS,
        build_report,
    )
    from tuner.storage import open_study

    output = Output(quiet, as_json)
    quiet_optuna()
    study = open_study(storage_url(storage), name)
    with _StepProgress(name, STEPS, quiet=not output.human) as progress:
        result = build_report(study, out, force=force, top=top, on_step=progress.step)
    output.emit({"study": name, "html": str(result.html), "figures": [str(f) for f in result.figures]},
                lambda: stdout.print(f"wrote {printable(str(result.html))} and {len(result.figures)} figures",
                                     markup=False, soft_wrap=True))


class _StepProgress:
    """The report's steps: a live bar on a terminal, one line per step elsewhere (logs, CI)."""

    def __init__(self, name: str, steps: tuple[str, ...], *, quiet: bool) -> None:
        self.name = printable(name)
        self.steps = steps
        self.quiet = quiet
        self._progress: Progress | None = None
        if not quiet and stderr.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=stderr, transient=True,
            )
            self._task = self._progress.add_task(name, total=len(steps))

    def __enter__(self) -> _StepProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def step(self, description: str) -> None:
        done = self.steps.index(description)
        if self._progress is not None:
            self._progress.update(self._task, completed=done, description=f"report {self.name}: {description}")
        elif not self.quiet:
            stderr.print(f"report {self.name}: {done + 1}/{len(self.steps)} {description}", markup=False,
                         soft_wrap=True)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=len(self.steps))
            self._progress.stop()


def register(app: typer.Typer) -> None:
    """Add `report` to the root app."""
    app.command("report")(report)
