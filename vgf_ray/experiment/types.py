"""Type checks for an experiment's values, before any of them reaches RLlib, torch or numpy.

Each key's type comes from its default (``VGFConfig`` for ``training``, ``DatasetSpec`` for ``dataset``) or from the
tables below; the message names the key, the value and what was expected. Floats must be finite.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from vgf_ray.data.spec import DatasetSpec
from vgf_ray.errors import ExperimentError
from vgf_ray.rllib.algorithm import EXTRA_KEYS, HPARAM_KEYS, VGFConfig

# Keys whose default is None, or that take more than one type.
OPTIONAL_NUMBER = ("number", None)
TRAINING_TYPES: dict[str, tuple] = {
    "offline_steps": ("int", None), "online_fraction": OPTIONAL_NUMBER, "eval_step_size": OPTIONAL_NUMBER,
    "exploration_step_size": OPTIONAL_NUMBER, "grad_clip_norm": OPTIONAL_NUMBER,
    "divergence_q_factor": OPTIONAL_NUMBER, "lr": OPTIONAL_NUMBER, "acting_bf16": ("bool", "auto", None),
    "bf16": ("bool", "auto"),
}
DATASET_TYPES: dict[str, tuple] = {"path": ("str", None), "cache_dir": ("str", None), "num_transitions": ("int", None)}
TOP_TYPES: dict[str, tuple] = {"name": ("str",), "algorithm": ("str",), "seed": ("int>=0",),
                               "iterations": ("int>=1", "auto"), "checkpoint_every": ("int>=0", None),
                               "output_dir": ("str",)}
SECTION_TYPES: dict[str, dict[str, tuple]] = {
    "evaluation": {"interval": ("int>=1", None), "episodes": ("int>=1",), "budgets": ("list[int]",),
                   "num_env_runners": ("int>=0",), "step_size": OPTIONAL_NUMBER},
    "resources": {"num_learners": ("int>=0",), "num_gpus_per_learner": ("number", "auto"),
                  "num_env_runners": ("int>=0",), "num_envs_per_env_runner": ("int>=1",),
                  "num_cpus_per_env_runner": ("number",), "custom_resources_per_env_runner": ("resources",)},
    "env": {"ogbench": ("str",), "gym_id": ("str",), "success_timing": ("str",), "env_kwargs": ("dict",)},
    "mlflow": {"tracking_uri": ("str", None), "experiment": ("str",)},
    "ray": {"num_cpus": ("int>=1",), "num_gpus": ("number",), "object_store_memory": ("int>=1",),
            "address": ("str",)},
}
SECTIONS_THAT_ARE_MAPPINGS = ("ray", "env", "dataset", "training", "evaluation", "resources", "mlflow")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_resources(value: Any) -> bool:
    """Ray custom resources: name -> amount, as Ray would otherwise reject or wait on."""
    return isinstance(value, dict) and all(isinstance(k, str) and _is_number(v) and v >= 0 for k, v in value.items())


# Each kind of value an experiment key may take, and its test.
KIND_TESTS = {
    "int": _is_int,
    "int>=1": lambda v: _is_int(v) and v >= 1,
    "int>=0": lambda v: _is_int(v) and v >= 0,
    "number": _is_number,
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list | tuple),
    "list[int]": lambda v: isinstance(v, list | tuple) and all(_is_int(x) for x in v),
    "dict": lambda v: isinstance(v, dict),
    "resources": _is_resources,
}


def _matches(value: Any, kind: Any) -> bool:
    if kind is None or isinstance(kind, str) and kind not in KIND_TESTS:
        return value == kind  # a literal: None or a word such as "auto"
    return KIND_TESTS[kind](value)


def _describe(kinds: tuple) -> str:
    names = {"int": "an integer", "int>=1": "an integer >= 1", "int>=0": "an integer >= 0",
             "number": "a finite number", "str": "a string", "bool": "true or false",
             "list": "a list", "list[int]": "a list of integers", "dict": "a mapping",
             "resources": "a mapping of resource names to amounts >= 0", None: "null"}
    return " or ".join(names.get(k, repr(k)) for k in kinds)


def _kind_of_default(default: Any) -> tuple | None:
    if isinstance(default, bool):
        return ("bool",)
    if isinstance(default, int):
        return ("int",)
    if isinstance(default, float):
        return ("number",)
    if isinstance(default, str):
        return ("str",)
    if isinstance(default, list | tuple):
        return ("list",)
    if isinstance(default, dict):
        return ("dict",)
    return None


def _check(where: str, value: Any, kinds: tuple) -> None:
    if not any(_matches(value, kind) for kind in kinds):
        raise ExperimentError(f"{where}: expected {_describe(kinds)}, got {value!r}")


def check_experiment_types(exp: dict) -> None:
    """Raise ``ExperimentError`` for the first value of the wrong type."""
    for key, kinds in TOP_TYPES.items():
        if key in exp:
            _check(key, exp[key], kinds)
    for section in SECTIONS_THAT_ARE_MAPPINGS:
        if not isinstance(exp.get(section), dict):
            raise ExperimentError(f"{section}: expected a mapping of keys, got {exp.get(section)!r}")
    if exp.get("sweep") is not None and not isinstance(exp["sweep"], dict):
        raise ExperimentError(f"sweep: expected a mapping of keys, got {exp['sweep']!r}")
    for section, table in SECTION_TYPES.items():
        for key, kinds in table.items():
            if key in exp[section]:
                _check(f"{section}.{key}", exp[section][key], kinds)
    _check_dataset(exp["dataset"])
    _check_training(exp["training"])


def _check_dataset(dataset: dict) -> None:
    defaults = {f.name: f.default for f in fields(DatasetSpec)}
    for key, value in dataset.items():
        kinds = DATASET_TYPES.get(key) or _kind_of_default(defaults.get(key))
        if kinds is not None:
            _check(f"dataset.{key}", value, kinds)


def _check_training(training: dict) -> None:
    defaults = VGFConfig()
    for key, value in training.items():
        if key not in HPARAM_KEYS + EXTRA_KEYS:
            continue  # an unknown key is reported by name when the config is built
        kinds = TRAINING_TYPES.get(key) or _kind_of_default(getattr(defaults, key, None))
        if kinds is not None:
            _check(f"training.{key}", value, kinds)
    for key in ("hidden_dims", "actor_hidden_dims"):
        if key in training:
            _check(f"training.{key}", training[key], ("list[int]",))
