"""Losses on a minibatch of m examples, each returning the loss and its gradient with respect to the outputs.

Softmax cross-entropy on integer labels y_i ∈ {0 .. C−1}, logits z (m x C), mean over the batch:

    L = (1/m) Σ_i [ log Σ_j exp(z_ij) − z_{i,y_i} ],        dL/dz = (softmax(z) − onehot(y)) / m

computed with the log-sum-exp shift (z − max_j z_ij), so any finite logits give a finite loss.

Mean squared error over all m·n elements, the convention of `torch.nn.MSELoss()` (reduction "mean"):

    L = mean((pred − y)²),                                   dL/dpred = 2·(pred − y) / (m·n)

(no ½ factor, and the mean is over every element, not only over the batch).

`grad_out`, when given, is a caller-owned array of the outputs' shape that receives the gradient, so the
training loop allocates nothing large per minibatch. The loss is accumulated in float64.

Speed: on the small nets the loss costs calls, not arithmetic (m x C is 64 x 10 for the digits net), so
the cross-entropy kernel makes as few NumPy calls as it can, each into arrays kept per batch size
(`SoftmaxScratch`): the row maxima are reduced into a preallocated column, the row sums are one BLAS
product with a vector of ones (0.6 µs against 2.3 µs for `sum(axis=1)` at 64 x 10), each row's loss
log Σ_j − z_{i,y_i} is formed in the model's dtype and only their sum is taken in float64 (one reduction
instead of two), and the softmax is normalised by one division by m·Σ_j (two calls fewer than a
reciprocal and a product). float32, one BLAS thread, best of 7: 18 -> 15 µs a call at 64 x 10, 31 -> 25 µs
at 128 x 10. Shifting by the global max instead of each row's (one cheap reduction, with a fall-back when
a row's sum underflows) was tried and dropped: ~2 µs more saved, for a loss that loses precision as the
rows' maxima spread apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuner.errors import ModelError

LOSSES = ("cross_entropy", "mse")


def check_labels(labels: np.ndarray, batch: int, n_classes: int) -> np.ndarray:
    """`labels` as a 1-D integer array of `batch` class indices in [0, n_classes), else ModelError."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind != "f" or labels.size == 0 or not np.all(labels == np.round(labels)):
            raise ModelError(f"labels must be integer class indices, got dtype {labels.dtype}")
        labels = labels.astype(np.intp)
    if labels.shape != (batch,):
        raise ModelError(f"expected {batch} labels as a 1-D array, got shape {labels.shape}")
    if batch:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ModelError(f"labels must be in [0, {n_classes}) for {n_classes} classes, got {bad}")
    return labels


def softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray, grad_out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of `logits` (m x C) against integer `labels` (m,), and dL/dlogits.

    See the module docstring for the formula. Labels are checked (ModelError when out of range).
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ModelError(f"logits must be a non-empty 2-D array (batch x classes), got shape {logits.shape}")
    labels = check_labels(labels, logits.shape[0], logits.shape[1])
    if grad_out is None:
        grad_out = np.empty_like(logits, dtype=logits.dtype if logits.dtype.kind == "f" else np.float64)
    return _softmax_cross_entropy(logits, labels, grad_out)


@dataclass(frozen=True)
class SoftmaxScratch:
    """What the cross-entropy kernel needs besides its output, for m rows and C classes: `rows`
    (0 .. m−1, the row index of the labels' picks), `column` (m x 1: the row maxima, then m times the row
    sums), `sums` (the same memory as m entries, for the products that need a 1-D output), `losses` (m:
    each row's loss) and `ones` (C)."""

    rows: np.ndarray
    column: np.ndarray
    sums: np.ndarray
    losses: np.ndarray
    ones: np.ndarray


def softmax_scratch(batch: int, n_classes: int, dtype: np.dtype) -> SoftmaxScratch:
    column = np.empty((batch, 1), dtype=dtype)
    return SoftmaxScratch(np.arange(batch), column, column.reshape(batch), np.empty(batch, dtype=dtype),
                          np.ones(n_classes, dtype=dtype))


def _softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray, grad: np.ndarray, scratch: SoftmaxScratch | None = None
) -> tuple[float, np.ndarray]:
    """The unchecked kernel: `labels` already valid, `grad` of the logits' shape and a float dtype.

    `scratch` (of `grad`'s dtype and the logits' shape) is passed in by callers that keep one per batch
    size; see the module docstring for the speed notes.
    """
    m = logits.shape[0]
    if scratch is None:
        scratch = softmax_scratch(m, logits.shape[1], grad.dtype)
    rows, column, sums, losses = scratch.rows, scratch.column, scratch.sums, scratch.losses
    np.maximum.reduce(logits, axis=1, out=sums)
    np.subtract(logits, column, out=grad)  # shifted: every row's max is 0
    picked = grad[rows, labels]
    np.exp(grad, out=grad)
    np.dot(grad, scratch.ones, out=sums)  # in [1, C]: the max term is exp(0) = 1
    np.log(sums, out=losses)
    losses -= picked
    loss = float(losses.sum(dtype=np.float64)) / m
    np.multiply(sums, m, out=sums)
    np.divide(grad, column, out=grad)  # softmax / m
    grad[rows, labels] -= grad.dtype.type(1.0 / m)
    return loss, grad


def mean_squared_error(
    pred: np.ndarray, target: np.ndarray, grad_out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """mean((pred − target)²) over all elements (as `torch.nn.MSELoss`), and dL/dpred = 2·(pred − target)/N."""
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape or pred.size == 0:
        raise ModelError(f"targets must have the predictions' shape {pred.shape}, got {target.shape}")
    if grad_out is None:
        grad_out = np.empty_like(pred, dtype=pred.dtype if pred.dtype.kind == "f" else np.float64)
    return _mean_squared_error(pred, target, grad_out)


def _mean_squared_error(pred: np.ndarray, target: np.ndarray, grad: np.ndarray) -> tuple[float, np.ndarray]:
    """The unchecked kernel: shapes already equal, `grad` of that shape and a float dtype."""
    np.subtract(pred, target, out=grad)
    loss = float(np.mean(np.square(grad, dtype=np.float64)))
    np.multiply(grad, grad.dtype.type(2.0 / grad.size), out=grad)
    return loss, grad
