"""Would updating each layer right after its gradient pay? Prototypes against the real step, large net.

The optimizer's step today runs the whole backward pass, then the momentum update over the flat arrays
(`tuner.optim.momentum`, in ~256 KiB chunks): by then the first gradients written are out of cache, and
the update is bound by memory bandwidth (~0.6 ms of a ~6 ms minibatch on 669,706 parameters). The arms
(prototypes in this file, not the product's code) apply the same update, v ← α·v − ε·g, θ ← θ + v:

- update per layer (prototype): each dense layer's slice of the flat arrays is updated, in chunks of the
  optimizers' size, as soon as that layer's backward has written its gradient.
- GEMM-fused update (SciPy sgemm / ctypes sgemm): the gradient dW = xᵀδ is never written. Once δ is
  known, the layer first computes dL/dx = δ Wᵀ (with W before its update), then the weight velocity inside
  the product through BLAS's beta, v_W ← (−ε)·xᵀδ + α·v_W (sgemm, alpha = −ε, beta = α, C = v_W's slice of
  the flat velocity, fan_in x fan_out row-major), the bias velocity the same way, v_b ← (−ε)·δᵀ1 + α·v_b
  (sgemv), then θ_layer += v_layer over the layer's whole slice (one call; 256 KiB chunks measured the
  same within the noise). NumPy's `np.dot` has no beta, so two routes to sgemm: SciPy's
  `scipy.linalg.blas` (Fortran, column-major: C = xᵀδ row-major is Cᵀ = δᵀx column-major, passed as `.T`
  views so f2py copies nothing; SciPy loads its own OpenBLAS beside NumPy's), and ctypes into NumPy's own
  OpenBLAS (`numpy.libs/libscipy_openblas64_*.so`, the CBLAS entries `scipy_cblas_sgemm64_` and
  `scipy_cblas_sgemv64_`: 64-bit integers, row-major). Either arm is skipped when its library is missing.
- GEMM lower bound: `bench/train_speed.py`'s `gemm_epoch` (imported, not copied) on the same shape: the
  forward and backward matrix products alone, into preallocated outputs. Each arm's median is also given
  as a ratio to the bound's median. (This file's arms are bare minibatch loops: no validation pass or
  `train()` bookkeeping, which `train_speed.py`'s tuner row includes.)

Before timing, a correctness check: from the same parameters (velocity 0), every arm runs the same
`CHECK_STEPS` minibatches, and its parameters are compared with the plain step's (max |Δθ|) and with the
plain step in float64 from the same starting point, to see the float32 rounding itself (the plain arm's
own distance from float64 is the yardstick). The SciPy arm is also checked to write the velocity in place.

All arms run the same network (784-512-512-10, ReLU, batch 128, 160 minibatches of random float32 data =
one epoch) from the same model, interleaved in `--rounds` rounds, the order rotated by one each round; the
table gives the median seconds per epoch and every round. Run with one BLAS thread (with more, SciPy's
OpenBLAS pool and NumPy's fight over the cores):

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python bench/fused_update.py --rounds 9

What the prototypes leave out, and the product would need: clipping by the global gradient norm (the
norm needs every layer's gradient before any update), Nesterov's look-ahead (the closure is evaluated at
θ + α·v), and the optimizer/closure protocol itself (`Optimizer.step(params, grad, closure)`); the
GEMM-fused arms also leave `grad` unwritten for the dense weights and biases.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import blas_summary, load_average
from train_speed import CASES, gemm_epoch, synthetic

from tuner.nn.layers import Dense
from tuner.nn.mlp import MLP
from tuner.optim import make

SIZES, BATCH, SAMPLES = (784, 512, 512, 10), 128, 20480
ALPHA, RATE = 0.9, 1e-3
CHUNK = 65536  # float32 elements: 256 KiB, the optimizers' chunk
CHECK_STEPS = 20  # minibatches of the correctness check
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS enums

Step = Callable[[np.ndarray, np.ndarray], float]


def numpy_openblas() -> ctypes.CDLL | None:
    """NumPy's bundled OpenBLAS (64-bit integer CBLAS, symbols prefixed `scipy_`), or None if not found."""
    found = sorted((Path(np.__file__).parent.parent / "numpy.libs").glob("libscipy_openblas64_*.so"))
    if not found:
        return None
    lib = ctypes.CDLL(str(found[0]))
    i64, ptr, f32, enum = ctypes.c_int64, ctypes.c_void_p, ctypes.c_float, ctypes.c_int
    # order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    lib.scipy_cblas_sgemm64_.argtypes = [enum, enum, enum, i64, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
    lib.scipy_cblas_sgemm64_.restype = None
    # order, trans, M, N, alpha, A, lda, X, incX, beta, Y, incY
    lib.scipy_cblas_sgemv64_.argtypes = [enum, enum, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
    lib.scipy_cblas_sgemv64_.restype = None
    return lib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    model = MLP(SIZES, "relu", rng=0)
    x = rng.standard_normal((SAMPLES, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], SAMPLES)
    optimizer = make("momentum", eps0=RATE, eps_tau=RATE, alpha=ALPHA)  # a constant rate in every arm
    optimizer.start(model.params, 10**9)
    velocity = optimizer.state["v"]
    slices, offset = [], 0
    for layer in model.layers:
        n = getattr(layer, "n_params", 0)
        slices.append(slice(offset, offset + n))
        offset += n
    alpha, rate = np.float32(ALPHA), np.float32(RATE)
    scratch = np.empty(CHUNK, dtype=np.float32)

    def fused(xb: np.ndarray, yb: np.ndarray) -> float:
        xc, buffers = model._converted(xb)
        loss = model._loss(model._forward(xc, buffers, True), yb, buffers)
        delta = buffers.delta
        for (layer, work, x_in), part in zip(buffers.backward_order, slices[::-1], strict=True):
            delta = layer.backward(model._x if x_in is None else x_in, delta, work)
            if isinstance(layer, Dense):
                for i in range(part.start, part.stop, CHUNK):
                    j = min(i + CHUNK, part.stop)
                    step, v = scratch[: j - i], velocity[i:j]
                    np.multiply(model.grad[i:j], rate, out=step)
                    v *= alpha
                    v -= step
                    model.params[i:j] += v
            if delta is None:
                break
        return loss

    def plain(xb: np.ndarray, yb: np.ndarray) -> float:
        return optimizer.step(model.params, model.grad, lambda: model.loss_and_grad_checked(xb, yb))

    # The GEMM-fused arms: per dense layer, its views of the velocity (v_W, v_b) and its slices of θ and v.
    velocities = {}
    for layer, part in zip(model.layers, slices, strict=True):
        if isinstance(layer, Dense):
            v = velocity[part]
            size = layer.fan_in * layer.fan_out
            velocities[id(layer)] = (v[:size].reshape(layer.fan_in, layer.fan_out), v[size:], model.params[part], v)

    def gemm_fused(weight_velocity: Callable, bias_velocity: Callable) -> Step:
        """The step whose dense layers update their velocity inside the dW product (`weight_velocity`:
        v_W ← −ε·xᵀδ + α·v_W) and the db product (`bias_velocity`: v_b ← −ε·δᵀ1 + α·v_b)."""

        def step(xb: np.ndarray, yb: np.ndarray) -> float:
            xc, buffers = model._converted(xb)
            loss = model._loss(model._forward(xc, buffers, True), yb, buffers)
            delta = buffers.delta
            for layer, work, x_in in buffers.backward_order:
                x_layer = xc if x_in is None else x_in
                if not isinstance(layer, Dense):
                    delta = layer.backward(x_layer, delta, work)
                    continue
                if work.grad_in is not None:  # dL/dx with W before its update
                    np.dot(delta, layer.weight.T, out=work.grad_in)
                v_w, v_b, theta, v = velocities[id(layer)]
                weight_velocity(x_layer, delta, v_w)
                bias_velocity(work.ones, delta, v_b)
                theta += v
                delta = work.grad_in
                if delta is None:
                    break
            return loss

        return step

    arms: dict[str, Step] = {"step after backward (today)": plain, "update per layer (prototype)": fused}
    minus_rate = float(-rate)
    try:
        from scipy.linalg import blas as scipy_blas
    except ImportError:
        scipy_blas = None
    if scipy_blas is not None:
        sgemm, sgemv = scipy_blas.sgemm, scipy_blas.sgemv

        def scipy_weight(x_layer: np.ndarray, delta: np.ndarray, v_w: np.ndarray) -> None:
            # column-major v_wᵀ (fan_out x fan_in) = δᵀ x: δ.T and x.T are Fortran-ordered views, v_w.T too
            sgemm(minus_rate, delta.T, x_layer.T, beta=ALPHA, c=v_w.T, overwrite_c=True, trans_b=True)

        def scipy_bias(ones: np.ndarray, delta: np.ndarray, v_b: np.ndarray) -> None:
            sgemv(minus_rate, delta.T, ones, beta=ALPHA, y=v_b, overwrite_y=True)

        arms["GEMM-fused update, SciPy sgemm"] = gemm_fused(scipy_weight, scipy_bias)
    lib = numpy_openblas()
    if lib is not None:
        gemm, gemv = lib.scipy_cblas_sgemm64_, lib.scipy_cblas_sgemv64_
        addresses: dict[int, tuple[np.ndarray, int]] = {}

        def address(a: np.ndarray) -> int:
            """`a.ctypes.data`, cached: that costs ~2.5 µs a call, and every array here but the network's
            input is a workspace or velocity buffer that lives as long as the model (the cache keeps the
            array itself, so its id cannot be reused while it is in the cache)."""
            found = addresses.get(id(a))
            if found is None or found[0] is not a:
                if len(addresses) > 256:
                    addresses.clear()
                assert a.flags.c_contiguous, "the CBLAS calls take the arrays' shapes as their leading dimensions"
                found = addresses[id(a)] = (a, a.ctypes.data)
            return found[1]

        def ctypes_weight(x_layer: np.ndarray, delta: np.ndarray, v_w: np.ndarray) -> None:
            # row-major v_w (fan_in x fan_out) = xᵀ δ, x: batch x fan_in, δ: batch x fan_out
            m, n = v_w.shape
            gemm(ROW_MAJOR, TRANS, NO_TRANS, m, n, x_layer.shape[0], minus_rate, address(x_layer), m,
                 address(delta), n, ALPHA, address(v_w), n)

        def ctypes_bias(ones: np.ndarray, delta: np.ndarray, v_b: np.ndarray) -> None:
            rows, n = delta.shape
            gemv(ROW_MAJOR, TRANS, rows, n, minus_rate, address(delta), n, address(ones), 1, ALPHA, address(v_b), 1)

        arms["GEMM-fused update, ctypes sgemm"] = gemm_fused(ctypes_weight, ctypes_bias)

    def epoch(fn: Step) -> float:
        order = rng.permutation(SAMPLES)
        xb, yb = np.empty((BATCH, SIZES[0]), np.float32), np.empty(BATCH, y.dtype)
        started = time.perf_counter()
        for k in range(SAMPLES // BATCH):
            rows = order[k * BATCH : (k + 1) * BATCH]
            x.take(rows, 0, xb, "clip")
            y.take(rows, 0, yb, "clip")
            fn(xb, yb)
        return time.perf_counter() - started

    print(f"{'-'.join(map(str, SIZES))}, batch {BATCH}, {SAMPLES} samples, float32, momentum; {blas_summary()}")
    print(f"load average before: {load_average()}")
    if scipy_blas is not None:
        check_in_place(scipy_blas)
    check(model, arms, x, y, velocity)

    case = CASES["large"]
    assert (case.sizes, case.batch, case.samples) == (SIZES, BATCH, SAMPLES), case
    bound_epoch = gemm_epoch(case, synthetic(case))
    bound = "GEMM lower bound (train_speed.gemm_epoch)"

    def timed_bound(_: Step) -> float:
        started = time.perf_counter()
        bound_epoch()
        return time.perf_counter() - started

    runs = [(name, epoch, fn) for name, fn in arms.items()] + [(bound, timed_bound, plain)]
    for _, run, fn in runs:  # warm-up
        run(fn)
    times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    for r in range(args.rounds):
        shift = r % len(runs)
        for name, run, fn in runs[shift:] + runs[:shift]:
            times[name].append(run(fn))
    base = statistics.median(times["step after backward (today)"])
    floor = statistics.median(times[bound])
    print("| arm | s/epoch (median) | / today | / GEMM bound | every round |\n| --- | ---: | ---: | ---: | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        each = " ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {median:.4f} | {median / base:.3f} | {median / floor:.3f} | {each} |")
    per_round = {name: [v / b for v, b in zip(values, times[bound], strict=True)] for name, values in times.items()}
    print("per-round ratio to the bound, median (min-max): " + "; ".join(
        f"{name}: {statistics.median(r):.3f} ({min(r):.3f}-{max(r):.3f})" for name, r in per_round.items()
        if name != bound))
    print(f"load average after: {load_average()}")


def check_in_place(scipy_blas) -> None:
    """SciPy's sgemm/sgemv, called as the SciPy arm calls them, must write into the given velocity views."""
    rng = np.random.default_rng(3)
    x, delta = rng.standard_normal((BATCH, 64), np.float32), rng.standard_normal((BATCH, 32), np.float32)
    flat = rng.standard_normal(64 * 32 + 32, np.float32)
    v_w, v_b = flat[: 64 * 32].reshape(64, 32), flat[64 * 32 :]
    expected_w = ALPHA * v_w.astype(np.float64) - RATE * (x.T.astype(np.float64) @ delta)
    expected_b = ALPHA * v_b.astype(np.float64) - RATE * delta.sum(0, dtype=np.float64)
    out_w = scipy_blas.sgemm(-RATE, delta.T, x.T, beta=ALPHA, c=v_w.T, overwrite_c=True, trans_b=True)
    out_b = scipy_blas.sgemv(-RATE, delta.T, np.ones(BATCH, np.float32), beta=ALPHA, y=v_b, overwrite_y=True)
    assert np.shares_memory(out_w, flat) and np.shares_memory(out_b, flat), "SciPy copied the velocity"
    err = max(np.abs(v_w - expected_w).max(), np.abs(v_b - expected_b).max())
    print(f"SciPy sgemm/sgemv write in place into the flat velocity (shares memory, max error vs float64 {err:.1e})")


def check(model: MLP, arms: dict[str, Step], x: np.ndarray, y: np.ndarray, velocity: np.ndarray) -> None:
    """Every arm from the same θ (v = 0) over the same `CHECK_STEPS` minibatches: θ against the plain arm's
    and against the plain step in float64; leaves the model and velocity where they started."""
    start = model.params.copy()
    batches = [(x[k * BATCH : (k + 1) * BATCH], y[k * BATCH : (k + 1) * BATCH]) for k in range(CHECK_STEPS)]
    model64 = MLP(SIZES, "relu", rng=0, dtype=np.float64)
    model64.params[...] = start
    optimizer64 = make("momentum", eps0=RATE, eps_tau=RATE, alpha=ALPHA)
    optimizer64.start(model64.params, 10**9)
    for xb, yb in batches:
        optimizer64.step(model64.params, model64.grad, lambda xb=xb, yb=yb: model64.loss_and_grad_checked(xb, yb))
    reference = model64.params
    results = {}
    for name, fn in arms.items():
        model.params[...] = start
        velocity[...] = 0
        for xb, yb in batches:
            fn(np.ascontiguousarray(xb), yb)
        results[name] = model.params.copy()
    model.params[...] = start
    velocity[...] = 0
    plain = results["step after backward (today)"]
    moved = np.abs(reference - start).max()
    print(f"correctness, {CHECK_STEPS} minibatches from the same θ (max |θ| {np.abs(start).max():.3f}, "
          f"max |θ_N - θ_0| {moved:.2e} in float64):")
    for name, params in results.items():
        print(f"  {name}: max |θ - θ_today| {np.abs(params - plain).max():.2e}, max |θ - θ_float64| "
              f"{np.abs(params - reference).max():.2e}, bitwise equal to today {np.array_equal(params, plain)}")


if __name__ == "__main__":
    main()
