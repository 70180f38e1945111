"""The `tuner` command line: one module per command group.

Domain errors (`TunerError`) are turned into one line on stderr and an exit code here, at the edge; the
library itself never prints and never exits. Every command takes `--quiet` and `--json` (`_common`).
The modules here import only typer, rich and tuner's light modules at their top: the rest (SQLAlchemy,
Optuna, NumPy, pandas, matplotlib) loads inside the command that uses it, so `tuner --help` starts fast
(tests/cli/test_startup.py).
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tuner.errors import TunerError
from tuner.text import printable


class _Group(TyperGroup):
    """The root group: every command runs inside its `invoke`, so domain errors are caught in one place."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TunerError as err:
            typer.echo(f"error: {printable(str(err))}", err=True)  # one line, never wrapped
            raise typer.Exit(err.exit_code) from None
        except typer.BadParameter as err:
            # A value out of its bounds or missing: one line like every other error, not a usage panel.
            where = err.ctx.command_path if err.ctx is not None else "tuner"
            message = printable(" ".join(err.format_message().split()))
            typer.echo(f"error: {message} (see '{where} --help')", err=True)
            raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    rich_markup_mode="markdown",
    cls=_Group,
    name="tuner",
    help="Find good training hyperparameters and initial weight scales for neural networks.\n\n"
    "Example: tuner run studies/digits-mlp.toml",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True,
                     help="Also log retries, lost database connections and failed heartbeats to stderr "
                     "(-vv: debug). Warnings (a trial taken from a paused worker) are always shown."),
    ] = 0,
) -> None:
    """Find good training hyperparameters and initial weight scales for neural networks.

    Example: tuner run studies/digits-mlp.toml
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logger = logging.getLogger("tuner")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def _register() -> None:
    from tuner.cli import dashboard, db, probe, report, study, train, worker

    app.add_typer(study.app, name="study")
    app.add_typer(db.app, name="db")
    app.add_typer(probe.app, name="probe")
    worker.register(app)
    report.register(app)
    train.register(app)
    dashboard.register(app)


_register()


def main() -> None:
    app(prog_name="tuner")
