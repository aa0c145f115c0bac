"""Where an experiment runs: GPUs per learner (``auto`` settled against the machine or the cluster) and Ray itself
(a new local Ray, or a running cluster joined with its token)."""

from __future__ import annotations

import os
from typing import Any

import ray
import torch

from vgf_ray.cluster_auth import find_token, is_auth_failure, refused


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

    res = exp["resources"]
    gpus = learner_gpus(res.get("num_gpus_per_learner", "auto"), int(res.get("num_learners", 0)),
                        torch.cuda.is_available(), float(ray.cluster_resources().get("GPU", 0)))
    config.learners(num_gpus_per_learner=gpus)


def init_ray(exp: dict) -> None:

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

    try:
        ray.init(address=address)
    except Exception as err:
        if is_auth_failure(err):
            raise refused(f"ray.address {address}", find_token() is not None) from err
        raise


def apply_run_settings(config, exp: dict, gpus_per_learner: float | int) -> None:
    """The experiment's evaluation, learners, EnvRunners and seed on an RLlib config (VGF's or a baseline's)."""
    ev, res = exp["evaluation"], exp["resources"]
    config.evaluation(evaluation_interval=ev.get("interval", 1), evaluation_duration=int(ev.get("episodes", 10)),
                      evaluation_num_env_runners=int(ev.get("num_env_runners", 0)))
    config.learners(num_learners=int(res.get("num_learners", 0)), num_gpus_per_learner=gpus_per_learner)
    config.env_runners(num_env_runners=int(res.get("num_env_runners", 0)),
                       num_envs_per_env_runner=int(res.get("num_envs_per_env_runner", 1)),
                       num_cpus_per_env_runner=res.get("num_cpus_per_env_runner", 1),
                       custom_resources_per_env_runner=dict(res.get("custom_resources_per_env_runner") or {}))
    config.debugging(seed=int(exp["seed"]))


def initial_learner_gpus(exp: dict) -> float | int:
    """GPUs per learner before Ray is up (``auto`` asks the driver's CUDA; settled again once Ray is up)."""
    res = exp["resources"]
    return learner_gpus(res.get("num_gpus_per_learner", "auto"), int(res.get("num_learners", 0)),
                        torch.cuda.is_available(), 0.0)
