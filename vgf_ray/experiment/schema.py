"""Experiment files: the sections, their defaults, ``--set`` overrides and path resolution.

An experiment file has these top-level sections (all optional but ``dataset``/``env`` usually given):
``name, algorithm, seed, iterations, checkpoint_every, output_dir, ray, env, dataset, training, evaluation, resources,
mlflow`` and, for ``vgf-ray tune``, ``sweep`` (see ``vgf_ray.tuning``).
``--set section.key=value`` overrides any entry (values parsed as YAML).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from vgf_ray.errors import ExperimentError
from vgf_ray.metrics import DEFAULT_BUDGETS, VGF_ALGORITHM

SECTIONS = {"name", "algorithm", "seed", "iterations", "checkpoint_every", "output_dir", "ray", "env", "dataset",
            "training", "evaluation", "resources", "mlflow", "sweep"}
# What each section holds (the configuration reference is generated from this table and the defaults below).
SECTION_HELP = {
    "name": "the run's name; `output_dir` may use it as `{name}`",
    "algorithm": "`vgf` (default) or a baseline: `bc`, `iql`, `cql` (RLlib's own, trained on the same data)",
    "seed": "seeds the learner, the EnvRunners and the evaluation episodes",
    "iterations": "`train()` calls; `auto` runs both phases (offline steps, then online env steps)",
    "checkpoint_every": "iterations between checkpoints (0 or null: only at the end)",
    "output_dir": "history, plots, checkpoint and final evaluation go here",
    "ray": "`ray.init` arguments for a local Ray, or `address` to join a running cluster",
    "env": "the environment: `ogbench` (a task name) or `gym_id`, `success_timing`, `env_kwargs`, `score_reference`; "
           "none named: the dataset's own",
    "dataset": "the offline data: an OGBench dataset (generated here when missing) or a local Minari dataset",
    "training": "every VGF knob (the authors' defaults) and the offline/online phases",
    "evaluation": "how often, how many paired episodes, at which test-time budgets",
    "resources": "learners (GPUs), EnvRunners and their CPUs and custom resources",
    "mlflow": "the tracking store and experiment name (`tracking_uri: null` turns tracking off)",
    "sweep": "`vgf-ray tune` only: search space, scheduler (ASHA, PBT, PB2), searcher, metric (Sweeps page)",
}
DEFAULTS: dict[str, Any] = {
    "name": "vgf", "algorithm": VGF_ALGORITHM, "seed": 0, "iterations": 10, "checkpoint_every": 0,
    "output_dir": "runs/{name}",
    "ray": {"num_cpus": 4, "object_store_memory": 1 << 30},
    "env": {},  # none named: the dataset's own (environment.resolve_env)
    "dataset": {}, "training": {},
    "evaluation": {"interval": 1, "episodes": 10, "budgets": list(DEFAULT_BUDGETS), "num_env_runners": 0},
    "resources": {"num_learners": 0, "num_gpus_per_learner": "auto"},
    "mlflow": {"tracking_uri": "sqlite:///{output_dir}/../mlflow.db", "experiment": "vgf_ray"},
}


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
    for key, value in (("name", exp.get("name")), ("output_dir", exp.get("output_dir"))):
        if not isinstance(value, str):
            raise ExperimentError(f"{key}: expected a string, got {value!r}")
    if not isinstance(exp.get("mlflow"), dict) or not isinstance(exp["mlflow"].get("tracking_uri"), str | None):
        raise ExperimentError(f"mlflow.tracking_uri: expected a string or null, got {exp.get('mlflow')!r}")
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
    unknown = sorted(set(raw) - SECTIONS)
    if unknown:
        raise ExperimentError(f"{path}: unknown section(s) {unknown}; sections: {sorted(SECTIONS)}")
    return raw


def _absolute_sqlite(uri: str) -> str:
    """A relative SQLite store made absolute (MLflow resolves it against whatever folder a process runs in)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri
