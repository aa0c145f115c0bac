"""vgf_ray's error for bad user input (a file, a key, a value).

``vgf-ray`` prints an ``InputError`` (and a missing file) as one line and exits with code 2. Every other exception
is a bug, and the CLI lets it through with its traceback. Subclasses name their domain: ``ExperimentError``,
``DatasetError``, ``ScheduleError``, ``ConfigError``.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user; the message names the file, key or value and what was expected."""


class ConfigError(InputError):
    """A hyperparameter, algorithm, environment or dataset setting that cannot work."""
