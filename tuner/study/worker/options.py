"""What a worker is told (`WorkerOptions`) and what it tells back (`Progress` after each trial, `WorkerReport`
at the end)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuner.errors import OptionError
from tuner.storage.retry import DB_PATIENCE_S
from tuner.study.limits import MAX_DURATION_S, MAX_GRACE_S, MAX_HEARTBEAT_S, MAX_TRIALS


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs. `n_trials` is the study's total across every worker (default: the spec's)."""

    n_trials: int | None = None  # sets the study's stored total, which every worker follows
    threads: int | None = None  # BLAS threads; None: a share of the host's cores (`threads`)
    timeout: float | None = None  # stop claiming new trials after this many seconds
    heartbeat_interval: int = 10
    grace_period: int = 60
    poll_interval: float = 1.0  # wait between claims while the rest of the total runs elsewhere
    max_failures: int = 5
    db_patience: float = DB_PATIENCE_S

    def __post_init__(self) -> None:
        """Every option within the bounds the CLI gives it (`tuner.study.limits`): a library caller too must
        not reach an overflowing timer or a day-long heartbeat."""
        bounds = {"n_trials": (1, MAX_TRIALS), "threads": (1, 4096), "timeout": (0, MAX_DURATION_S),
                  "heartbeat_interval": (1, MAX_HEARTBEAT_S), "grace_period": (1, MAX_GRACE_S),
                  "poll_interval": (0, 3600), "max_failures": (1, MAX_TRIALS), "db_patience": (0, MAX_DURATION_S)}
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if value is None and name in ("n_trials", "threads", "timeout"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise OptionError(f"{name} must be a number in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class Progress:
    """What a worker knows after each trial: the study's counts, its own count, the best value so far."""

    total: int
    finished: int
    running: int
    counts: dict[str, int]
    done_here: int
    best: float | None
    last_state: str | None = None
    last_reason: str | None = None  # why the last trial here did not complete, if it did not


@dataclass
class WorkerReport:
    """How a worker's run ended."""

    worker_id: int
    trials_run: int = 0
    states: dict[str, int] = field(default_factory=dict)
    reason: str = "done"  # done | timeout | stopped | failures
    message: str | None = None
