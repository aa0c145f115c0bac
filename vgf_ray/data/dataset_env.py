"""What a dataset says about its environment: the env it was recorded in and its reference scores.

A Minari dataset records both (``env_spec``, ``ref_min_score``/``ref_max_score``); a MuJoCo locomotion id that
is not generated yet gets them from its name and the shipped behavior policies. An experiment that names no env
acts in the recorded one, and evaluations report the normalized score wherever references exist.
"""

from __future__ import annotations

import json
from typing import Any

from minari.storage.datasets_root_dir import get_dataset_path

from vgf_ray.data.mujoco_names import is_mujoco_name, parse_mujoco_name
from vgf_ray.data.mujoco_refs import load_behavior_refs, shipped_envs


def minari_metadata(dataset_id: str) -> dict[str, Any] | None:
    """The dataset's ``metadata.json`` as a dict, None where it is not local (or unreadable: the loader says)."""
    path = get_dataset_path(dataset_id) / "data" / "metadata.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def recorded_env(dataset: dict[str, Any]) -> dict[str, Any] | None:
    """``{"gym_id": ..., "env_kwargs": ...}`` of the env a Minari dataset was recorded in, if known."""
    if dataset.get("source") != "minari":
        return None
    meta = minari_metadata(dataset["name"]) or {}
    spec = meta.get("eval_env_spec") or meta.get("env_spec")
    if spec:
        spec = json.loads(spec) if isinstance(spec, str) else spec
        return {"gym_id": spec["id"], **({"env_kwargs": spec["kwargs"]} if spec.get("kwargs") else {})}
    if is_mujoco_name(dataset["name"]):
        return {"gym_id": parse_mujoco_name(dataset["name"]).env_id}
    return None


def reference_scores(dataset: dict[str, Any]) -> list[float] | None:
    """[R_random, R_expert] of a Minari dataset's metadata, or of the shipped policies for a MuJoCo id."""
    if dataset.get("source") != "minari":
        return None
    meta = minari_metadata(dataset["name"]) or {}
    if meta.get("ref_min_score") is not None and meta.get("ref_max_score") is not None:
        return [float(meta["ref_min_score"]), float(meta["ref_max_score"])]
    if is_mujoco_name(dataset["name"]):
        env = parse_mujoco_name(dataset["name"]).env
        if env in shipped_envs():  # else generating the dataset fails first, with its own clear error
            refs = load_behavior_refs(env)
            return [refs.random_return, refs.expert_return]
    return None
