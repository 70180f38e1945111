"""The `tuner` package as of a git revision, unpacked beside this tree, to benchmark a change against its parent.

    label = extract_package("HEAD~3", Path(scratch))   # scratch/tuner/ now holds that revision's package
    # run a worker with PYTHONPATH=scratch: its `import tuner` finds that copy first

Two versions of one package cannot share a process, so a benchmark that compares them runs each in a
worker process of its own and interleaves their rounds (`optim_step.py`, `train_speed.py --baseline`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def extract_package(revision: str, into: Path) -> str:
    """Unpack `tuner/` as of `revision` into `into`; return the short commit hash it resolved to."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{revision}^{{commit}}"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    archive = subprocess.run(["git", "archive", commit, "tuner"], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit
