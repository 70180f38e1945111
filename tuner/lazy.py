"""Names a package re-exports, imported from their modules only when first used.

`tuner.storage` and `tuner.study` list what they export and where it lives; `tuner --help` and
`tuner study list` then load no SQLAlchemy, Optuna or NumPy they do not use (bench/RESULTS.md, Startup).

    __getattr__ = lazy_exports(__name__, {"make_engine": "tuner.storage.engine", ...})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package`: `where[name]` is the module that defines `name`."""

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next use is a plain attribute
        return value

    return __getattr__
