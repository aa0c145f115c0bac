"""``VGF``: an RLlib Algorithm whose training step runs many in-memory VGF updates on every learner."""

from __future__ import annotations

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.metrics import LEARNER_RESULTS

from vgf_ray.data.spec import DatasetSpec, prepare_dataset


class VGF(Algorithm):
    """Value Gradient Flow. Offline: ``updates_per_iteration`` gradient steps per ``train()`` call."""

    @classmethod
    def get_default_config(cls):
        from vgf_ray.rllib.config import VGFConfig

        return VGFConfig()

    def setup(self, config) -> None:
        # Generate/resolve the dataset once on the driver so learners only read it.
        spec = prepare_dataset(DatasetSpec.from_dict(config.dataset))
        if config.dataset != spec.to_dict():
            config._is_frozen = False
            config.dataset = spec.to_dict()
            config.freeze()
        super().setup(config)

    def training_step(self) -> None:
        num_steps = self.config.updates_per_iteration
        results = self.learner_group.foreach_learner(lambda learner, n=num_steps: learner.run_vgf_updates(n))
        learner_results = []
        for result in results:
            if not result.ok:
                raise result.get()
            learner_results.append(result.get())
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        self.metrics.log_value("num_grad_steps_lifetime", num_steps, reduce="lifetime_sum")
        # Keep the EnvRunners' modules (and so `get_module()`) on the learner's latest weights.
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
