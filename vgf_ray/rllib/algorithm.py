"""``VGF`` and ``VGFConfig``: the RLlib Algorithm and its config (one module, as RLlib keeps each algorithm).

``VGFConfig`` holds every VGF knob, a dataset spec and budget-wise evaluation. ``VGF``'s training step runs many
in-memory VGF updates on every learner. Phases (spec 2.8): ``offline_steps`` gradient steps on the dataset, then
``online_env_steps`` environment steps collected by the EnvRunners (``online_collection``), each round added to
every learner's replay, with ``utd_ratio`` gradient steps per env step once ``start_training`` online steps have
been collected. The counters are checkpointed.
"""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import tree
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from vgf_ray.core.hparams import VGFHyperParams
from vgf_ray.core.schedule import SCHEDULE_KEYS, BudgetSchedule, check_value
from vgf_ray.data.replay import REPLAY_STYLES
from vgf_ray.data.spec import DatasetSpec
from vgf_ray.errors import ConfigError
from vgf_ray.metrics import (
    DEFAULT_BUDGETS,
    LEARNER_RESTARTS,
    MODULE_ID,
    PHASE_DONE,
    PHASE_OFFLINE,
    PHASE_ONLINE,
    WEIGHT_SYNC_MB,
    WEIGHT_SYNC_S,
)
from vgf_ray.rllib.batched_evaluation import DEFAULT_PARALLEL_ROWS
from vgf_ray.rllib.evaluation import evaluate_budgets
from vgf_ray.rllib.learner import VGFTorchLearner
from vgf_ray.rllib.learner_recovery import LearnerRecovery
from vgf_ray.rllib.module import VGFTorchRLModule
from vgf_ray.rllib.online_collection import OnlineCollection
from vgf_ray.rllib.rollouts import AsyncRollouts
from vgf_ray.rllib.shared import OfflineDataAlgorithm, OfflineDataConfig

# Integer settings and their smallest value (the optional ones may also be None).
INTEGER_MINIMUMS = {"updates_per_iteration": 1, "exploration_steps": 0, "online_env_steps": 0, "start_training": 0,
                    "online_buffer_capacity": 1, "rollout_steps_per_iteration": 1}
OPTIONAL_INTEGER_MINIMUMS = {"eval_parallel_episodes": 1, "offline_steps": 0}
EXPLORATION_SELECTIONS = ("max", "softmax", "random")
HPARAM_KEYS = tuple(f.name for f in fields(VGFHyperParams))
EXTRA_KEYS = ("dataset", "updates_per_iteration", "eval_budgets", "eval_step_size", "exploration_steps",
              "exploration_selection", "offline_steps", "online_env_steps", "utd_ratio", "start_training",
              "replay_style", "online_fraction", "online_buffer_capacity", "rollout_steps_per_iteration",
              "checkpoint_replay", "budget_schedule", "exploration_step_size", "divergence_q_factor",
              "async_sampling", "eval_parallel_episodes")


