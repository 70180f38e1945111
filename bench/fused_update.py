"""Would updating each layer right after its gradient pay? A prototype against the real step, large net.

The optimizer's step today runs the whole backward pass, then the momentum update over the flat arrays
(`tuner.optim.momentum`, in ~256 KiB chunks): by then the first gradients written are out of cache, and
the update is bound by memory bandwidth (~0.6 ms of a ~6 ms minibatch on 669,706 parameters). The
prototype (`fused` below, not the product's code) applies the same update, v ← α·v − ε·g, θ ← θ + v, to
each dense layer's slice of the flat arrays as soon as that layer's backward has written its gradient,
in chunks of the same size. Both arms run the same network (784-512-512-10, ReLU, batch 128, 160
minibatches of random float32 data = one epoch) from the same parameters, alternating in `--rounds`
rounds, the order swapped every round; the table gives the median seconds per epoch and every round.

What the prototype leaves out, and the product would need: clipping by the global gradient norm (the
norm needs every layer's gradient before any update), Nesterov's look-ahead (the closure is evaluated at
θ + α·v), and the optimizer/closure protocol itself (`Optimizer.step(params, grad, closure)`).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python bench/fused_update.py --rounds 9
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from machine import blas_summary, load_average

from tuner.nn.layers import Dense
from tuner.nn.mlp import MLP
from tuner.optim import make

SIZES, BATCH, SAMPLES = (784, 512, 512, 10), 128, 20480
ALPHA, RATE = 0.9, 1e-3
CHUNK = 65536  # float32 elements: 256 KiB, the optimizers' chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    model = MLP(SIZES, "relu", rng=0)
    x = rng.standard_normal((SAMPLES, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], SAMPLES)
    optimizer = make("momentum", eps0=RATE, eps_tau=RATE, alpha=ALPHA)  # a constant rate in both arms
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

    def epoch(fn) -> float:
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
    epoch(plain), epoch(fused)  # warm-up
    times: dict[str, list[float]] = {"step after backward (today)": [], "update per layer (prototype)": []}
    arms = list(zip(times, (plain, fused), strict=True))
    for r in range(args.rounds):
        for name, fn in arms if r % 2 == 0 else arms[::-1]:
            times[name].append(epoch(fn))
    base = statistics.median(times["step after backward (today)"])
    print("| arm | s/epoch (median) | / today | every round |\n| --- | ---: | ---: | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.4f} | {median / base:.3f} | {' '.join(f'{v:.3f}' for v in values)} |")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
