"""From an experiment dict to a validated ``VGFConfig`` and a running Ray: GPUs, iterations, ``ray.init``."""

from __future__ import annotations

import os
from typing import Any

from vgf_ray.cluster_auth import find_token, is_auth_failure, refused
from vgf_ray.errors import InputError
from vgf_ray.experiment.schema import ALGORITHMS, VGF_ALGORITHM, ExperimentError, algorithm_of


def build_config(exp: dict):
    """The config an experiment describes: a VGFConfig, or an RLlib baseline's for ``algorithm: bc|iql|cql``
    (every value's type checked first, naming the key)."""
    import torch

    from vgf_ray.experiment.types import check_experiment_types
    from vgf_ray.rllib import VGFConfig

    check_experiment_types(exp)
    resolve_env(exp)
    algorithm = algorithm_of(exp)
    if algorithm not in ALGORITHMS:
        raise ExperimentError(f"algorithm: {algorithm!r} is not one of {list(ALGORITHMS)}")
    if algorithm != VGF_ALGORITHM:
        from vgf_ray.baselines.build import build_baseline_config

        return build_baseline_config(exp)
    ev, res = exp["evaluation"], exp["resources"]
    gpus = learner_gpus(res.get("num_gpus_per_learner", "auto"), int(res.get("num_learners", 0)),
                        torch.cuda.is_available(), 0.0)  # "auto" is settled again once Ray is up
    training = dict(exp["training"])
    training["dataset"] = exp["dataset"]
    training["eval_budgets"] = list(ev.get("budgets", [0, 1, 2, 3]))
    try:
        config = (
            VGFConfig()
            .environment(env_config=exp["env"])
            .training(**training)
            .evaluation(evaluation_interval=ev.get("interval", 1), evaluation_duration=int(ev.get("episodes", 10)),
                        evaluation_num_env_runners=int(ev.get("num_env_runners", 0)))
            .learners(num_learners=int(res.get("num_learners", 0)), num_gpus_per_learner=gpus)
            .env_runners(num_env_runners=int(res.get("num_env_runners", 0)),
                         num_envs_per_env_runner=int(res.get("num_envs_per_env_runner", 1)),
                         num_cpus_per_env_runner=res.get("num_cpus_per_env_runner", 1),
                         custom_resources_per_env_runner=dict(res.get("custom_resources_per_env_runner") or {}))
            .debugging(seed=int(exp["seed"]))
        )
        config.validate()
    except TypeError as err:
        raise ExperimentError(f"training: {err}") from err
    except ValueError as err:
        if isinstance(err, InputError):  # vgf_ray's own check, which names the key
            raise
        raise ExperimentError(f"RLlib rejects the configuration: {str(err).splitlines()[0]}") from err
    return config


def resolve_env(exp: dict) -> None:
    """Fill the env section from the dataset where it is silent: the recorded env when none is named, and the
    reference scores (normalized score) where the dataset has them. In place, so the saved experiment shows it."""
    from vgf_ray.data.dataset_env import recorded_env, reference_scores
    from vgf_ray.data.spec import DatasetSpec
    from vgf_ray.envs import ENV_CHOICE_KEYS
    from vgf_ray.metrics import SCORE_REFERENCE

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


def resolve_iterations(exp: dict, config) -> int:
    """``iterations`` as an integer; ``auto`` covers the offline and online phases exactly."""
    iterations = exp["iterations"]
    if iterations == "auto":
        iterations = config.planned_iterations()
        if iterations is None:
            raise ExperimentError("iterations: 'auto' needs training.offline_steps (offline-only runs never end)")
    if not isinstance(iterations, int) or iterations < 1:
        raise ExperimentError(f"iterations must be an integer >= 1 or 'auto', got {iterations!r}")
    return iterations


def learner_gpus(setting: Any, num_learners: int, local_cuda: bool, cluster_gpus: float) -> float | int:
    """GPUs per learner for ``resources.num_gpus_per_learner``; ``auto`` asks where the learners will run.

    With ``num_learners == 0`` the learner lives in the driver process, so the driver's CUDA decides; remote
    learners may sit on other nodes, so the cluster must hold a GPU for each of them.
    """
    if setting != "auto":
        return setting
    if num_learners == 0:
        return 1 if local_cuda else 0
    return 1 if cluster_gpus >= num_learners else 0


def resolve_learner_gpus(exp: dict, config) -> None:
    """After ``ray.init``: settle ``num_gpus_per_learner: auto`` against the cluster's GPUs."""
    import ray
    import torch

    res = exp["resources"]
    gpus = learner_gpus(res.get("num_gpus_per_learner", "auto"), int(res.get("num_learners", 0)),
                        torch.cuda.is_available(), float(ray.cluster_resources().get("GPU", 0)))
    config.learners(num_gpus_per_learner=gpus)


def init_ray(exp: dict) -> None:
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if not ray.is_initialized():
        opts = dict(exp["ray"])
        address = opts.pop("address", None)
        if address:
            join_cluster(address)
        else:  # a new local Ray: token authentication on (Ray's default for local clusters, or the CLI's mode)
            ray.init(include_dashboard=False, log_to_driver=False, **opts)


def join_cluster(address: str) -> None:
    """``ray.init(address)``; a cluster that refuses the token (or its absence) is a one-line error."""
    import ray

    try:
        ray.init(address=address)
    except Exception as err:
        if is_auth_failure(err):
            raise refused(f"ray.address {address}", find_token() is not None) from err
        raise
