"""What a benchmark records about the machine beside its figures: the BLAS libraries and the load.

threadpoolctl's `threadpool_info()` names each BLAS library a process has loaded (NumPy's OpenBLAS, and
SciPy's own copy once scikit-learn pulls it in) with its version, the kernel architecture it picked and
its thread count. PyTorch links its MKL statically, out of threadpoolctl's sight; `torch.get_num_threads()`
gives its thread count instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from threadpoolctl import threadpool_info


def blas_pools() -> list[dict]:
    """Each BLAS library loaded in this process: library, version, kernel architecture, threads, file."""
    keys = ("internal_api", "version", "architecture", "num_threads", "filepath")
    return [{key: pool.get(key) for key in keys} for pool in threadpool_info() if pool.get("user_api") == "blas"]


def blas_threads() -> int:
    """The thread count of the first BLAS loaded, NumPy's in a process that has only imported NumPy."""
    counts = [pool["num_threads"] for pool in blas_pools()]
    return counts[0] if counts else os.cpu_count() or 1


def blas_summary() -> str:
    """This process's BLAS in a few words: 'openblas 0.3.31 SkylakeX x1', one entry per library loaded."""
    described = [f"{p['internal_api']} {p['version']} {p['architecture']} x{p['num_threads']}" for p in blas_pools()]
    if "torch" in sys.modules:
        import torch

        mkl = "MKL" if torch.backends.mkl.is_available() else "own BLAS"
        described.append(f"torch {mkl} x{torch.get_num_threads()}")
    return " + ".join(described) or "no BLAS loaded"


def load_average() -> str:
    """The first three fields of /proc/loadavg (1, 5 and 15 minutes), or '?' where there is none."""
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "?"
