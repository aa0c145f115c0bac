"""Experiment files: reading, defaults, ``--set`` overrides and path resolution.

The sections, keys, types and defaults are ``experiment.model``'s; a file is checked against it after its
overrides, so an error names the file, the key and what was expected. ``--set section.key=value`` overrides any
entry (the value parsed as YAML).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from vgf_ray.errors import ExperimentError
from vgf_ray.experiment.model import SECTIONS, check_experiment, experiment_defaults
from vgf_ray.metrics import VGF_ALGORITHM

DEFAULTS: dict[str, Any] = experiment_defaults()  # what each file starts from (the model's defaults)


def algorithm_of(exp: dict) -> str:
    """The experiment's ``algorithm`` (VGF unless it names a baseline)."""
    return exp.get("algorithm", VGF_ALGORITHM)


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_override(exp: dict, assignment: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) in place."""
    if "=" not in assignment:
        raise ExperimentError(f"--set {assignment!r}: expected KEY=VALUE, e.g. training.num_particles=5")
    dotted, raw = assignment.split("=", 1)
    keys = dotted.strip().split(".")
    if keys[0] not in SECTIONS:
        raise ExperimentError(f"--set {assignment!r}: unknown section {keys[0]!r}; sections: {sorted(SECTIONS)}")
    node = exp
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ExperimentError(f"--set {assignment!r}: {key!r} is not a section")
    try:
        node[keys[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ExperimentError(f"--set {assignment!r}: the value is not valid YAML ({err.problem})") from err


def load_experiment(path: str | Path, overrides: list[str] = ()) -> dict:
    """Read a YAML experiment, fill defaults, apply overrides and resolve paths."""
    exp = _merge(DEFAULTS, _read_sections(Path(path)))
    for assignment in overrides:
        apply_override(exp, assignment)
    check_experiment(exp, f"{path}" + (" with --set overrides" if overrides else ""))
    exp["output_dir"] = str(Path(str(exp["output_dir"]).format(name=exp["name"])).resolve())
    uri = exp["mlflow"].get("tracking_uri")
    if uri:
        exp["mlflow"]["tracking_uri"] = _absolute_sqlite(uri.format(output_dir=exp["output_dir"]))
    return exp


def _read_sections(path: Path) -> dict:
    """The file's sections as written (a clear error for a missing file, bad YAML or an unknown section)."""
    if not path.exists():
        raise ExperimentError(f"{path}: experiment file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ExperimentError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise ExperimentError(f"{path}: top level must be a mapping of sections")
    return raw


def _absolute_sqlite(uri: str) -> str:
    """A relative SQLite store made absolute (MLflow resolves it against whatever folder a process runs in)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri
