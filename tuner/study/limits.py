"""What a study may be: the study-name rule and the upper bound of every number a spec or a command takes.

The bounds keep hostile or mistyped values away from what cannot take them (Optuna's samplers take seeds
below 2**32, Python's timers overflow near 2**63 ns, a 10**12-trial study is a typo), and they are
documented in README.md ("Limits and safety") and in `studies/README.md`. A spec key is checked where the
spec is validated (`tuner.study.sections`); a command's option by Typer, with the bound in its --help.
"""

from __future__ import annotations

import os
import re

from tuner.errors import SpecError
from tuner.text import printable

# Study names: like Docker's container names, ASCII letters and digits and . _ -, first a letter or a digit
# (a name is also a command-line argument: a leading '-' would read as an option). ASCII only, so that two
# names never look alike; 128 characters leave room below Optuna's column of 512.
NAME_MAX_LENGTH = 128
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}" % (NAME_MAX_LENGTH - 1))
NAME_RULE = (f"use 1 to {NAME_MAX_LENGTH} characters from A-Z a-z 0-9 . _ -, the first a letter or a digit")
_SHOWN_LENGTH = 60  # of a value quoted in an error message

MAX_SPEC_BYTES = 1024 * 1024
MAX_TRIALS = 1_000_000
MAX_SEED = 2**32 - 1  # NumPy's legacy seeding, used by Optuna's samplers
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 2**20
MAX_HIDDEN_LAYERS = 100
MAX_LAYER_WIDTH = 2**16
MAX_MAGNITUDE = 1e6  # |bias_value|, clip_norm
MAX_DURATION_S = 30 * 24 * 3600  # study.time_budget, --timeout
MAX_HEARTBEAT_S = 3600  # --heartbeat-interval
MAX_GRACE_S = 24 * 3600  # --grace-period
MAX_REFRESH_S = 24 * 3600  # tuner dashboard --refresh
MAX_TOP = 100  # tuner report --top
MAX_PROBE_STEPS = 100_000  # tuner probe lr --steps
MAX_RATE = 1e6  # tuner probe lr --eps-min, --eps-max
# More processes than this on one machine only queue for its cores, and each holds database connections.
MAX_JOBS = 4 * len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 4 * (os.cpu_count() or 1)


def quoted(value: str) -> str:
    """A user's value for an error message: quoted, control characters escaped, long values cut."""
    shown = printable(value[:_SHOWN_LENGTH])
    return f"'{shown}...' ({len(value)} characters)" if len(value) > _SHOWN_LENGTH else f"'{shown}'"


def name_problem(name: str) -> str | None:
    """What is wrong with a study name (the value and the rule), or None when it is allowed."""
    if NAME_PATTERN.fullmatch(name):
        return None
    return f"{quoted(name)} is not allowed: {NAME_RULE}"


def check_study_name(name: str) -> str:
    """`name` when it follows the rule; otherwise SpecError naming it, control characters made visible."""
    problem = name_problem(name)
    if problem is not None:
        raise SpecError(f"study name {problem}")
    return name
