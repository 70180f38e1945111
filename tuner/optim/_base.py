"""What every optimizer shares: hyperparameter checks (against `DOMAINS`), the schedule, the step protocol.

An optimizer updates one flat parameter array in place. `step` asks a closure for the loss and the
gradient (written into `grad`) at the point of the optimizer's choosing, optionally clips the gradient by
its global norm, and applies the update rule with the scheduled rate ε_k of eq. 8.14.

The hot path is called once per minibatch on up to ~10^6 float32 parameters, so every update rule works
in place with `out=` on state and scratch arrays allocated once in `start`, and casts its scalars to the
parameters' dtype: a float64 scalar would make NumPy compute in float64 and convert back.

Each update is fused over chunks (`Optimizer._chunks`): its 2 to 12 element-wise operations run on one
chunk of every array before moving to the next, so a chunk is fetched from memory once and the later
operations find it in L2, where whole-array passes stream every array through memory once per operation.
Each operation is the one the whole-array rule would apply, in the same order, so chunking changes no bit
of the result. On 669,706 float32 parameters (784-512-512-10) this cuts an update by 29-39% (the Nesterov
variants 11-27%; `bench/optim_step.py`, bench/RESULTS.md); arrays that fit in L2 gain nothing and stay
whole. BLAS level-1 calls (SciPy's saxpy/sscal) were tried and dropped: barely faster than this with one
thread, and with two, SciPy's own OpenBLAS thread pool fought NumPy's for the cores and made training
epochs several times slower.

Where the arrays are chunked and Numba is installed (`pip install tuner[fast]`), each rule runs instead as
one compiled loop that reads and writes every element once (`tuner.optim._fused`): the same operations in
the same order, so the same bits again, in fewer passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import ClassVar

import numpy as np

from tuner.errors import HyperparameterError
from tuner.optim._fused import kernels as fused_kernels
from tuner.optim.clipping import clip_by_global_norm
from tuner.optim.domains import DOMAINS, check_count
from tuner.optim.schedule import decayed, linear_decay

Closure = Callable[[], float]

# Every optimizer takes these: the schedule of eq. 8.14 and optional clipping by global norm.
COMMON = ("eps0", "eps_tau", "tau", "clip_norm")

# Bytes of each array in one chunk of a fused update, about: an array is cut into round(nbytes/CHUNK_BYTES)
# equal chunks, so 669,706 float32 parameters make 10 chunks of ~262 KB. Adam's five streams (θ, g, s, r,
# scratch) then take ~1.3 MB, inside the 2 MiB L2 of this machine's cores, while a chunk's dozen NumPy
# calls (~1 µs each) stay small against its ~90 µs of work. Swept on 669,706 float32 parameters, µs per
# step, momentum / Adam: 128 KiB 441 / 1102, 256 KiB 406 / 1047, 512 KiB 423 / 1008, 1 MiB 529 / 1236,
# whole arrays 686 / 1862. Arrays of up to 1.5 x CHUNK_BYTES stay whole: they fit in L2 as they are, and
# a split only adds calls (78,858 parameters cut at 256 KiB into two chunks: 14-20% slower per step).
CHUNK_BYTES = 256 * 1024


class Optimizer:
    """Base class: subclasses set `name`, `hyperparameters`, and implement `_update` (and `_allocate`).

    Lifecycle: construct with the hyperparameters, `start(params, total_steps)` before a run (allocates
    state shaped like `params`, sets k = 0 and τ = total_steps unless τ was given), then one `step` per
    minibatch. `state` holds the visible per-parameter state (e.g. ``{"v": velocity}``), `k` counts the
    iterations done, `rate(k)` is the scheduled global rate ε_k.
    """

    name: ClassVar[str]
    hyperparameters: ClassVar[tuple[str, ...]] = ()  # the optimizer's own, besides COMMON

    def __init__(
        self,
        eps0: float,
        *,
        eps_tau: float | None = None,
        tau: int | None = None,
        clip_norm: float | None = None,
        **own: float,
    ) -> None:
        self.eps0 = DOMAINS["eps0"].check("eps0", eps0)
        self.eps_tau = 0.01 * self.eps0 if eps_tau is None else DOMAINS["eps_tau"].check("eps_tau", eps_tau)
        self._tau_given = None if tau is None else check_count("tau", tau)
        self.tau = self._tau_given
        self.clip_norm = None if clip_norm is None else DOMAINS["clip_norm"].check("clip_norm", clip_norm)
        for key, value in own.items():
            setattr(self, key, DOMAINS[key].check(key, value))
        self.state: dict[str, np.ndarray] = {}
        self.k = 0
        self._dtype: np.dtype | None = None
        self._shape: tuple[int, ...] = ()
        self._parts: list[slice] = []
        self._scratch: list[np.ndarray] = []
        self._fused: SimpleNamespace | None = None

    @property
    def hparams(self) -> dict[str, float | int | None]:
        """Every hyperparameter with its value (τ is None until `start` when it follows the run)."""
        names = ("eps0", "eps_tau", *self.hyperparameters, "tau", "clip_norm")
        return {key: getattr(self, key) for key in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.hparams.items())
        return f"{type(self).__name__}({args})"

    def rate(self, k: int) -> float:
        """The global learning rate ε_k at iteration k (eq. 8.14)."""
        if self.tau is None:
            raise RuntimeError(f"{self.name}: call start(params, total_steps) before asking for a rate")
        return linear_decay(k, self.eps0, self.eps_tau, self.tau)

    def start(self, params: np.ndarray, total_steps: int) -> None:
        """Prepare a run over `params` of `total_steps` iterations: fresh state, k = 0, τ if unset.

        `params` is one flat (1-D) floating-point array, as `MLP.params` is; `step` must be given it (or
        an array of the same shape and dtype) and a gradient of the same shape and dtype.
        """
        if not isinstance(params, np.ndarray) or params.dtype.kind != "f" or params.ndim != 1:
            got = type(params).__name__
            if isinstance(params, np.ndarray):
                got = f"{params.dtype} of shape {params.shape}"
            raise HyperparameterError(f"params must be a 1-D floating-point NumPy array, got {got}")
        total_steps = check_count("total_steps", total_steps)
        self.tau = self._tau_given if self._tau_given is not None else total_steps
        self.k = 0
        self._dtype = params.dtype
        self._shape = params.shape
        self.state = {}
        count = max(1, round(params.nbytes / CHUNK_BYTES))  # equal chunks, none much past CHUNK_BYTES
        size = max(1, -(-params.size // count))
        self._parts = [slice(i, min(i + size, params.size)) for i in range(0, params.size, size)]
        scratch = np.empty(min(size, params.size), dtype=params.dtype)
        self._scratch = [scratch[: part.stop - part.start] for part in self._parts]
        # The compiled loops where chunking pays (arrays past L2); a small network keeps NumPy's whole-array
        # rule, which is as fast there and needs no compiler, and so do float16 (no type of Numba's) and
        # read-only parameters (whose NumPy rule raises NumPy's own error).
        loops = len(self._parts) > 1 and params.dtype in (np.float32, np.float64) and params.flags.writeable
        self._fused = fused_kernels() if loops else None
        self._allocate(params)

    def step(self, params: np.ndarray, grad: np.ndarray, closure: Closure) -> float:
        """One iteration: loss and gradient from `closure`, optional clipping, the update. Returns the loss.

        `closure()` must compute the loss at the current contents of `params` and write the gradient
        into `grad`; both arrays are updated in place, and both have the shape and dtype given to `start`.
        """
        if self._dtype is None:
            raise RuntimeError(f"{self.name}: call start(params, total_steps) before step")
        if params.shape != self._shape or grad.shape != self._shape:
            raise HyperparameterError(
                f"{self.name}: params {params.shape} and grad {grad.shape} must have the shape given to start,"
                f" {self._shape}"
            )
        if params.dtype != self._dtype or grad.dtype != self._dtype:
            raise HyperparameterError(
                f"{self.name}: params ({params.dtype}) and grad ({grad.dtype}) must have the dtype given to start,"
                f" {self._dtype}"
            )
        lr = self._dtype.type(decayed(self.k, self.eps0, self.eps_tau, self.tau))  # tau checked by start
        loss = self._evaluate(params, closure)
        if self.clip_norm is not None:
            clip_by_global_norm(grad, self.clip_norm)
        self._update(params, grad, lr)
        self.k += 1
        return loss

    def _scalar(self, value: float) -> np.floating:
        """A Python float as a scalar of the parameters' dtype, so in-place ops stay in that dtype."""
        assert self._dtype is not None
        return self._dtype.type(value)

    def _chunks(self, *arrays: np.ndarray) -> Iterable[tuple[np.ndarray, ...]]:
        """For each chunk: views of `arrays` on it, then the scratch buffer of its length."""
        if len(self._parts) == 1:  # a small network: the arrays themselves, no views to make (~1 µs)
            return ((*arrays, self._scratch[0]),)
        return ((*[a[part] for a in arrays], scratch) for part, scratch in zip(self._parts, self._scratch))

    def _evaluate(self, params: np.ndarray, closure: Closure) -> float:
        """Loss and gradient at the current parameters; the Nesterov variants override this."""
        return closure()

    def _allocate(self, params: np.ndarray) -> None:
        """Allocate the state and constants of a run over `params`; SGD has none."""

    def _update(self, params: np.ndarray, grad: np.ndarray, lr: np.floating) -> None:
        raise NotImplementedError


