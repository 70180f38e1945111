"""tuner: good training hyperparameters and initial weight scales for neural networks."""

from tuner.errors import TunerError

__all__ = ["TunerError", "__version__"]


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed metadata on first use: importlib.metadata costs every command
    (`tuner --help` too) tens of milliseconds, and only a created study and a report record the version."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("tuner")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value
