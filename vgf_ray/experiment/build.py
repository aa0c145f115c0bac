"""From an experiment dict to a validated config (VGF's, or a baseline's through ``experiment.baselines``) and its
iteration count."""

from __future__ import annotations

from vgf_ray.errors import ExperimentError, InputError
from vgf_ray.experiment.baselines import build_baseline_config
from vgf_ray.experiment.environment import resolve_env
from vgf_ray.experiment.model import check_experiment
from vgf_ray.experiment.resources import apply_run_settings, initial_learner_gpus
from vgf_ray.experiment.schema import algorithm_of
from vgf_ray.metrics import ALGORITHMS, DEFAULT_BUDGETS, VGF_ALGORITHM
from vgf_ray.rllib import VGFConfig


def build_config(exp: dict):
    """The config an experiment describes: a VGFConfig, or an RLlib baseline's for ``algorithm: bc|iql|cql``
    (every value's type checked first, naming the key)."""
    check_experiment(exp)
    resolve_env(exp)
    algorithm = algorithm_of(exp)
    if algorithm not in ALGORITHMS:
        raise ExperimentError(f"algorithm: {algorithm!r} is not one of {list(ALGORITHMS)}")
    if algorithm != VGF_ALGORITHM:
        return build_baseline_config(exp)
    training = dict(exp["training"])
    training["dataset"] = exp["dataset"]
    training["eval_budgets"] = list(exp["evaluation"].get("budgets", DEFAULT_BUDGETS))
    try:
        config = VGFConfig().environment(env_config=exp["env"]).training(**training)
        apply_run_settings(config, exp, initial_learner_gpus(exp))
        config.validate()
    except TypeError as err:
        raise ExperimentError(f"training: {err}") from err
    except ValueError as err:
        if isinstance(err, InputError):  # vgf_ray's own check, which names the key
            raise
        raise ExperimentError(f"RLlib rejects the configuration: {str(err).splitlines()[0]}") from err
    return config


def resolve_iterations(exp: dict, config) -> int:
    """``iterations`` as an integer; ``auto`` covers the offline and online phases exactly."""
    iterations = exp["iterations"]
    if iterations == "auto":
        iterations = config.planned_iterations()
        if iterations is None:
            raise ExperimentError("iterations: 'auto' needs training.offline_steps (offline-only runs never end)")
    if not isinstance(iterations, int) or iterations < 1:
        raise ExperimentError(f"iterations must be an integer >= 1 or 'auto', got {iterations!r}")
    planned = config.planned_iterations()
    if planned is not None and not config.online_env_steps and iterations > planned:
        raise ExperimentError(f"iterations: {iterations} is more than the {planned} that training.offline_steps "
                              f"({config.offline_steps}, {config.updates_per_iteration} a train() call) fills; the "
                              "rest would train nothing. Set iterations: auto, or raise training.offline_steps")
    return iterations
