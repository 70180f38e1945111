"""The compiled update loops (`tuner.optim._fused`, the `fast` extra) give the NumPy rules' bits.

Every optimizer runs the same steps twice from the same start, on arrays of several chunks: once with
the loops, once with `TUNER_FUSED=0` (the chunked NumPy rule); parameters and state must be equal bit for
bit, in float32 and float64, over steps of a decaying rate with clipping on. (The rules themselves are
checked against ALGORITHMS.md's formulas in test_kernels.py, on the same kind of arrays, so that test
covers whichever path is installed.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tuner
from tuner.optim import OPTIMIZERS, make
from tuner.optim._base import CHUNK_BYTES
from tuner.optim._fused import ENV_VAR, kernels

pytest.importorskip("numba")

STEPS = 4


@pytest.fixture
def loops(monkeypatch):
    """Run with the loops on (True) or off (False); the kernels' cache follows the environment."""

    def use(on: bool) -> None:
        monkeypatch.setenv(ENV_VAR, "1" if on else "0")
        kernels.cache_clear()

    yield use
    kernels.cache_clear()


def run(name: str, dtype: type, n: int) -> tuple[np.ndarray, dict[str, np.ndarray], bool]:
    """`STEPS` steps of `name` from a fixed start; (θ, state, whether the loops ran)."""
    rng = np.random.default_rng(7)
    params = rng.standard_normal(n).astype(dtype)
    grad = np.empty_like(params)
    noise = rng.standard_normal((STEPS + 1, n)).astype(dtype)
    opt = make(name, eps0=0.05, eps_tau=0.01, tau=STEPS, clip_norm=50.0)
    opt.start(params, STEPS)

    def closure() -> float:
        np.sin(params, out=grad)
        np.add(grad, noise[opt.k], out=grad)
        return 0.0

    for _ in range(STEPS):
        opt.step(params, grad, closure)
    return params, {key: value.copy() for key, value in opt.state.items()}, opt._fused is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_loops_give_the_numpy_rules_bits(name, dtype, loops):
    n = 3 * CHUNK_BYTES // np.dtype(dtype).itemsize + 17  # three chunks and a bit: the loops run
    loops(True)
    fused_params, fused_state, fused = run(name, dtype, n)
    loops(False)
    numpy_params, numpy_state, numpy_fused = run(name, dtype, n)
    assert (fused, numpy_fused) == (True, False)
    assert fused_params.dtype == dtype
    np.testing.assert_array_equal(fused_params, numpy_params, strict=True)
    assert fused_state.keys() == numpy_state.keys()
    for key in fused_state:
        np.testing.assert_array_equal(fused_state[key], numpy_state[key], strict=True)


def test_a_small_network_keeps_the_numpy_rule(loops):
    loops(True)
    *_, fused = run("adam", np.float32, CHUNK_BYTES // 4)  # one chunk: whole arrays in L2
    assert not fused


def test_float16_keeps_the_numpy_rule(loops):
    loops(True)
    params, state, fused = run("momentum", np.float16, 3 * CHUNK_BYTES // 2)  # chunked, but Numba has no float16 type
    assert not fused
    assert params.dtype == np.float16 and np.isfinite(params).all() and np.abs(state["v"]).max() > 0


def test_a_nesterov_closure_that_raises_leaves_theta_as_it_was(loops):
    loops(True)
    params = np.linspace(-1, 1, 3 * CHUNK_BYTES // 4, dtype=np.float32)
    grad = np.zeros_like(params)
    opt = make("nesterov", eps0=0.1)
    opt.start(params, 5)
    opt.step(params, grad, lambda: grad.fill(1.0) or 0.0)  # a velocity, so the look-ahead moves θ
    before = params.copy()

    def fails() -> float:
        raise FloatingPointError("boom")

    with pytest.raises(FloatingPointError):
        opt.step(params, grad, fails)
    assert opt._fused is not None
    np.testing.assert_array_equal(params, before, strict=True)


def test_without_a_writable_cache_the_loops_compile_in_memory(tmp_path):
    # A copy of the package where neither of Numba's cache places can be made: `__pycache__` beside the
    # module and the user's cache directory are files, not directories (as a read-only install would be).
    package = tmp_path / "src" / "tuner"
    shutil.copytree(Path(tuner.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "optim" / "__pycache__").write_text("not a directory")
    home = tmp_path / "home"
    home.write_text("not a directory")
    env = {key: value for key, value in os.environ.items() if not key.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(tmp_path / "src"), HOME=str(home), XDG_CACHE_HOME=str(home / "cache"),
               PYTHONDONTWRITEBYTECODE="1", TUNER_FUSED="1")
    code = (
        "import numpy as np, tuner\n"
        "from tuner.optim import make\n"
        "params = np.ones(3 * 65536 + 5, np.float32)\n"
        "opt = make('adam', eps0=0.1)\n"
        "opt.start(params, 2)\n"
        "opt.step(params, np.ones_like(params), lambda: 0.0)\n"
        "print(tuner.__file__, opt._fused is not None, float(params[0]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    where, fused, first = done.stdout.split()
    assert (Path(where).resolve().is_relative_to(tmp_path.resolve()), fused) == (True, "True"), done.stdout
    assert float(first) == pytest.approx(0.9, rel=1e-5)  # Adam's first step moves by eps0 against the sign
