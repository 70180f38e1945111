"""Start-up: `tuner --help` loads none of the heavy libraries, `tuner study list` none of the numeric ones
(nor Alembic: a schema at head is recognised by one SELECT).

A behaviour test (which modules are imported, read from `python -X importtime`), not a timing one: the
figures are in bench/RESULTS.md ("Startup"), measured by bench/startup.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tuner.storage import ensure_schema, make_engine

HEAVY = ("sqlalchemy", "alembic", "optuna", "numpy", "pandas", "matplotlib", "mnist1d")
NOT_FOR_LIST = ("numpy", "pandas", "matplotlib", "mnist1d", "optuna", "scipy", "sklearn", "plotly", "alembic")
_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|(\s*)(\S+)$")


def imported(*args: str) -> set[str]:
    """The top-level packages `python -m tuner ARGS` imports, with the exit code checked."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONIMPORTTIME"}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tuner", *args], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    names = {m.group(2).split(".")[0] for line in result.stderr.splitlines() if (m := _LINE.match(line))}
    assert "tuner" in names  # the importtime lines were read
    return names


def test_help_imports_no_database_or_numeric_library():
    assert imported("--help") & set(HEAVY) == set()


def test_a_group_help_imports_none_either():
    assert imported("study", "--help") & set(HEAVY) == set()


def test_study_list_imports_no_numeric_library_nor_alembic(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    ensure_schema(make_engine(url), create_if_empty=True)
    optuna.create_study(study_name="plain", storage=url).enqueue_trial({})
    assert imported("study", "list", "--storage", url) & set(NOT_FOR_LIST) == set()
