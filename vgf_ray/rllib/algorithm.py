"""``VGF``: an RLlib Algorithm whose training step runs many in-memory VGF updates on every learner.

Phases (spec 2.8): ``offline_steps`` gradient steps on the dataset, then ``online_env_steps`` environment steps
collected by the EnvRunners, each round added to every learner's replay, with ``utd_ratio`` gradient steps per
env step once ``start_training`` online steps have been collected. The counters are checkpointed.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import ray
import tree
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS

from vgf_ray.core.schedule import EXPLORATION_KEYS
from vgf_ray.data.replay import episodes_to_transitions
from vgf_ray.metrics import (
    BUDGET_METRICS,
    ENV_RUNNER_NODES,
    ENV_RUNNER_RESTARTS,
    GRAD_STEPS_LIFETIME,
    LEARNER_NODES,
    LEARNER_RESTARTS,
    MODULE_ID,
    ONLINE_BUFFER_SIZE,
    ONLINE_ENV_STEPS_LIFETIME,
    PHASE,
    PHASE_DONE,
    PHASE_OFFLINE,
    PHASE_ONLINE,
    POLICY_LAG,
    WEIGHT_SYNC_MB,
    WEIGHT_SYNC_S,
)
from vgf_ray.rllib.compat import learner_group_module_spec
from vgf_ray.rllib.rollouts import AsyncRollouts, Round, node_id, sample_round
from vgf_ray.rllib.shared import OfflineDataAlgorithm, resolve_dataset


def module_checkpoint_path(checkpoint: str | Path) -> Path:
    """Where an algorithm checkpoint keeps the VGF module's weights, absolute (pyarrow rejects relative paths)."""
    return Path(checkpoint).resolve() / "learner_group" / "learner" / "rl_module" / MODULE_ID