class VGFConfig(OfflineDataConfig):
    """Build with ``VGFConfig().environment(...).training(num_particles=10, ...).build()``."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or VGF)
        for key, value in VGFHyperParams().to_dict().items():
            setattr(self, key, value)
        self.init_offline_data(DEFAULT_BUDGETS, evaluate_budgets)
        self.eval_step_size: float | None = None  # None: the training step size vgf_lr
        # (episode, budget) rows an evaluation runner plays at once, each in an env of its own (None: its whole
        # share of the round; memory grows with it)
        self.eval_parallel_episodes: int | None = DEFAULT_PARALLEL_ROWS
        # Offline-to-online (spec 2.8): offline_steps, then online_env_steps.
        self.utd_ratio = 1.0  # gradient steps per online env step
        self.start_training = 5000  # online env steps collected before online updates begin
        self.replay_style = "iql"  # iql: one uniform buffer; rlpd: half/half; wsrl: online only
        self.online_fraction: float | None = None  # overrides the style's online share of a batch
        self.online_buffer_capacity = 1_000_000  # FIFO over online data only; the dataset is never evicted
        self.rollout_steps_per_iteration = 1000  # env steps collected per train() call in the online phase
        self.rollout_fragment_length = "auto"  # -> rollout_steps_per_iteration split over runners and envs
        # EnvRunners sample the next round while the learner trains on this one (policy lag 1; see rllib/rollouts).
        self.async_sampling = False
        self.checkpoint_replay = True  # save online transitions in checkpoints (False: refill after restore)
        # Stop when |Q| passes this many times max|r| / (1 - discount) (None: only non-finite losses stop a run).
        self.divergence_q_factor: float | None = 10.0
        # Online acting: best-of-N with no transport, like the authors' collection loop (spec 6.6).
        self.exploration_steps = 0
        self.exploration_step_size: float | None = None  # None: the transport step size vgf_lr
        self.exploration_selection = "max"  # which moved particle acts online: max, softmax or random
        # Transport budget (and learning rates) over training: see vgf_ray.core.schedule.
        self.budget_schedule: dict[str, Any] = {}
        self.lr = None  # per-optimizer rates: value_lr / actor_lr
        self.num_env_runners = 0

    @override(AlgorithmConfig)
    def training(self, **kwargs) -> VGFConfig:
        """Set VGF knobs (see ``VGFHyperParams`` and ``EXTRA_KEYS``) and any standard RLlib training key."""
        for key in HPARAM_KEYS + EXTRA_KEYS:
            if key in kwargs:
                value = kwargs.pop(key)
                if value is not NotProvided:
                    setattr(self, key, value)
        if self.grad_clip_norm is not None:  # RLlib's learner clips by its own keys (the distributed update path)
            kwargs.update(grad_clip=self.grad_clip_norm, grad_clip_by="global_norm")
        super().training(**kwargs)
        return self

    def planned_iterations(self) -> int | None:
        """train() calls needed for both phases (None for open-ended offline training)."""
        if self.offline_steps is None:
            return None
        offline = -(-self.offline_steps // self.updates_per_iteration)
        return offline + -(-self.online_env_steps // self.rollout_steps_per_iteration)

    @override(AlgorithmConfig)
    def get_rollout_fragment_length(self, worker_index: int = 0) -> int:
        """'auto': one sample() call on every EnvRunner yields about ``rollout_steps_per_iteration`` env steps."""
        if self.rollout_fragment_length != "auto":
            return super().get_rollout_fragment_length(worker_index)
        envs = self.num_envs_per_env_runner * max(1, self.num_env_runners or 0)
        return max(1, -(-self.rollout_steps_per_iteration // envs))

    def schedule(self) -> BudgetSchedule:
        return BudgetSchedule(self.budget_schedule)

    def budget_defaults(self) -> dict[str, Any]:
        """The configured (unscheduled) transport budget and learning rates."""
        return {key: getattr(self, key) for key in SCHEDULE_KEYS}

    def budget_values(self, grad_steps: int, env_steps: int = 0) -> dict[str, Any]:
        """The transport budget and learning rates in force at these counters (schedule applied)."""
        return self.schedule().values_at(self.budget_defaults(), grad_steps, env_steps)

    def hyperparams(self) -> VGFHyperParams:
        values = {key: getattr(self, key) for key in HPARAM_KEYS}
        return VGFHyperParams.from_dict(values)

    @override(AlgorithmConfig)
    def validate(self) -> None:
        self.hyperparams()  # raises ValueError naming the bad key
        DatasetSpec.from_dict(self.dataset)
        self.schedule()  # raises ScheduleError naming the bad entry
        for key, minimum in INTEGER_MINIMUMS.items():
            self._check_integer(key, minimum)
        for key, minimum in OPTIONAL_INTEGER_MINIMUMS.items():
            self._check_integer(key, minimum, optional=True)
        self._check_acting()
        self._check_online()
        super().validate()

    def _check_integer(self, key: str, minimum: int, optional: bool = False) -> None:
        value = getattr(self, key)
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{key} must be {'None or ' if optional else ''}an integer >= {minimum}, got {value!r}")

    def _check_acting(self) -> None:
        """The evaluation budgets and the test-time and exploration transport settings."""
        budgets = list(self.eval_budgets)
        if not budgets or any(not isinstance(b, int) or b < 0 for b in budgets):
            raise ConfigError(f"eval_budgets must be a non-empty list of integers >= 0, got {self.eval_budgets!r}")
        if self.exploration_step_size is not None:
            check_value("exploration_step_size", self.exploration_step_size, "exploration_step_size")
        if self.eval_step_size is not None and self.eval_step_size < 0:
            raise ConfigError(f"eval_step_size must be >= 0, got {self.eval_step_size!r}")
        if self.exploration_selection not in EXPLORATION_SELECTIONS:
            raise ConfigError(f"exploration_selection={self.exploration_selection!r} is not one of "
                              f"{EXPLORATION_SELECTIONS}")

    def _check_online(self) -> None:
        """The online phase: replay, sampling and the update-to-data ratio."""
        if self.replay_style not in REPLAY_STYLES:
            raise ConfigError(f"replay_style={self.replay_style!r} is not one of {REPLAY_STYLES}")
        if self.online_fraction is not None and not 0.0 <= self.online_fraction <= 1.0:
            raise ConfigError(f"online_fraction must be in [0, 1], got {self.online_fraction!r}")
        if self.online_env_steps and self.offline_steps is None:
            raise ConfigError("online_env_steps > 0 needs offline_steps (an integer; 0 = online only)")
        if not isinstance(self.async_sampling, bool):
            raise ConfigError(f"async_sampling must be true or false, got {self.async_sampling!r}")
        if self.utd_ratio <= 0:
            raise ConfigError(f"utd_ratio must be > 0, got {self.utd_ratio!r}")
        if self.divergence_q_factor is not None and not (isinstance(self.divergence_q_factor, int | float)
                                                         and self.divergence_q_factor > 0):
            raise ConfigError(f"divergence_q_factor must be None or > 0, got {self.divergence_q_factor!r}")

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=VGFTorchRLModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        return VGFTorchLearner

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return {**super()._model_config_auto_includes, "vgf": self.hyperparams().to_dict(),
                "inference_steps": self.train_vgf_steps, "exploration_steps": self.exploration_steps,
                "exploration_step_size": self.exploration_step_size,
                "exploration_selection": self.exploration_selection}


def module_checkpoint_path(checkpoint: str | Path) -> Path:
    """Where an algorithm checkpoint keeps the VGF module's weights, absolute (pyarrow rejects relative paths)."""
    return Path(checkpoint).resolve() / "learner_group" / "learner" / "rl_module" / MODULE_ID


