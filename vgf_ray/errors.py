"""vgf_ray's errors: bad user input (a file, a key, a value), and a run stopped on a signal.

``vgf-ray`` prints an ``InputError`` (and a missing file) as one line and exits with code 2, and a
``RunInterrupted`` with how to resume (exit 128 + signal number). Every other exception is a bug, and the CLI lets
it through with its traceback. ``InputError`` subclasses name their domain: ``ExperimentError``, ``DatasetError``,
``ScheduleError``, ``ConfigError``. Defined here, below every layer that raises them, so the CLI can catch them
before Ray is imported.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user; the message names the file, key or value and what was expected."""


class ConfigError(InputError):
    """A hyperparameter, algorithm, environment or dataset setting that cannot work."""


class ExperimentError(InputError):
    """A bad experiment file or override; the message names the file and key."""


class RunInterrupted(Exception):
    """The run stopped on a signal after saving; the message says how to resume."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
