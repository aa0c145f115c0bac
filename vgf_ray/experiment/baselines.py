"""An experiment with ``algorithm: bc | iql | cql`` as an RLlib config, with the recommended hyperparameters.

``training`` keys a baseline reads: ``offline_steps``, ``updates_per_iteration``, ``train_batch_size_per_learner``,
``discount``, ``data_pipeline``, ``online_env_steps`` (must be 0: offline only) and ``<algorithm>`` (a mapping of
the RLlib algorithm's own ``training()`` keys, plus ``model`` for its ``model_config``, over the defaults below).
VGF's own keys are left to VGF, with a note naming them; any other key is an error naming it.

Defaults (every baseline: 4x512 ReLU MLPs, Adam 3e-4, batch 256, discount 0.99, as the OGBench and FQL papers
train their manipulation baselines):
- ``bc``: RLlib's BC (MARWIL with beta 0), a Gaussian policy trained by log-likelihood (OGBench / FQL's BC).
- ``iql``: expectile 0.9, advantage temperature (RLlib ``beta``, FQL's AWR ``alpha``) 10, Polyak tau 0.005 every
  step: FQL's IQL settings for OGBench manipulation tasks (Park et al., 2025, agents/iql.py).
- ``cql``: conservative weight 5, 10 sampled actions, temperature 1, no Lagrangian, actor lr 1e-4, critic lr 3e-4,
  no BC warm-up: Kumar et al. (2020)'s continuous-control settings (the CQL authors give none for OGBench;
  ``bc_iters: 0`` because CPU-scale runs are shorter than their 10k-40k-step warm-ups).
- ``iql`` and ``cql``: ``q_network: mlp``, each critic one MLP over the concatenated state and action, as those
  authors (and FQL) build it; ``multi_stream`` is RLlib's SAC-catalog default (``vgf_ray.baselines.q_network``).
- ``iql``: ``policy: gaussian``, a unit-variance Gaussian actor without tanh squashing, its mean evaluated and
  clipped to the box, as FQL and OGBench train it; ``squashed`` is RLlib's (``vgf_ray.baselines.policy``).
"""

from __future__ import annotations

import copy
from typing import Any

from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from vgf_ray.baselines.algorithms import CONFIG_CLASSES
from vgf_ray.baselines.offline_format import ensure_rllib_offline_data
from vgf_ray.baselines.policy import POLICIES, baseline_catalog
from vgf_ray.baselines.q_network import Q_NETWORK_CATALOGS
from vgf_ray.errors import ExperimentError
from vgf_ray.experiment.environment import resolve_env
from vgf_ray.experiment.resources import apply_run_settings, initial_learner_gpus
from vgf_ray.metrics import BASELINES, DEFAULT_BUDGETS
from vgf_ray.rllib.algorithm import EXTRA_KEYS, HPARAM_KEYS

SHARED_KEYS = ("offline_steps", "updates_per_iteration", "train_batch_size_per_learner", "discount",
               "data_pipeline", "online_env_steps")
MLP = {"fcnet_hiddens": [512, 512, 512, 512], "fcnet_activation": "relu"}
RECOMMENDED: dict[str, dict[str, Any]] = {
    "bc": {"lr": 3e-4, "model": MLP},
    "iql": {"expectile": 0.9, "beta": 10.0, "actor_lr": 3e-4, "critic_lr": 3e-4, "value_lr": 3e-4, "tau": 0.005,
            "twin_q": True, "q_network": "mlp", "policy": "gaussian", "model": MLP},
    "cql": {"min_q_weight": 5.0, "num_actions": 10, "temperature": 1.0, "lagrangian": False, "bc_iters": 0,
            "actor_lr": 1e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4, "lr": None, "tau": 0.005, "twin_q": True,
            "q_network": "mlp", "model": MLP},
}


def _vgf_only_keys() -> set[str]:

    return set(HPARAM_KEYS + EXTRA_KEYS) - set(SHARED_KEYS)


