"""The online phase's rounds on the EnvRunners: launch (or collect an async round), count the env steps, put the
transitions in every learner's replay, and log where they came from and how old their weights were."""

from __future__ import annotations

import time

import ray
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS

from vgf_ray.core.schedule import EXPLORATION_KEYS
from vgf_ray.data.replay import episodes_to_transitions
from vgf_ray.metrics import (
    BUDGET_METRICS,
    ENV_RUNNER_NODES,
    ENV_RUNNER_RESTARTS,
    LEARNER_NODES,
    ONLINE_BUFFER_SIZE,
    POLICY_LAG,
)
from vgf_ray.rllib.rollouts import Round, node_id, sample_round


class OnlineCollection:
    """Mixed into ``VGF``: reads its config, ``vgf_counters``, metrics, EnvRunner and learner groups."""

    def _collect_online(self) -> int:
        """One rollout round on the EnvRunners; transitions go to every learner's replay. With ``async_sampling``
        the round collected here was launched one iteration earlier, and the next one is launched before
        training (``vgf_ray.rllib.rollouts``)."""
        config, counters = self.config, self.vgf_counters
        group = self.env_runner_group
        remaining = config.online_env_steps - counters.online_env_steps
        if config.async_sampling and group.num_remote_workers() > 0:
            if self._async_rollouts.in_flight is None:  # the first online round (or the first after a restore)
                self._launch_async_round(remaining)
            collected = self._add_round(self._async_rollouts.collect(group, config.sample_timeout_s))
            remaining = config.online_env_steps - counters.online_env_steps
            if remaining > 0:  # the next round samples while this one is trained on
                self._launch_async_round(remaining)
            return collected
        self._apply_exploration_budget()
        return self._add_round(sample_round(group, min(config.rollout_steps_per_iteration, remaining),
                                            config.sample_timeout_s, self._weights_version))

    def _launch_async_round(self, remaining: int) -> None:
        """Put the exploration budget on the EnvRunners (it waits only for a queued weight sync, not behind a
        sample) and launch the next round of at most ``remaining`` env steps."""
        self._apply_exploration_budget()
        self._async_rollouts.launch(self.env_runner_group, min(self.config.rollout_steps_per_iteration, remaining),
                                    self._weights_version)

    def _apply_exploration_budget(self) -> None:
        values = self.apply_budget_to_env_runners(self.env_runner_group)
        for key in EXPLORATION_KEYS:
            self.metrics.log_value(BUDGET_METRICS[key], values[key], window=1)

    def _add_round(self, collected_round: Round) -> int:
        """Count a collected round, put its transitions in every learner's replay, log where and how old."""
        config, counters = self.config, self.vgf_counters
        self.metrics.aggregate(collected_round.runner_metrics, key=ENV_RUNNER_RESULTS)
        self._log_placement(collected_round.nodes)
        self.metrics.log_value(POLICY_LAG, self._weights_version - collected_round.weights_version, window=1)
        # Steps are counted from the episodes themselves (RLlib's metric-based count overshoots here).
        transitions = episodes_to_transitions(collected_round.episodes)
        collected = len(transitions["observations"])
        self._check_collection_progress(collected)
        if collected:
            ref = ray.put(transitions)
            sizes = self.learner_group.foreach_learner(
                lambda learner, r=ref: learner.add_online_transitions(ray.get(r))
            )
        else:  # a round that collected nothing (every EnvRunner lost, e.g. with its node) still reports the size
            sizes = self.learner_group.foreach_learner(lambda learner: learner.buffer.online.size)
        self.metrics.log_value(ONLINE_BUFFER_SIZE, [s.get() for s in sizes][0], window=1)
        before = counters.online_env_steps
        counters.online_env_steps += collected
        trainable = max(0, counters.online_env_steps - max(before, config.start_training))
        counters.utd_carry += trainable * config.utd_ratio
        return collected

    def _check_collection_progress(self, collected: int) -> None:
        """Rounds that collect nothing (EnvRunners lost) are made up for under ``iterations: auto``; if none comes
        back within RLlib's ``env_runner_restore_timeout_s``, stop instead of sampling nothing forever."""
        now = time.monotonic()
        if collected or self._last_collection is None:
            self._last_collection = now
        elif now - self._last_collection > self.config.env_runner_restore_timeout_s:
            raise RuntimeError(f"no env step collected for {now - self._last_collection:.0f} s "
                               f"(env_runner_restore_timeout_s={self.config.env_runner_restore_timeout_s}): "
                               f"none of the {self.env_runner_group.num_remote_workers()} EnvRunners came back; "
                               "continue from the last checkpoint with vgf-ray train ... --resume <checkpoint>")

    def _log_placement(self, env_runner_nodes: list[str]) -> None:
        """Node ids of the EnvRunners that just sampled and of the learners, and RLlib's EnvRunner restarts."""
        for node in env_runner_nodes:
            self.metrics.log_value((ENV_RUNNER_NODES, node), 1, reduce="sum")
        for result in self.learner_group.foreach_learner(node_id):
            if result.ok:
                self.metrics.log_value((LEARNER_NODES, result.get()), 1, reduce="sum")
        self.metrics.log_value(ENV_RUNNER_RESTARTS, self.env_runner_group.num_remote_worker_restarts(), window=1)
