"""Every command and every group says in its --help how it is used: an example, and the same names for the
same things (the study name, the spec, the storage URL, --json and --quiet)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tuner.cli import app

ROOT = typer.main.get_command(app)


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, command) of the command and everything below it (Typer's click is vendored: duck-typed)."""
    found = [(path, command)]
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            found += _walk(sub, (*path, name))
    return found


COMMANDS = _walk(ROOT)
LEAVES = [(path, c) for path, c in COMMANDS if not hasattr(c, "commands")]


def _id(item: tuple[tuple[str, ...], Any]) -> str:
    return " ".join(("tuner", *item[0]))


def test_the_walk_finds_every_group_and_command():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "study", "db", "probe", "run", "worker", "report", "dashboard", "study check", "study list"} <= names


@pytest.mark.parametrize("item", COMMANDS, ids=_id)
def test_every_command_and_group_help_has_an_example(item):
    _, command = item
    assert "Example" in (command.help or "") + (command.epilog or "")


@pytest.mark.parametrize("item", COMMANDS, ids=_id)
def test_the_rendered_help_shows_the_example(item):
    path, _ = item
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "Example" in result.stdout


@pytest.mark.parametrize("item", LEAVES, ids=_id)
def test_every_command_takes_json_and_quiet(item):
    _, command = item
    options = {opt for p in command.params for opt in p.opts}
    assert {"--json", "--quiet"} <= options


def test_the_same_thing_has_the_same_name_everywhere():
    metavars, storage = {}, set()
    for _, command in LEAVES:
        for p in command.params:
            if p.name in ("name", "spec_path") and p.param_type_name == "argument":
                metavars.setdefault(p.name, set()).add((p.metavar, p.help if hasattr(p, "help") else None))
            if p.name == "storage":
                storage.add(tuple(p.opts))
    assert metavars["name"] == {("NAME", "The study's name.")}
    assert metavars["spec_path"] == {("SPEC", "A study spec file (TOML).")}
    assert storage == {("--storage",)}
