"""The environment an experiment acts in, filled from its dataset where the experiment file is silent."""

from __future__ import annotations

from vgf_ray.data.dataset_env import recorded_env, reference_scores
from vgf_ray.data.spec import DatasetSpec
from vgf_ray.envs import ENV_CHOICE_KEYS
from vgf_ray.errors import ExperimentError
from vgf_ray.metrics import SCORE_REFERENCE


def resolve_env(exp: dict) -> None:
    """Fill the env section from the dataset where it is silent: the recorded env when none is named, and the
    reference scores (normalized score) where the dataset has them. In place, so the saved experiment shows it."""
    env, dataset = exp["env"], exp["dataset"]
    if set(ENV_CHOICE_KEYS) <= set(env):
        raise ExperimentError(f"env: names two environments (gym_id {env['gym_id']!r} and ogbench "
                              f"{env['ogbench']!r}); keep one")
    if not set(ENV_CHOICE_KEYS) & set(env):
        if dataset.get("source", DatasetSpec.source) == "ogbench":
            env.update({"ogbench": dataset.get("name", DatasetSpec.name), "success_timing": "post"})
        elif (recorded := recorded_env(dataset)) is not None:
            env.update(recorded)
        else:
            raise ExperimentError("env: names no environment (gym_id or ogbench) and the dataset records none")
    if SCORE_REFERENCE not in env:
        reference = reference_scores(exp["dataset"])
        if reference is not None:
            env[SCORE_REFERENCE] = reference
    elif not (isinstance(env[SCORE_REFERENCE], list) and len(env[SCORE_REFERENCE]) == 2
              and env[SCORE_REFERENCE][0] != env[SCORE_REFERENCE][1]):
        raise ExperimentError(f"env.{SCORE_REFERENCE}: expected [R_random, R_expert] (two different numbers), "
                              f"got {env[SCORE_REFERENCE]!r}")
