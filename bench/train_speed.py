"""Seconds per training epoch: tuner against the matrix-multiply lower bound, PyTorch CPU and scikit-learn.

    python bench/train_speed.py [--case large|small|digits|all] [--repeats 5] [--skip-digits] [--baseline REV]
                                [--numpy-updates] [--update-floor] [--optimizer NAME]

Cases (float32, softmax cross-entropy on random labels, SGD with momentum 0.9, rate 0.01):

    large   784-512-512-10, batch 128, 20,480 samples (160 minibatches)
    small   40-100-100-10,  batch 100,  4,000 samples (40 minibatches)
    digits  64-128-10,      batch 64,   1,437 samples (23 minibatches, the last one of 29): the quick start's
            network and training split, on random data of its shape

Per case, each implementation in a worker process of its own (see `run_case`), one warm-up round and
then `--repeats` rounds that time one epoch of each implementation in turn; the table gives the median:

- tuner: the product's real loop, `tuner.nn.train.train(model, tuner.optim.make("momentum", ...), data,
  epochs=1, ...)`: shuffling, minibatch gather, forward, loss, backward, the momentum update, and the
  end-of-epoch validation pass (on a deliberately tiny validation set of one batch).
- gemm bound: exactly the matrix products of the same forward and backward passes (forward: one per layer;
  backward: dW for every layer and dX for every layer but the first), into preallocated outputs, nothing
  else: no bias, no non-linearity, no loss, no update, no shuffling.
- torch: the same net as `nn.Sequential`, `torch.optim.SGD(momentum=0.9)`, the same batch size, shuffled
  with `torch.randperm`, `torch.set_num_threads` equal to NumPy's BLAS thread count.
- sklearn: `MLPClassifier(solver="sgd", momentum=0.9, nesterovs_momentum=False, alpha=0)`, one epoch per
  `partial_fit` on float32 input.

- tuner @REV (with `--baseline REV`): the same loop with the package as of git revision REV (`git archive`),
  to measure a change of the training core against its parent under the same load.
- tuner, NumPy updates (with `--numpy-updates`): the same loop with `TUNER_FUSED=0`, the optimizer's
  update as NumPy operations instead of Numba's compiled loops (`tuner.optim._fused`, the `fast` extra).
  The tuner rows say which of the two they ran.
- tuner, no update (with `--update-floor`): the same loop with the optimizer's update rule skipped (the
  parameters never move; the schedule, clipping and the Nesterov look-ahead still run): what the loop
  costs without the update, so the update's own share of an epoch is the difference to the tuner row.

`--optimizer NAME` runs tuner's loop with another of its optimizers (default momentum; rate 0.001 for the
others, their other hyperparameters at their defaults); the peers then sit out (their rows are SGD with
momentum), and the table compares tuner with the bound and with itself.

Every row says which BLAS its worker process runs on: threadpoolctl's `threadpool_info()` (library,
version, kernel architecture, thread count) for the libraries NumPy and scikit-learn load, and PyTorch's
own count (`torch.get_num_threads()`) for the MKL linked into it, which threadpoolctl does not see.

Then (unless --skip-digits) the quick-start run: digits, 64-128-10, batch 64, 30 epochs, momentum.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from machine import blas_pools, blas_summary, blas_threads, load_average
from revision import extract_package

import tuner
from tuner.nn.data import Dataset, load_dataset
from tuner.nn.mlp import MLP
from tuner.nn.train import train
from tuner.optim import OPTIMIZERS, Optimizer, make

RATE, MOMENTUM = 0.01, 0.9
OTHER_RATE = 0.001  # `--optimizer` other than momentum: a rate none of them diverges at on random labels
IMPLEMENTATIONS = ("tuner", "gemm bound", "torch", "sklearn")
SETTLE = 0.3  # seconds of pause before each timed epoch (OpenBLAS threads spin ~0.1 s after a call)


@dataclass(frozen=True)
class Case:
    name: str
    sizes: tuple[int, ...]
    batch: int
    samples: int


CASES = {
    "large": Case("large", (784, 512, 512, 10), 128, 20_480),
    "small": Case("small", (40, 100, 100, 10), 100, 4_000),
    "digits": Case("digits", (64, 128, 10), 64, 1_437),
}


def synthetic(case: Case, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_in, n_out = case.sizes[0], case.sizes[-1]
    x = rng.standard_normal((case.samples + case.batch, n_in)).astype(np.float32)
    y = rng.integers(0, n_out, case.samples + case.batch)
    split = case.samples
    return Dataset(case.name, x[:split], y[:split], x[split:], y[split:], "classification", n_out)


def make_optimizer(name: str) -> Optimizer:
    return make(name, eps0=RATE, alpha=MOMENTUM) if name == "momentum" else make(name, eps0=OTHER_RATE)


def tuner_epoch(case: Case, data: Dataset, optimizer: str, update: bool = True) -> Callable[[], None]:
    model = MLP(case.sizes, "relu", rng=0)
    rng = np.random.default_rng(1)

    def epoch() -> None:
        opt = make_optimizer(optimizer)
        if not update:
            opt._update = lambda params, grad, lr: None  # the floor: everything but the update rule
        result = train(model, opt, data, 1, case.batch, rng)
        assert result.status == "completed", result.reason

    return epoch


def gemm_epoch(case: Case, data: Dataset) -> Callable[[], None]:
    rng = np.random.default_rng(2)
    sizes, b = case.sizes, case.batch
    w = [rng.standard_normal((m, n)).astype(np.float32) * 0.05 for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
    dw = [np.empty_like(wl) for wl in w]
    a = [np.empty((b, n), dtype=np.float32) for n in sizes[1:]]
    d = [rng.standard_normal((b, n)).astype(np.float32) for n in sizes[1:]]
    x = data.x_train
    n_layers = len(w)

    def epoch() -> None:
        for start in range(0, case.samples, b):
            xb = x[start : start + b]
            m = len(xb)  # the last minibatch may be smaller: the leading rows of each buffer
            inp = xb
            for layer in range(n_layers):
                np.dot(inp, w[layer], out=a[layer][:m])
                inp = a[layer][:m]
            for layer in range(n_layers - 1, -1, -1):
                np.dot((xb if layer == 0 else a[layer - 1][:m]).T, d[layer][:m], out=dw[layer])
                if layer:
                    np.dot(d[layer][:m], w[layer].T, out=d[layer - 1][:m])

    return epoch


def torch_epoch(case: Case, data: Dataset, threads: int) -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers: list = []
    for m, n in zip(case.sizes[:-1], case.sizes[1:], strict=True):
        layers += [torch.nn.Linear(m, n), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(net.parameters(), lr=RATE, momentum=MOMENTUM)
    criterion = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(np.ascontiguousarray(data.x_train)), torch.from_numpy(data.y_train)

    def epoch() -> None:
        order = torch.randperm(case.samples)
        for start in range(0, case.samples, case.batch):
            rows = order[start : start + case.batch]
            opt.zero_grad(set_to_none=True)
            loss = criterion(net(x[rows]), y[rows])
            loss.backward()
            opt.step()

    return epoch


def sklearn_epoch(case: Case, data: Dataset) -> Callable[[], None] | None:
    import warnings

    from sklearn.neural_network import MLPClassifier

    classes = np.arange(case.sizes[-1])
    clf = MLPClassifier(
        hidden_layer_sizes=case.sizes[1:-1], activation="relu", solver="sgd", alpha=0.0,
        batch_size=case.batch, learning_rate_init=RATE, momentum=MOMENTUM, nesterovs_momentum=False,
        shuffle=True, random_state=0,
    )
    x, y = np.asarray(data.x_train, dtype=np.float32), data.y_train

    def epoch() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(x, y, classes=classes)

    return epoch


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def build(case: Case, impl: str, threads: int, optimizer: str) -> Callable[[], None] | None:
    """One epoch of `impl` on `case`, ready to be called repeatedly (None when its library is missing)."""
    data = synthetic(case)
    builders = {
        "tuner": lambda: tuner_epoch(case, data, optimizer),
        "no update": lambda: tuner_epoch(case, data, optimizer, update=False),
        "gemm bound": lambda: gemm_epoch(case, data),
        "torch": lambda: torch_epoch(case, data, threads),
        "sklearn": lambda: sklearn_epoch(case, data),
    }
    return builders[impl]()


def update_path(case: Case, optimizer: str) -> str:
    """How the optimizer updates this case's parameters here: Numba's compiled loops or NumPy operations."""
    model = MLP(case.sizes, "relu", rng=0)
    opt = make_optimizer(optimizer)
    opt.start(model.params, 1)
    fused = getattr(opt, "_fused", None) is not None  # a revision before the loops has no such attribute
    return "Numba loops" if fused else "NumPy"


def serve(case: Case, impl: str, threads: int, optimizer: str) -> None:
    """Worker process: build `impl`, then time one epoch per line read from stdin, answering on stdout.

    The first line answers whether `impl` could be built and with which BLAS (a JSON object).
    """
    fn = build(case, impl, threads, optimizer)
    blas = blas_summary()
    if impl == "tuner":
        blas += f"; {optimizer} updates: {update_path(case, optimizer)}"
    print(json.dumps({"ready": fn is not None, "blas": blas}), flush=True)
    for _ in sys.stdin:
        assert fn is not None
        print(f"{timed(fn):.6f}", flush=True)


def start_workers(case: Case, threads: int, baseline: tuple[str, Path] | None, numpy_updates: bool = False,
                  optimizer: str = "momentum", floor: bool = False) -> dict[str, tuple]:
    """impl -> (worker process, its BLAS summary), for every implementation whose library is installed."""
    impls = IMPLEMENTATIONS if optimizer == "momentum" else ("tuner", "gemm bound")
    runs = [(impl, impl, None) for impl in impls]
    if numpy_updates:
        runs.insert(1, ("tuner, NumPy updates", "tuner", {**os.environ, "TUNER_FUSED": "0"}))
    if floor:
        runs.insert(1, ("tuner, no update", "no update", None))
    if baseline is not None:
        label, source = baseline
        runs.insert(1, (f"tuner @{label}", "tuner", {**os.environ, "PYTHONPATH": str(source)}))
    workers = {}
    for label, impl, env in runs:
        command = [sys.executable, __file__, "--worker", case.name, impl, str(threads), optimizer]
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        answer = json.loads(proc.stdout.readline())
        if answer["ready"]:
            workers[label] = (proc, answer["blas"])
        else:
            proc.wait()
    return workers


def run_case(
    case: Case, repeats: int, threads: int, baseline: tuple[str, Path] | None, numpy_updates: bool = False,
    optimizer: str = "momentum", floor: bool = False,
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Epoch seconds of each implementation in `repeats` rounds after one warm-up round.

    Each implementation lives in a worker process of its own, because two thread pools in one process
    fight over two cores: after a call, OpenBLAS's and PyTorch's OpenMP threads keep spinning for a while,
    and the other library's next call then runs many times slower (measured in one process: PyTorch 80x
    slower right after NumPy). The rounds interleave the implementations, so a burst of load from other
    processes hits all of them alike; before each epoch the parent pauses `SETTLE` seconds so that the
    threads of the worker that ran last have stopped spinning. Returns the times and each one's BLAS.
    """
    workers = start_workers(case, threads, baseline, numpy_updates, optimizer, floor)
    times: dict[str, list[float]] = {impl: [] for impl in workers}
    try:
        for round_ in range(repeats + 1):
            for impl, (proc, _) in workers.items():
                assert proc.stdin is not None and proc.stdout is not None
                time.sleep(SETTLE)
                proc.stdin.write("run\n")
                proc.stdin.flush()
                seconds = float(proc.stdout.readline())
                if round_:  # round 0 is the warm-up: buffers, caches, thread pools
                    times[impl].append(seconds)
    finally:
        for proc, _ in workers.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
    return times, {impl: blas for impl, (_, blas) in workers.items()}


