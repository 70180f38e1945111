"""What the command groups share: the options every command takes, how output is chosen, and the consoles.

Every command that prints takes `--quiet` (nothing but errors) and `--json` (one JSON document on stdout,
nothing else there; errors still one line on stderr). Only typer, rich and the standard library load here:
`tuner --help` must not pay for SQLAlchemy, Optuna or NumPy, so the commands import those in their bodies.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tuner.errors import OptionError

StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        metavar="URL",
        help="Database URL (SQLAlchemy form). Default: $TUNER_STORAGE, else sqlite:///tuner.db here.",
        show_default=False,
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts (errors stay on stderr).")
]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The study's name.", show_default=False)]
SpecArgument = Annotated[Path, typer.Argument(metavar="SPEC", help="A study spec file (TOML).", show_default=False)]
StudyNameOption = Annotated[
    str | None, typer.Option("--name", help="Study name (default: the spec's study.name).", show_default=False)
]


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


@dataclass(frozen=True)
class Output:
    """What a command prints: for people (the default), nothing but errors (`--quiet`), or one JSON document."""

    quiet: bool = False
    as_json: bool = False

    def __post_init__(self) -> None:
        if self.quiet and self.as_json:
            raise OptionError("--json and --quiet exclude each other: --json already prints nothing but the document")

    @property
    def human(self) -> bool:
        """Whether lines for people (results, progress) are printed."""
        return not (self.quiet or self.as_json)

    def emit(self, document: Any, human: Callable[[], None] | None = None) -> None:
        """Print `document` as JSON with --json, else call `human()` unless --quiet."""
        if self.as_json:
            typer.echo(to_json(document))
        elif not self.quiet and human is not None:
            human()

    def note(self, line: str) -> None:
        """A line for people on stderr (what was done, where), shown unless --quiet or --json."""
        if self.human:
            stderr.print(line)


def to_json(document: Any) -> str:
    """Strict JSON: NaN and infinities become null (JSON has neither), anything else unknown its `str`."""
    return json.dumps(_finite(document), default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def storage_url(value: str | None) -> str:
    """The URL the command uses: --storage, else $TUNER_STORAGE, else sqlite:///tuner.db."""
    from tuner.storage.url import resolve_url

    return resolve_url(value)


def safe(url: str) -> str:
    """The URL with its password hidden, for anything printed."""
    from tuner.storage.url import redact

    return redact(url)


def quiet_optuna() -> None:
    """Optuna's INFO lines (a study created, each trial finished) off: tuner's own lines say as much.

    Called by the commands that use Optuna; importing it here for every command would cost `tuner --help`
    and `tuner study list` most of their start-up.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
