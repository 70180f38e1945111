"""tuner: good training hyperparameters and initial weight scales for neural networks."""

from importlib.metadata import PackageNotFoundError, version

from tuner.errors import TunerError

try:
    __version__ = version("tuner")
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = ["TunerError", "__version__"]