class VGF(OfflineDataAlgorithm):
    """Value Gradient Flow: offline, offline-to-online or online-only, in one ``train()`` loop."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls):
        from vgf_ray.rllib.config import VGFConfig

        return VGFConfig()

    @override(Algorithm)
    def setup(self, config) -> None:
        resolve_dataset(config)
        self.vgf_counters = {"grad_steps": 0, "online_env_steps": 0, "utd_carry": 0.0}
        self._learners_have_data = False
        self._weights_version = 0  # learner update rounds so far in this process (policy lag is a difference)
        self._async_rollouts = AsyncRollouts()
        self._weight_sync_mb: float | None = None
        self._last_collection: float | None = None  # monotonic time of the last round that brought env steps
        super().setup(config)

    def _replace_lost_learners(self) -> None:
        """A remote learner that died (its process or its node) is replaced before any update is dispatched
        (survivors would otherwise wait for it in DDP's all-reduce): the learner group is rebuilt, every learner
        takes a survivor's state (weights, optimizers, online replay; all learners hold the same) and a fresh
        sampling RNG of its rank, and the offline dataset is sent again. No counter changes: updates done
        are kept. With no survivor the run stops, naming the way back (its last checkpoint)."""
        group = self.learner_group
        if not group.is_remote:
            return
        probes = list(group.foreach_learner(lambda learner: True, healthy_only=False))
        if all(p.ok for p in probes) and len(probes) == self.config.num_learners:
            return
        states = [r.get() for r in group.foreach_learner(lambda learner: learner.get_state()) if r.ok]
        lost = self.config.num_learners - len(states)
        if not states:
            raise RuntimeError(f"all {self.config.num_learners} remote learner(s) were lost; continue from the last "
                               "checkpoint with vgf-ray train ... --resume <checkpoint>")
        spec = learner_group_module_spec(group)  # the spec Algorithm.setup built the group with
        group.shutdown()
        self.learner_group = self.config.build_learner_group(rl_module_spec=spec)
        # Each learner takes a private copy: LearnerGroup.set_state hands every learner the same object-store
        # buffers (zero-copy), and Adam's in-place updates of shared moments then desynchronise the ranks.
        ref = ray.put(states[0])
        for result in self.learner_group.foreach_learner(
                lambda learner, r=ref: learner.set_state(copy.deepcopy(ray.get(r)))):
            if not result.ok:
                raise result.get()
        restarts = self.vgf_counters.get("learner_restarts", 0) + 1
        self.vgf_counters["learner_restarts"] = restarts
        self.learner_group.foreach_learner(lambda learner, k=restarts: learner.reseed(k))
        self._learners_have_data = False
        self._send_dataset_to_learners()
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
        print(f"vgf_ray: replaced {lost} lost learner(s) from a survivor's state (restart {restarts})", flush=True)

    def phase(self) -> int:
        config, counters = self.config, self.vgf_counters
        if config.offline_steps is None or counters["grad_steps"] < config.offline_steps:
            return PHASE_OFFLINE
        if counters["online_env_steps"] < config.online_env_steps:
            return PHASE_ONLINE
        return PHASE_DONE

    def budget_values(self) -> dict[str, Any]:
        """The transport budget and learning rates in force now (the budget schedule at the run's counters)."""
        return self.config.budget_values(self.vgf_counters["grad_steps"], self.vgf_counters["online_env_steps"])

    def apply_budget_to_env_runners(self, group) -> dict[str, Any]:
        """Put the acting side of the current budget (alpha, exploration) on every EnvRunner of ``group``."""
        values = self.budget_values()
        group.foreach_env_runner(lambda runner, v=values: runner.module.apply_budget_values(v),
                                 local_env_runner=group.num_remote_env_runners() == 0)
        return values

    def _run_updates(self, num_steps: int) -> None:
        start = self.vgf_counters["grad_steps"]
        self._learner_round(lambda learner, n=num_steps, s=start: learner.run_vgf_updates(n, s))
        self.vgf_counters["grad_steps"] += num_steps
        self._weights_version += 1

    def _collect_online(self) -> int:
        """One rollout round on the EnvRunners; transitions go to every learner's replay. With ``async_sampling``
        the round collected here was launched one iteration earlier, and the next one is launched before
        training (``vgf_ray.rllib.rollouts``)."""
        config, counters = self.config, self.vgf_counters
        group = self.env_runner_group
        remaining = config.online_env_steps - counters["online_env_steps"]
        if config.async_sampling and group.num_remote_workers() > 0:
            if self._async_rollouts.in_flight is None:  # the first online round (or the first after a restore)
                self._launch_async_round(remaining)
            collected = self._add_round(self._async_rollouts.collect(group, config.sample_timeout_s))
            remaining = config.online_env_steps - counters["online_env_steps"]
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
        before = counters["online_env_steps"]
        counters["online_env_steps"] += collected
        trainable = max(0, counters["online_env_steps"] - max(before, config.start_training))
        counters["utd_carry"] += trainable * config.utd_ratio
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

    @override(Algorithm)
    def training_step(self) -> None:
        config, counters = self.config, self.vgf_counters
        phase = self.phase()
        if phase != PHASE_DONE:
            self._replace_lost_learners()
            self._send_dataset_to_learners()
        if phase == PHASE_OFFLINE:
            steps = config.updates_per_iteration
            if config.offline_steps is not None:
                steps = min(steps, config.offline_steps - counters["grad_steps"])
            self._run_updates(steps)
        elif phase == PHASE_ONLINE:
            self._collect_online()
            updates = int(counters["utd_carry"])
            if updates:
                counters["utd_carry"] -= updates
                self._run_updates(updates)
        self.metrics.log_value(PHASE, phase, window=1)
        self.metrics.log_value(GRAD_STEPS_LIFETIME, counters["grad_steps"], window=1)
        self.metrics.log_value(ONLINE_ENV_STEPS_LIFETIME, counters["online_env_steps"], window=1)
        self.metrics.log_value(LEARNER_RESTARTS, counters.get("learner_restarts", 0), window=1)
        # Keep the EnvRunners' modules (and so `get_module()`) on the learner's latest weights. The sync does not
        # wait behind an async round in flight: RLlib queues it for after that sample.
        start = time.perf_counter()
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
        if phase == PHASE_ONLINE:
            self.metrics.log_value(WEIGHT_SYNC_S, time.perf_counter() - start, window=1)
            self.metrics.log_value(WEIGHT_SYNC_MB, self._inference_weights_mb(), window=1)

    def _inference_weights_mb(self) -> float:
        """Size of what one weight sync puts in the object store (the EnvRunners' inference-only module)."""
        if self._weight_sync_mb is None:
            state = self.learner_group.get_state(components="learner/rl_module", inference_only=True)
            self._weight_sync_mb = sum(int(getattr(leaf, "nbytes", 0)) for leaf in tree.flatten(state)) / 2**20
        return self._weight_sync_mb

    def load_module_weights(self, checkpoint: str) -> None:
        """Start from a checkpoint's trained networks only (e.g. online fine-tuning of an offline run)."""
        path = module_checkpoint_path(checkpoint)
        if not path.exists():
            raise FileNotFoundError(f"{checkpoint}: no VGF module weights at {path}")
        self.learner_group.restore_from_path(path, component=f"learner/rl_module/{MODULE_ID}")
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