class LookAhead(Optimizer):
    """What the Nesterov variants share: the gradient is taken at the interim point θ̃ = θ + α·v.

    `params` is moved to θ̃ before the closure runs, after θ is copied aside. θ is then never recomputed as
    θ̃ − α·v (which would not round-trip in floating point): the update writes θ + v from the copy in the
    same pass that applies it, and if the closure raises, θ is restored from the copy before the error
    propagates. α·v is kept in `_alpha_v` because the velocity update needs it again. (Recomputing it
    there as `v *= α` instead, which gives the same bits, saves writing and reading back that array:
    11% faster on 669,706 parameters, but 20-25% slower up to ~130K, where the arrays sit in L2 anyway
    and the extra operation costs more than the traffic it saves; so it is kept.)
    """

    alpha: float

    def _allocate_look_ahead(self, params: np.ndarray) -> None:
        self.state["v"] = np.zeros_like(params)
        self._theta = np.empty_like(params)
        self._alpha_v = np.empty(0 if self._fused else params.shape, dtype=params.dtype)  # the loops recompute α·v
        self._alpha = self._scalar(self.alpha)

    def _evaluate(self, params: np.ndarray, closure: Closure) -> float:
        if self._fused is not None:
            self._fused.look_ahead(params, self.state["v"], self._theta, self._alpha)
        else:
            for theta, v, kept, alpha_v, _ in self._chunks(params, self.state["v"], self._theta, self._alpha_v):
                np.copyto(kept, theta)
                np.multiply(v, self._alpha, out=alpha_v)
                theta += alpha_v
        try:
            return closure()
        except BaseException:
            np.copyto(params, self._theta)
            raise