class VGF(LearnerRecovery, OnlineCollection, OfflineDataAlgorithm):
    """Value Gradient Flow: offline, offline-to-online or online-only, in one ``train()`` loop."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> VGFConfig:
        return VGFConfig()

    @override(Algorithm)
    def setup(self, config) -> None:
        self._weights_version = 0  # learner update rounds so far in this process (policy lag is a difference)
        self._async_rollouts = AsyncRollouts()
        self._weight_sync_mb: float | None = None
        self._last_collection: float | None = None  # monotonic time of the last round that brought env steps
        super().setup(config)

    def budget_values(self) -> dict[str, Any]:
        """The transport budget and learning rates in force now (the budget schedule at the run's counters)."""
        return self.config.budget_values(self.vgf_counters.grad_steps, self.vgf_counters.online_env_steps)

    def apply_budget_to_env_runners(self, group) -> dict[str, Any]:
        """Put the acting side of the current budget (alpha, exploration) on every EnvRunner of ``group``."""
        values = self.budget_values()
        group.foreach_env_runner(lambda runner, v=values: runner.module.apply_budget_values(v),
                                 local_env_runner=group.num_remote_env_runners() == 0)
        return values

    def _run_updates(self, num_steps: int) -> None:
        start = self.vgf_counters.grad_steps
        self._learner_round(lambda learner, n=num_steps, s=start: learner.run_vgf_updates(n, s))
        self.vgf_counters.grad_steps += num_steps
        self._weights_version += 1

    @override(Algorithm)
    def training_step(self) -> None:
        counters = self.vgf_counters
        phase = self.phase()
        if phase != PHASE_DONE:
            self._replace_lost_learners()
            self._send_dataset_to_learners()
        if phase == PHASE_OFFLINE:
            self._run_updates(self.offline_chunk())
        elif phase == PHASE_ONLINE:
            self._collect_online()
            updates = int(counters.utd_carry)
            if updates:
                counters.utd_carry -= updates
                self._run_updates(updates)
        self.log_run_counters(phase)
        self.metrics.log_value(LEARNER_RESTARTS, counters.learner_restarts, window=1)
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
