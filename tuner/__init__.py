"""tuner: good training hyperparameters and initial weight scales for neural networks."""

from tuner.errors import TunerError

__version__ = "0.1.0"

__all__ = ["TunerError", "__version__"]
