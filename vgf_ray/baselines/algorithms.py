"""RLlib's BC, IQL and CQL as experiments of vgf_ray: VGF's counters, phases, evaluation and result keys.

Each baseline is RLlib's own algorithm class with a mixin that gives it what the run loop, Tune, MLflow and the
reports read from VGF: ``vgf_counters``, ``phase()``, ``budget_values()``, the ``num_grad_steps_lifetime`` and
``phase`` results, and an evaluation reported as ``evaluation/budget_0/{success,return}``: a baseline acts with
its policy as is, which is what budget 0 (no transport) means for VGF's rows. Training runs ``offline_steps``
gradient steps; ``data_pipeline`` picks where minibatches come from (see ``vgf_ray.baselines.learners``).
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.bc import BC, BCConfig
from ray.rllib.algorithms.cql import CQL, CQLConfig
from ray.rllib.algorithms.iql import IQL, IQLConfig
from ray.rllib.utils.annotations import override

from vgf_ray.baselines import learners
from vgf_ray.metrics import (
    BASELINE_BUDGETS,
    PHASE_OFFLINE,
)
from vgf_ray.rllib.compat import config_value_error, restore_state_only, set_despite_freeze
from vgf_ray.rllib.evaluation import evaluate_policy
from vgf_ray.rllib.shared import OfflineDataAlgorithm, OfflineDataConfig

DATA_PIPELINES = ("in_memory", "rllib")  # vgf_ray's replay sampling, or RLlib's ray.data offline pipeline


class BaselineConfigMixin(OfflineDataConfig):
    """The settings a baseline shares with ``VGFConfig``: dataset, step counts, evaluation at budget 0."""

    def _init_baseline(self) -> None:
        self.init_offline_data(BASELINE_BUDGETS, evaluate_policy)
        self.data_pipeline = "in_memory"
        self.eval_step_size = 0.0  # no transport: the step size only labels plots
        self.clip_actions = True  # a Gaussian BC policy's mean may leave the action box
        # One training_step per train(): SAC-derived CQL otherwise repeats it until 100 env steps are sampled,
        # which an offline run never does.
        self.min_sample_timesteps_per_iteration = 0
        self.min_train_timesteps_per_iteration = 0
        self.min_time_s_per_iteration = None

    def planned_iterations(self) -> int | None:
        if self.offline_steps is None:
            return None
        return -(-self.offline_steps // self.updates_per_iteration)

    def budget_defaults(self) -> dict[str, Any]:
        return {}  # no transport budget and no schedule

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        return getattr(learners, self.LEARNER_CLASS)

    @override(AlgorithmConfig)
    def validate(self) -> None:
        super().validate()
        if self.data_pipeline not in DATA_PIPELINES:
            config_value_error(self, f"training.data_pipeline={self.data_pipeline!r} is not one of {DATA_PIPELINES}")


class BaselineAlgorithm(OfflineDataAlgorithm):
    """Offline training in ``updates_per_iteration`` chunks up to ``offline_steps``, with VGF's result keys."""

    def budget_values(self) -> dict[str, Any]:
        return {}

    @override(Algorithm)
    def training_step(self) -> None:
        config, counters = self.config, self.vgf_counters
        phase = self.phase()
        if phase == PHASE_OFFLINE:
            steps = self.offline_chunk()
            if config.data_pipeline == "rllib":
                super().training_step()  # RLlib's own: dataset_num_iters_per_learner updates from ray.data
                steps = config.dataset_num_iters_per_learner
            else:
                self._send_dataset_to_learners()
                start = counters.grad_steps
                self._learner_round(lambda learner, n=steps, s=start: learner.run_baseline_updates(n, s))
            counters.grad_steps += steps  # evaluation runners take the new weights in RLlib's evaluate()
        self.log_run_counters(phase)

    @override(Algorithm)
    def restore_from_path(self, path, *args, **kwargs) -> None:
        """RLlib's Algorithm version syncs weights to the training EnvRunners afterwards, which an offline
        algorithm does not have (it fails there); the evaluation runners take the weights in ``evaluate()``."""
        restore_state_only(self, path, *args, **kwargs)



class BaselineBC(BaselineAlgorithm, BC):
    @classmethod
    @override(BC)
    def get_default_config(cls) -> BaselineBCConfig:
        return BaselineBCConfig()


class BaselineIQL(BaselineAlgorithm, IQL):
    @classmethod
    @override(IQL)
    def get_default_config(cls) -> BaselineIQLConfig:
        return BaselineIQLConfig()


class BaselineCQL(BaselineAlgorithm, CQL):
    @classmethod
    @override(CQL)
    def get_default_config(cls) -> BaselineCQLConfig:
        return BaselineCQLConfig()


class BaselineBCConfig(BaselineConfigMixin, BCConfig):
    LEARNER_CLASS = "BCLearner"

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or BaselineBC)
        self._init_baseline()


class BaselineIQLConfig(BaselineConfigMixin, IQLConfig):
    LEARNER_CLASS = "IQLLearner"

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or BaselineIQL)
        self._init_baseline()

    @override(IQLConfig)
    def validate(self) -> None:
        """IQL inherits MARWIL's check that ``beta`` lies in [0, 1] (MARWIL's mixing weight); for IQL it is the
        advantage temperature, which FQL sets to 10 on OGBench manipulation. Only that bound is skipped."""
        if not isinstance(self.beta, int | float) or self.beta < 0:
            config_value_error(self, f"training.iql.beta (the advantage temperature) must be >= 0, got {self.beta!r}")
        beta = self.beta
        set_despite_freeze(self, "beta", min(float(beta), 1.0))
        try:
            super().validate()
        finally:
            set_despite_freeze(self, "beta", beta)


class BaselineCQLConfig(BaselineConfigMixin, CQLConfig):
    LEARNER_CLASS = "CQLLearner"

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or BaselineCQL)
        self._init_baseline()
        # SAC's validation wants the new stack's replay type even offline; the learners never fill it.
        self.replay_buffer_config = {"type": "EpisodeReplayBuffer", "capacity": 1}


CONFIG_CLASSES = {"bc": BaselineBCConfig, "iql": BaselineIQLConfig, "cql": BaselineCQLConfig}
