"""``VGFConfig``: an RLlib AlgorithmConfig with every VGF knob, a dataset spec and budget-wise evaluation."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from vgf_ray.core.hparams import VGFHyperParams
from vgf_ray.core.schedule import SCHEDULE_KEYS, BudgetSchedule, check_value
from vgf_ray.data.spec import DatasetSpec
from vgf_ray.errors import ConfigError
from vgf_ray.rllib.shared import EnvChoiceConfig

HPARAM_KEYS = tuple(f.name for f in fields(VGFHyperParams))
EXTRA_KEYS = ("dataset", "updates_per_iteration", "eval_budgets", "eval_step_size", "exploration_steps",
              "exploration_selection", "offline_steps", "online_env_steps", "utd_ratio", "start_training",
              "replay_style", "online_fraction", "online_buffer_capacity", "rollout_steps_per_iteration",
              "checkpoint_replay", "budget_schedule", "exploration_step_size", "divergence_q_factor",
              "async_sampling", "eval_parallel_episodes")


class VGFConfig(EnvChoiceConfig):
    """Build with ``VGFConfig().environment(...).training(num_particles=10, ...).build()``."""

    def __init__(self, algo_class=None):
        from vgf_ray.envs import VGFEnv
        from vgf_ray.rllib.algorithm import VGF
        from vgf_ray.rllib.evaluation import evaluate_budgets

        super().__init__(algo_class=algo_class or VGF)
        for key, value in VGFHyperParams().to_dict().items():
            setattr(self, key, value)
        self.dataset: dict[str, Any] = DatasetSpec().to_dict()  # the offline data (the `dataset` section's keys)
        self.updates_per_iteration = 1000  # gradient steps per train() call in the offline phase
        self.eval_budgets: list[int] = [0, 1, 2, 3]  # test-time transport steps L evaluated every round
        self.eval_step_size: float | None = None  # None: the training step size vgf_lr
        # (episode, budget) rows an evaluation runner plays at once (None: its whole share of the round)
        self.eval_parallel_episodes: int | None = None
        # Offline-to-online (spec 2.8). offline_steps=None: offline training only, forever.
        self.offline_steps: int | None = None
        self.online_env_steps = 0  # env steps collected by the EnvRunners after the offline phase
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
        self.train_batch_size_per_learner = 256
        self.lr = None  # per-optimizer rates: value_lr / actor_lr
        self.num_env_runners = 0
        self.evaluation_interval = 1
        self.evaluation_duration = 10
        self.evaluation_duration_unit = "episodes"
        self.custom_evaluation_function = evaluate_budgets
        self.env = VGFEnv
        self.env_config = {"ogbench": "cube-single-play", "success_timing": "post"}

    def training(self, **kwargs) -> VGFConfig:
        """Set VGF knobs (see ``VGFHyperParams`` and ``EXTRA_KEYS``) and any standard RLlib training key."""
        for key in HPARAM_KEYS + EXTRA_KEYS:
            if key in kwargs:
                value = kwargs.pop(key)
                if value is not NotProvided:
                    setattr(self, key, value)
        super().training(**kwargs)
        return self

    def planned_iterations(self) -> int | None:
        """train() calls needed for both phases (None for open-ended offline training)."""
        if self.offline_steps is None:
            return None
        offline = -(-self.offline_steps // self.updates_per_iteration)
        return offline + -(-self.online_env_steps // self.rollout_steps_per_iteration)

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

    def validate(self) -> None:
        self.hyperparams()  # raises ValueError naming the bad key
        DatasetSpec.from_dict(self.dataset)
        budgets = list(self.eval_budgets)
        if not budgets or any(not isinstance(b, int) or b < 0 for b in budgets):
            raise ConfigError(f"eval_budgets must be a non-empty list of integers >= 0, got {self.eval_budgets!r}")
        if not isinstance(self.updates_per_iteration, int) or self.updates_per_iteration < 1:
            raise ConfigError(f"updates_per_iteration must be an integer >= 1, got {self.updates_per_iteration!r}")
        if not isinstance(self.exploration_steps, int) or self.exploration_steps < 0:
            raise ConfigError(f"exploration_steps must be an integer >= 0, got {self.exploration_steps!r}")
        self.schedule()  # raises ScheduleError naming the bad entry
        if self.exploration_step_size is not None:
            check_value("exploration_step_size", self.exploration_step_size, "exploration_step_size")
        if self.eval_parallel_episodes is not None and (not isinstance(self.eval_parallel_episodes, int)
                                                        or self.eval_parallel_episodes < 1):
            raise ConfigError(f"eval_parallel_episodes must be None or an integer >= 1, got "
                              f"{self.eval_parallel_episodes!r}")
        if self.eval_step_size is not None and self.eval_step_size < 0:
            raise ConfigError(f"eval_step_size must be >= 0, got {self.eval_step_size!r}")
        if self.exploration_selection not in ("max", "softmax", "random"):
            raise ConfigError(f"exploration_selection={self.exploration_selection!r} is not one of "
                             "('max', 'softmax', 'random')")
        from vgf_ray.data.replay import REPLAY_STYLES

        if self.replay_style not in REPLAY_STYLES:
            raise ConfigError(f"replay_style={self.replay_style!r} is not one of {REPLAY_STYLES}")
        if self.online_fraction is not None and not 0.0 <= self.online_fraction <= 1.0:
            raise ConfigError(f"online_fraction must be in [0, 1], got {self.online_fraction!r}")
        for key in ("online_env_steps", "start_training"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 0:
                raise ConfigError(f"{key} must be an integer >= 0, got {getattr(self, key)!r}")
        for key in ("online_buffer_capacity", "rollout_steps_per_iteration"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {getattr(self, key)!r}")
        if self.offline_steps is not None and (not isinstance(self.offline_steps, int) or self.offline_steps < 0):
            raise ConfigError(f"offline_steps must be None or an integer >= 0, got {self.offline_steps!r}")
        if self.online_env_steps and self.offline_steps is None:
            raise ConfigError("online_env_steps > 0 needs offline_steps (an integer; 0 = online only)")
        if not isinstance(self.async_sampling, bool):
            raise ConfigError(f"async_sampling must be true or false, got {self.async_sampling!r}")
        if self.utd_ratio <= 0:
            raise ConfigError(f"utd_ratio must be > 0, got {self.utd_ratio!r}")
        if self.divergence_q_factor is not None and not (isinstance(self.divergence_q_factor, int | float)
                                                         and self.divergence_q_factor > 0):
            raise ConfigError(f"divergence_q_factor must be None or > 0, got {self.divergence_q_factor!r}")
        if self.grad_clip_norm is not None:
            self.grad_clip, self.grad_clip_by = self.grad_clip_norm, "global_norm"
        super().validate()

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from vgf_ray.rllib.module import VGFTorchRLModule

        return RLModuleSpec(module_class=VGFTorchRLModule)

    def get_default_learner_class(self):
        from vgf_ray.rllib.learner import VGFTorchLearner

        return VGFTorchLearner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return {**super()._model_config_auto_includes, "vgf": self.hyperparams().to_dict(),
                "inference_steps": self.train_vgf_steps, "exploration_steps": self.exploration_steps,
                "exploration_step_size": self.exploration_step_size,
                "exploration_selection": self.exploration_selection}