def baseline_settings(algorithm: str, training: dict) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``(shared settings, the algorithm's training()/model settings, VGF-only keys left unused)``."""
    unused, shared = [], {}
    for key, value in training.items():
        if key in SHARED_KEYS:
            shared[key] = value
        elif key in BASELINES:
            if not isinstance(value, dict):
                raise ExperimentError(f"training.{key}: expected a mapping of RLlib {key.upper()} settings, "
                                      f"got {value!r}")
        elif key in _vgf_only_keys():
            unused.append(key)
        else:
            raise ExperimentError(f"training.{key}: not a setting of {algorithm} (its keys: {sorted(SHARED_KEYS)} "
                                  f"and training.{algorithm}: {{...}} with RLlib's {algorithm.upper()} settings)")
    own = copy.deepcopy(RECOMMENDED[algorithm])
    for key, value in (training.get(algorithm) or {}).items():
        if key == "model":
            if not isinstance(value, dict):
                raise ExperimentError(f"training.{algorithm}.model: expected a mapping of RLlib model_config keys "
                                      f"(e.g. fcnet_hiddens), got {value!r}")
            own["model"] = {**own["model"], **value}
        else:
            own[key] = value
    return shared, own, sorted(unused)


def _pop_choice(own: dict, algorithm: str, key: str, choices: list[str], absent_why: str) -> str | None:
    """Take vgf_ray's own ``training.<algorithm>.<key>`` out of RLlib's keys: None if unset, else one of
    ``choices``, for an algorithm whose defaults have the key (``absent_why`` says why the others fail)."""
    value = own.pop(key, None)
    if value is not None and key not in RECOMMENDED[algorithm]:
        raise ExperimentError(f"training.{algorithm}.{key}: {absent_why}")
    if value is not None and value not in choices:
        raise ExperimentError(f"training.{algorithm}.{key}: {value!r} is not one of {choices}")
    return value


def build_baseline_config(exp: dict):
    """The RLlib config of ``exp['algorithm']``: the same env, dataset, seed, evaluation and resources as VGF's."""
    resolve_env(exp)
    algorithm = exp["algorithm"]
    shared, own, unused = baseline_settings(algorithm, exp["training"])
    if shared.get("online_env_steps"):
        raise ExperimentError(f"training.online_env_steps: {algorithm} trains offline only (online fine-tuning is "
                              "VGF's); set it to 0")
    if unused:
        print(f"note: {algorithm} ignores VGF's training keys {unused}", flush=True)
    if list(exp["evaluation"].get("budgets", [0])) not in ([0], list(DEFAULT_BUDGETS)):
        print(f"note: {algorithm} has no transport budget; it is evaluated once per round, reported as budget 0",
              flush=True)
    model = own.pop("model")
    q_network = _pop_choice(own, algorithm, "q_network", list(Q_NETWORK_CATALOGS), f"{algorithm} has no critic")
    policy = _pop_choice(own, algorithm, "policy", list(POLICIES),
                         f"only iql has this key ({algorithm} keeps RLlib's policy distribution)")
    config = CONFIG_CLASSES[algorithm]()
    config.dataset = dict(exp["dataset"])
    config.offline_steps = shared.get("offline_steps")
    config.updates_per_iteration = int(shared.get("updates_per_iteration", 1000))
    config.data_pipeline = shared.get("data_pipeline", "in_memory")
    try:
        config.environment(env_config=exp["env"])
        config.training(train_batch_size_per_learner=int(shared.get("train_batch_size_per_learner", 256)),
                        gamma=float(shared.get("discount", 0.99)), **own)
        config.rl_module(model_config=model)
        if q_network is not None or policy is not None:
            config.rl_module(rl_module_spec=RLModuleSpec(catalog_class=baseline_catalog(q_network, policy)))
        apply_run_settings(config, exp, initial_learner_gpus(exp))
        config.offline_data(dataset_num_iters_per_learner=config.updates_per_iteration)
        if config.data_pipeline == "rllib":
            config.offline_data(input_=[str(ensure_rllib_offline_data(config.dataset))])
        config.validate()
    except TypeError as err:
        raise ExperimentError(f"training.{algorithm}: {err}") from err
    except ValueError as err:
        raise ExperimentError(f"RLlib rejects the {algorithm} configuration: {str(err).splitlines()[0]}") from err
    return config
