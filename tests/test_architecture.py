"""The package's layers point one way, and no module imports itself back through others.

Every `import` of a tuner module is read from the source (at module level, inside functions, and under
`TYPE_CHECKING` alike: an import inside a function to dodge a cycle is still a cycle) and checked against
the layering of docs/architecture.md:

    cli -> study -> (probe, nn, optim, storage) -> errors        analysis -> storage (and study.spec)
    probe -> nn, optim;  nn and optim know nothing of each other;  nothing imports cli

`errors`, `domains` (how a number's domain is checked), `text`, `stop` (a worker's stop request), `lazy`
(a package's lazily imported names) and the root package (its version) sit below everything.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import tuner

PACKAGE = Path(tuner.__file__).resolve().parent
MIGRATIONS = PACKAGE.parent / "alembic"  # shipped in the wheel as tuner._alembic
BASE = {"tuner", "errors", "text", "stop", "domains", "lazy"}
ALLOWED = {
    "tuner": {"errors"},
    "errors": set(),
    "text": set(),
    "stop": set(),
    "domains": set(),
    "lazy": set(),
    "nn": set(),
    "optim": set(),
    "probe": {"nn", "optim"},
    "storage": set(),
    "study": {"probe", "nn", "optim", "storage"},
    "analysis": {"storage", "study"},
    "cli": {"study", "probe", "nn", "optim", "storage", "analysis"},
    "__main__": {"cli"},
    "_alembic": {"storage"},
}
# analysis reads a stored spec back; nothing else of the study layer
NARROW = {("analysis", "study"): {"tuner.study.spec"}}


def _module_name(path: Path) -> str:
    if path.is_relative_to(MIGRATIONS):
        parts = ("tuner", "_alembic", *path.relative_to(MIGRATIONS).with_suffix("").parts)
    else:
        parts = ("tuner", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    paths = [*PACKAGE.rglob("*.py"), *MIGRATIONS.rglob("*.py")]
    return {_module_name(p): p for p in paths if "__pycache__" not in p.parts}


MODULES = _sources()


def _resolve(name: str) -> str:
    """The module a dotted name refers to: itself if it is a module, else the package that holds it."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every tuner module that `path` imports, anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, _resolve(a.name)) for a in node.names if a.name.split(".")[0] == "tuner"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tuner":
            # `from tuner.storage import engine` imports the module tuner.storage.engine
            found += [(node.lineno, _resolve(f"{node.module}.{a.name}")) for a in node.names]
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tuner"


GRAPH = {module: sorted({m for _, m in _imports(path)} - {module}) for module, path in MODULES.items()}


def test_every_import_points_down_the_layers():
    wrong = []
    for module, path in MODULES.items():
        source = _layer(module)
        for line, target in _imports(path):
            layer = _layer(target)
            if layer == source or layer in BASE:
                continue
            narrow = NARROW.get((source, layer))
            allowed = layer in ALLOWED[source] and (narrow is None or target in narrow)
            if not allowed:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} -> {target}")
    assert wrong == []


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back():
    assert _cycles(GRAPH) == []


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path):
    # The rules must be able to fail: a cycle hidden in a function and an upward arrow are both found.
    assert _cycles({"a": ["b"], "b": ["a"], "c": ["a"]}) == [["a", "b"]]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from tuner.cli import app\n    import tuner.study.catalog\n")
    assert _imports(source) == [(2, "tuner.cli"), (3, "tuner.study.catalog")]


@pytest.mark.parametrize("layer", ["nn", "optim", "probe", "storage", "study", "analysis"])
def test_nothing_below_the_cli_imports_it(layer):
    assert not [m for m, targets in GRAPH.items() if _layer(m) == layer and any(_layer(t) == "cli" for t in targets)]


def test_optuna_private_attributes_are_used_in_the_adapter_only():
    private = ("._trial_id", "._storage", "._study_id", "optuna_dashboard._")
    users = defaultdict(list)
    for module, path in MODULES.items():
        text = path.read_text()
        for marker in private:
            if marker in text:
                users[module].append(marker)
    assert set(users) <= {"tuner.storage.optuna_adapter"}, dict(users)


def test_every_package_is_listed_for_the_wheel():
    # pyproject lists the packages by hand (the migrations ship as tuner._alembic): a new subpackage left
    # out would be missing from `pip install .` (the Docker image) while an editable install hides it.
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {_module_name(p) for p in [*PACKAGE.rglob("__init__.py"), *MIGRATIONS.rglob("__init__.py")]}
    assert on_disk <= listed
