"""`optim` sits below `nn` in the import graph (STYLE.md: `optim` owns its schedule)."""

from __future__ import annotations

import ast
from pathlib import Path

import tuner.optim

PACKAGE = Path(tuner.optim.__file__).parent


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_optim_imports_nothing_from_nn():
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) > 5
    offending = {
        f.name: sorted(m for m in imported_modules(f) if m == "tuner.nn" or m.startswith("tuner.nn."))
        for f in files
    }
    assert {name: mods for name, mods in offending.items() if mods} == {}
