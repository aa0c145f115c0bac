"""Pieces VGF and the RLlib baselines share: run counters kept in checkpoints, the offline dataset sent to remote
learners, one update round on every learner, and the learner's lazy replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import FAULT_TOLERANCE_STATS, LEARNER_RESULTS
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from vgf_ray.data.replay import OfflineOnlineReplay
from vgf_ray.data.spec import DatasetSpec, load_transitions, prepare_dataset
from vgf_ray.envs import ENV_CHOICE_KEYS
from vgf_ray.metrics import (
    ALL_MODULES,
    ENV_RUNNERS,
    GRAD_STEPS_LIFETIME,
    MODULE_ID,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_TRAINED,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_EPISODES_LIFETIME,
    NUM_GRAD_STEPS,
    NUM_MODULE_STEPS_TRAINED,
)
from vgf_ray.rllib.compat import unfrozen

COUNTERS_KEY = "vgf_counters"


class EnvChoiceConfig(AlgorithmConfig):
    """An ``env_config`` that names an env replaces the default one: RLlib deep-merges ``env_config``, which would
    keep the default's ``ogbench`` task beside a new ``gym_id``."""

    @override(AlgorithmConfig)
    def environment(self, *args, env_config=NotProvided, **kwargs):
        if isinstance(env_config, dict) and set(ENV_CHOICE_KEYS) & set(env_config):
            self.env_config = {}
        return super().environment(*args, env_config=env_config, **kwargs)


class OfflineDataAlgorithm(Algorithm):
    """``self.vgf_counters`` (gradient steps, online env steps, ...) saved with and restored from checkpoints; the
    offline dataset sent once to remote learners; an update round on every learner. Subclasses set
    ``vgf_counters`` and ``_learners_have_data = False`` in ``setup``."""

    def _send_dataset_to_learners(self) -> None:
        """Remote learners get the offline transitions through the object store, not the file path: on a
        cluster the dataset lives on the driver's node only. A learner in the driver process reads the file."""
        if self._learners_have_data:
            return
        if self.learner_group.is_remote:
            data, info = load_transitions(DatasetSpec.from_dict(self.config.dataset))
            ref = ray.put(data)
            del data
            for result in self.learner_group.foreach_learner(
                lambda learner, r=ref, s=info["reward_scale"]: learner.install_offline_data(ray.get(r), s)
            ):
                if not result.ok:
                    raise result.get()
        self._learners_have_data = True

    def _learner_round(self, update: Callable[[Any], dict]) -> None:
        """``update(learner)`` on every learner (raising the first failure); their metrics into the results."""
        results = []
        for result in self.learner_group.foreach_learner(update):
            if not result.ok:
                raise result.get()
            results.append(result.get())
        self.metrics.aggregate(results, key=LEARNER_RESULTS)

    @override(Algorithm)
    def step(self) -> dict:
        """RLlib's ``step`` with its standard counters where an offline iteration has none (``with_rllib_counters``)."""
        return with_rllib_counters(super().step(), int(self.vgf_counters.get("online_env_steps", 0)))

    @override(Algorithm)
    def get_state(self, *args, **kwargs) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state[COUNTERS_KEY] = dict(self.vgf_counters)
        return state

    @override(Algorithm)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if COUNTERS_KEY in state:
            self.vgf_counters = dict(state[COUNTERS_KEY])


# What RLlib reports under FAULT_TOLERANCE_STATS about its EnvRunners.
FAULT_TOLERANCE_KEYS = ("num_healthy_workers", "num_remote_worker_restarts", "num_env_runners_dropped_lifetime")


def with_rllib_counters(results: dict, env_steps_sampled: int) -> dict:
    """``results`` with RLlib's standard counters: an ``env_runners`` block even where nothing was sampled (offline
    iterations: the env steps sampled so far, no episodes), and the transitions trained on so far at the top level,
    where Tune's console looks for them; the EnvRunners' fault-tolerance counts where there are no EnvRunners."""
    results.setdefault(ENV_RUNNERS, {NUM_ENV_STEPS_SAMPLED_LIFETIME: env_steps_sampled, NUM_EPISODES_LIFETIME: 0})
    # An offline algorithm without training EnvRunners (the baselines, as RLlib builds them) has none to report.
    results.setdefault(FAULT_TOLERANCE_STATS, dict.fromkeys(FAULT_TOLERANCE_KEYS, 0))
    trained = results.get(LEARNER_RESULTS, {}).get(ALL_MODULES, {}).get(NUM_ENV_STEPS_TRAINED_LIFETIME, 0)
    results[NUM_ENV_STEPS_TRAINED_LIFETIME] = int(trained)
    return results


def learner_rank() -> int:
    """This learner's rank among data-parallel learners (0 when it is the only one)."""
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def log_update_round(metrics: MetricsLogger, num_steps: int, batch_size: int) -> None:
    """A learner's counters for one round of ``num_steps`` updates on ``batch_size``-transition minibatches, where
    RLlib's learners log theirs: ``learners/__all_modules__`` (gradient steps, transitions trained on, summed over
    learners as RLlib does) and the module's own trained-steps count. Gradient steps are counted on rank 0 only:
    data-parallel learners take the same steps together."""
    if learner_rank() == 0:
        metrics.log_value((ALL_MODULES, NUM_GRAD_STEPS), num_steps, reduce="sum")
        metrics.log_value((ALL_MODULES, GRAD_STEPS_LIFETIME), num_steps, reduce="lifetime_sum")
    trained = num_steps * batch_size
    metrics.log_value((ALL_MODULES, NUM_ENV_STEPS_TRAINED), trained, reduce="sum")
    metrics.log_value((ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME), trained, reduce="lifetime_sum")
    metrics.log_value((MODULE_ID, NUM_MODULE_STEPS_TRAINED), trained, reduce="sum")


class LazyReplay:
    """A learner's ``buffer``: installed by the driver for remote learners (``install_offline_data``), read from
    the dataset file by a learner in the driver process on first use."""

    _buffer: OfflineOnlineReplay | None

    def install_offline_data(self, data: dict, reward_scale: float = 1.0) -> int:
        """Take the (already scaled) offline transitions; ``reward_scale`` is the dataset's reward factor, which
        online rewards get too."""
        raise NotImplementedError

    @property
    def buffer(self) -> OfflineOnlineReplay:
        if self._buffer is None:
            data, info = load_transitions(DatasetSpec.from_dict(self.config.dataset))
            self.install_offline_data(data, info["reward_scale"])
        return self._buffer


def resolve_dataset(config) -> None:
    """Generate or resolve the dataset once on the driver (a concrete path in the config), so learners only read."""
    spec = prepare_dataset(DatasetSpec.from_dict(config.dataset))
    if config.dataset != spec.to_dict():
        with unfrozen(config):
            config.dataset = spec.to_dict()
