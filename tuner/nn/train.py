"""The training loop: minibatches in a fresh random order each epoch, one optimizer step per minibatch.

Everything random comes from the Generator passed in (one permutation per epoch), so a run replays bit
for bit from its seed. Minibatches are gathered with `ndarray.take(..., out=)` into two buffers allocated
once, rather than allocated anew by fancy indexing per batch (mode="clip" skips NumPy's buffered bounds
check; the rows come from a permutation, so they are always in range), and a full minibatch reuses one
closure over those buffers; on the digits net a step is ~80 µs, so the ~1 µs apiece that the method call
(rather than `np.take`'s Python wrapper) and the reused closure save per minibatch are worth having.
`model.evaluate` passes the validation set through the network in large chunks.

Divergence, checked after every minibatch with one comparison: the run ends as `diverged` when a batch
loss is NaN or infinite, or exceeds `EXPLOSION_FACTOR` (1000) times the first batch's loss (floored at
`LOSS_FLOOR` = 1e-3, so a run that starts near a zero loss is not stopped by noise). A finite training
loss followed by a non-finite validation loss (the last update overflowed) is divergence too.

Stopping inside an epoch: `should_stop(epoch, batch)` is called every `CHECK_EVERY` (16) minibatches, so a
time budget holds even when one epoch is long; a returned reason ends the run as `stopped`, and what it
raises (e.g. `TrialTimeoutError`) propagates. Every 16 batches keeps its cost (a call and a clock read)
invisible next to 16 optimizer steps.

Batch normalization needs at least 2 rows per training batch: with `model.batchnorm`, an epoch whose last
minibatch would hold a single row skips it (a different random row each epoch, as its order is permuted).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np

from tuner.errors import HyperparameterError, ModelError
from tuner.nn.data import Dataset

EXPLOSION_FACTOR = 1e3
LOSS_FLOOR = 1e-3
CHECK_EVERY = 16  # minibatches between two calls of should_stop


class Trainable(Protocol):
    """What the loop needs of a network (a `tuner.nn.mlp.MLP`)."""

    layer_sizes: tuple[int, ...]
    params: np.ndarray
    grad: np.ndarray
    batchnorm: bool

    def train(self) -> object: ...

    def check_set(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def loss_and_grad_checked(self, x: np.ndarray, y: np.ndarray) -> float: ...

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float | None]: ...


class Optimizer(Protocol):
    """What the loop needs of a `tuner.optim` optimizer (tuner.nn does not import tuner.optim)."""

    k: int

    def start(self, params: np.ndarray, total_steps: int) -> None: ...

    def step(self, params: np.ndarray, grad: np.ndarray, closure: Callable[[], float]) -> float: ...

    def rate(self, k: int) -> float: ...


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: mean minibatch loss, validation loss and accuracy (None for regression), the rate of the
    epoch's last step, and wall-clock seconds (including the validation pass)."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float | None
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """How a run ended (`completed`, `diverged` or `stopped`), its per-epoch history, and why it ended early."""

    status: str
    history: list[EpochRecord] = field(default_factory=list)
    reason: str | None = None

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def final(self) -> EpochRecord | None:
        """The last completed epoch."""
        return self.history[-1] if self.history else None

    @property
    def best(self) -> EpochRecord | None:
        """The epoch with the lowest finite validation loss."""
        finite = [r for r in self.history if math.isfinite(r.val_loss)]
        return min(finite, key=lambda r: r.val_loss) if finite else None


def train(
    model: Trainable,
    optimizer: Optimizer,
    data: Dataset,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    on_epoch: Callable[[EpochRecord], bool | None] | None = None,
    should_stop: Callable[[int, int], str | None] | None = None,
) -> TrainResult:
    """Train `model` in place (in train mode) for `epochs` passes over `data.x_train`; see the module docstring.

    `on_epoch(record)` runs after each epoch: returning True stops the run (`stopped`); what it raises
    (e.g. `optuna.TrialPruned`) propagates; so does `should_stop(epoch, minibatches done in the epoch)`,
    whose returned reason stops the run. A last, smaller minibatch takes the remainder of each epoch.
    """
    _check(model, data, epochs, batch_size, rng)
    x, y = model.check_set(data.x_train, data.y_train)  # once: the minibatches are rows of them
    n = len(x)
    batch_size = min(batch_size, n)
    batches = _batch_count(n, batch_size, model.batchnorm)
    x_buffer = np.empty((batch_size, *x.shape[1:]), dtype=x.dtype)
    y_buffer = np.empty((batch_size, *y.shape[1:]), dtype=y.dtype)
    full_batch = (x_buffer, y_buffer, partial(model.loss_and_grad_checked, x_buffer, y_buffer))
    optimizer.start(model.params, epochs * batches)
    model.train()
    history: list[EpochRecord] = []
    limit = None
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(n)
        total = 0.0
        for b in range(batches):
            rows = order[b * batch_size : (b + 1) * batch_size]
            xb, yb, closure = full_batch if len(rows) == batch_size else _part(model, x_buffer, y_buffer, len(rows))
            x.take(rows, 0, xb, "clip")
            y.take(rows, 0, yb, "clip")
            loss = optimizer.step(model.params, model.grad, closure)
            if limit is None:
                first = loss
                limit = EXPLOSION_FACTOR * max(loss, LOSS_FLOOR) if math.isfinite(loss) else -math.inf
            if not loss <= limit:  # also true for NaN
                return TrainResult("diverged", history, _divergence(loss, first, epoch, b + 1))
            total += loss
            if should_stop is not None and (b + 1) % CHECK_EVERY == 0:
                reason = should_stop(epoch, b + 1)
                if reason is not None:
                    return TrainResult("stopped", history, reason)
        val_loss, val_accuracy = model.evaluate(data.x_val, data.y_val)
        lr = optimizer.rate(optimizer.k - 1)
        history.append(EpochRecord(epoch, total / batches, val_loss, val_accuracy, lr, time.perf_counter() - started))
        if not math.isfinite(val_loss):
            return TrainResult("diverged", history, f"validation loss {val_loss} after epoch {epoch}")
        if on_epoch is not None and on_epoch(history[-1]):
            return TrainResult("stopped", history, f"on_epoch asked to stop after epoch {epoch}")
    return TrainResult("completed", history)


def _part(model: Trainable, x_buffer: np.ndarray, y_buffer: np.ndarray, rows: int) -> tuple:
    """The buffers' first `rows` rows and the closure on them: the epoch's last, smaller minibatch."""
    xb, yb = x_buffer[:rows], y_buffer[:rows]
    return xb, yb, partial(model.loss_and_grad_checked, xb, yb)


def _batch_count(n: int, batch_size: int, batchnorm: bool) -> int:
    """Minibatches per epoch: the last takes the remainder, unless batch normalization would get one row."""
    batches = math.ceil(n / batch_size)
    return batches - 1 if batchnorm and batches > 1 and n % batch_size == 1 else batches


def _divergence(loss: float, first: float, epoch: int, batch: int) -> str:
    where = f"at epoch {epoch}, batch {batch}"
    if not math.isfinite(loss):
        return f"loss {loss} {where}"
    if first < LOSS_FLOOR:
        floor = f"{EXPLOSION_FACTOR:g} x the floor {LOSS_FLOOR:g}"
        return f"loss {loss:.4g} {where} exceeds {floor} (first loss {first:.4g})"
    return f"loss {loss:.4g} {where} exceeds {EXPLOSION_FACTOR:g} x the first batch's loss ({first:.4g})"


def _check(model: Trainable, data: Dataset, epochs: int, batch_size: int, rng: np.random.Generator) -> None:
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise HyperparameterError(f"{name} must be an integer >= 1, got {value!r}")
    if not isinstance(rng, np.random.Generator):
        raise HyperparameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if model.layer_sizes[0] != data.n_features:
        raise ModelError(
            f"the model takes {model.layer_sizes[0]} inputs but {data.name} has {data.n_features} features"
        )
