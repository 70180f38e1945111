"""A network's modes (train/eval), its state (parameters + buffers) and the config that rebuilds it.

    state = model.state()          # {"params": one flat array, "buffers": {"batchnorm.0.running_mean": ...}}
    model.load_state(state)        # in place: the layers' views stay valid
    twin = MLP.from_config(model.config, state)

`ModelState` is the MLP's base class; it reads the network's `params`, `norms` (its batch normalization
layers) and the attributes `config` lists, so that a saved model is plain arrays and a JSON-able dict
(no pickle).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Self

import numpy as np

from tuner.errors import ModelError
from tuner.nn.arguments import check_state

if TYPE_CHECKING:
    from tuner.nn.batchnorm import BatchNorm


class ModelState:
    """Modes, state and config of a network (see the module docstring)."""

    params: np.ndarray
    norms: list[BatchNorm]
    training: bool
    layer_sizes: tuple[int, ...]
    activation: str
    loss_name: str
    batchnorm: bool
    dtype: np.dtype

    def train(self) -> Self:
        """Train mode: batch normalization uses (and updates the running averages of) batch statistics."""
        self.training = True
        return self

    def eval(self) -> Self:
        """Eval mode: batch normalization uses the running statistics; nothing is updated by a pass."""
        self.training = False
        return self

    def buffers(self) -> dict[str, np.ndarray]:
        """The non-trainable arrays by name (`batchnorm.<l>.running_mean`, ...): views, updated in place."""
        return {f"batchnorm.{l}.{name}": array for l, norm in enumerate(self.norms)
                for name, array in norm.buffers.items()}

    @property
    def config(self) -> dict:
        """What `from_config` needs to rebuild this network (JSON-able)."""
        return {"layer_sizes": list(self.layer_sizes), "activation": self.activation, "loss": self.loss_name,
                "batchnorm": self.batchnorm, "dtype": self.dtype.name}

    def state(self) -> dict:
        """A copy of the parameters (one flat array) and the buffers (named arrays): `load_state` restores it."""
        return {"params": self.params.copy(), "buffers": {k: v.copy() for k, v in self.buffers().items()}}

    def load_state(self, state: dict) -> None:
        """Copy a `state()` back into this network in place (the views stay valid); ModelError on a mismatch."""
        params, buffers = check_state(state, self.params, self.buffers())
        np.copyto(self.params, params)
        for name, array in self.buffers().items():
            np.copyto(array, buffers[name])

    @classmethod
    def from_config(cls, config: dict, state: dict | None = None) -> Self:
        """A network of `config` (see `config`), with `state` loaded into it when given."""
        known = {"layer_sizes", "activation", "loss", "batchnorm", "dtype"}
        if not isinstance(config, dict) or not set(config) <= known or "layer_sizes" not in config:
            raise ModelError(f"a model config needs layer_sizes and may hold {sorted(known)}, got {config!r}")
        model = cls(rng=0, init="zeros", **config)
        if state is not None:
            model.load_state(state)
        return model

    @contextlib.contextmanager
    def restoring(self, *, params: bool = False) -> Iterator[Self]:
        """Train mode inside; afterwards the buffers (and `params`, when asked) and the mode as before.

        For the probes: they measure the training-time statistics without leaving a trace in the model.
        """
        saved, training = self.state(), self.training
        self.train()
        try:
            yield self
        finally:
            if not params:
                saved["params"] = self.params
            self.load_state(saved)
            self.training = training
