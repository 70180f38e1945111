"""The NumPy training core: activations, losses, init, layers (dense, batch normalization), the MLP, data,
the training loop.

    from tuner.nn import MLP, load_dataset, train
    from tuner.nn import save_model, load_model      # the trained-model file (model_file.py)
"""

from __future__ import annotations

from tuner.nn.activations import ACTIVATIONS, Activation, activate, activation_grad
from tuner.nn.batchnorm import BatchNorm
from tuner.nn.data import Dataset, load_dataset
from tuner.nn.init import BIASES, SCHEMES, default_gain
from tuner.nn.layers import Dense, Layer, Nonlinearity
from tuner.nn.losses import LOSSES, mean_squared_error, softmax_cross_entropy
from tuner.nn.mlp import MLP
from tuner.nn.model_file import SavedModel, load_model, read_model, save_model
from tuner.nn.train import (  # binds `train` to the function, not the module
    EpochRecord,
    TrainResult,
    train,
)

__all__ = [
    "ACTIVATIONS",
    "BIASES",
    "LOSSES",
    "MLP",
    "SCHEMES",
    "Activation",
    "BatchNorm",
    "Dataset",
    "Dense",
    "EpochRecord",
    "Layer",
    "Nonlinearity",
    "SavedModel",
    "TrainResult",
    "activate",
    "activation_grad",
    "default_gain",
    "load_dataset",
    "load_model",
    "mean_squared_error",
    "read_model",
    "save_model",
    "softmax_cross_entropy",
    "train",
]