def print_table(case: Case, times: dict[str, list[float]], blas: dict[str, str], optimizer: str) -> None:
    seconds = {impl: statistics.median(ts) for impl, ts in times.items()}
    bound, ours = seconds["gemm bound"], seconds["tuner"]
    sizes = "-".join(map(str, case.sizes))
    print(f"\n{case.name}: {sizes}, batch {case.batch}, {case.samples} samples, float32, {optimizer}")
    print(f"| {'implementation':<14} | {'s/epoch':>8} | {'/ gemm bound':>12} | {'/ tuner':>8} | BLAS | every epoch (s)")
    print(f"| {'-' * 14} | {'-' * 8}:| {'-' * 12}:| {'-' * 8}:| --- | ---")
    for impl, s in seconds.items():
        each = " ".join(f"{x:.4f}" for x in times[impl])
        print(f"| {impl:<14} | {s:8.4f} | {s / bound:12.3f} | {s / ours:8.3f} | {blas[impl]} | {each}")


def digits_run() -> dict:
    data = load_dataset("digits", seed=0)
    model = MLP([64, 128, 10], "relu", rng=0)
    optimizer = make("momentum", eps0=0.05, alpha=0.9)
    started = time.perf_counter()
    result = train(model, optimizer, data, 30, 64, np.random.default_rng(0))
    seconds = time.perf_counter() - started
    final = result.final
    assert final is not None
    print(
        f"\ndigits 64-128-10, batch 64, 30 epochs, momentum (eps0 0.05, alpha 0.9): {seconds:.3f} s "
        f"({seconds / 30 * 1e3:.1f} ms/epoch incl. validation), status {result.status}, "
        f"final val accuracy {final.val_accuracy:.4f}; BLAS {blas_summary()}"
    )
    return {"seconds": seconds, "val_accuracy": final.val_accuracy, "blas": blas_summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("large", "small", "digits", "all"), default="all")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per implementation (median)")
    parser.add_argument("--skip-digits", action="store_true", help="skip the digits 30-epoch run")
    parser.add_argument("--baseline", metavar="REV", help="also time tuner's loop as of this git revision")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure and the machine here")
    parser.add_argument("--numpy-updates", action="store_true",
                        help="also time tuner's loop with TUNER_FUSED=0 (the optimizer's update in NumPy)")
    parser.add_argument("--update-floor", action="store_true",
                        help="also time tuner's loop with the optimizer's update rule skipped")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="momentum",
                        help="tuner's optimizer (default momentum; the peers run only with momentum)")
    parser.add_argument("--worker", nargs=4, metavar=("CASE", "IMPL", "THREADS", "OPTIMIZER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, impl, threads, optimizer = args.worker
        serve(CASES[case], impl, int(threads), optimizer)
        return
    threads = blas_threads()
    record: dict = {
        "date": f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "tuner": str(Path(tuner.__file__).parent),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "blas": blas_pools(),
        "load_before": load_average(),
        "cases": {},
    }
    print(f"{record['date']}, tuner from {record['tuner']}")
    print(f"numpy {np.__version__}, BLAS threads {threads}, {os.cpu_count()} CPUs, {platform.machine()}, "
          f"load average before: {record['load_before']}")
    for pool in record["blas"]:
        print("BLAS: " + ", ".join(f"{key} {value}" for key, value in pool.items()))
    names = tuple(CASES) if args.case == "all" else (args.case,)
    with tempfile.TemporaryDirectory() as scratch:
        baseline = None
        if args.baseline:
            baseline = (extract_package(args.baseline, Path(scratch)), Path(scratch))
        for name in names:
            times, blas = run_case(CASES[name], args.repeats, threads, baseline, args.numpy_updates, args.optimizer,
                                   args.update_floor)
            print_table(CASES[name], times, blas, args.optimizer)
            record["cases"][name] = {
                impl: {"median": statistics.median(ts), "each": ts, "blas": blas[impl]} for impl, ts in times.items()
            }
    if not args.skip_digits:
        record["digits"] = digits_run()
    record["load_after"] = load_average()
    print(f"\nload average after: {record['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
