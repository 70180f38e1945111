"""Typed errors raised by the library.

The library never prints and never exits: it raises one of these, and the CLI turns it into one line on
stderr and an exit code. Every message names the value at fault (and the file and key where there is one).
"""

from __future__ import annotations


class TunerError(Exception):
    """Base class of every error `tuner` raises on purpose."""

    exit_code = 1


class HyperparameterError(TunerError, ValueError):
    """An optimizer, schedule or initialisation value is out of its domain (``alpha must be in [0, 1), got 1.2``)."""


class ModelError(TunerError, ValueError):
    """A network is built or called with inconsistent shapes or options."""


class ModelFileError(TunerError, ValueError):
    """A saved model file is missing, damaged, not tuner's, or of a format this tuner cannot read."""


class DataError(TunerError, ValueError):
    """A dataset is missing, malformed, empty, or holds values training cannot use."""


class SpecError(TunerError, ValueError):
    """A study spec file is missing, malformed, or fails validation."""

    exit_code = 2


class OptionError(TunerError, ValueError):
    """An option of a command or a library call is out of its domain (`heartbeat_interval must be ...`)."""

    exit_code = 2


class StorageError(TunerError):
    """The database cannot be reached or used."""


class DatabaseUnavailableError(StorageError):
    """The database was lost for longer than the caller's patience: starting again later may succeed.

    Exit code 75 (EX_TEMPFAIL of sysexits.h), so that a supervisor can restart on it and stop on 1.
    """

    exit_code = 75


class SchemaError(StorageError):
    """The project's tables are missing, behind, or ahead of the code."""


class StudyNotFoundError(TunerError, KeyError):
    """No study of that name exists in the storage."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TrialNotFoundError(TunerError, KeyError):
    """The study has no trial of that number (or no complete trial, for the best one)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ReplayError(TunerError):
    """A trial cannot be trained again: it never finished, its study has no spec, or the run diverged."""


class StudyExistsError(TunerError):
    """A study of that name already exists."""


class StudyBusyError(TunerError):
    """Workers of the study were seen recently: deleting or cleaning it up now would cut them off."""


class StudyDeletedError(TunerError):
    """The study was deleted while this process was using it."""


class ProbeError(TunerError):
    """The activation-statistics heuristic or the learning-rate probe cannot run on this network or data."""


class TrialTimeoutError(TunerError):
    """A trial ran past its time budget."""


class AnalysisError(TunerError, ValueError):
    """An analysis cannot be made as asked (a trials frame that does not say its study's direction)."""
