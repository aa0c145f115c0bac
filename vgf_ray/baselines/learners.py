"""RLlib's BC, IQL and CQL learners, fed from the in-memory replay VGF trains from.

The losses, modules, optimizers and target-network rules are RLlib's own (``MARWILTorchLearner`` with beta 0,
``IQLTorchLearner``, ``CQLTorchLearner``). What changes is only where minibatches come from: RLlib's offline
pipeline turns every parquet row into a one-step episode and runs its connectors over it, which here managed
about one IQL update per second (docs: Baselines); these learners sample uniform minibatches from the same
``OfflineOnlineReplay`` as VGF and call RLlib's ``_update`` and ``after_gradient_based_update`` per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.cql.torch.cql_torch_learner import CQLTorchLearner
from ray.rllib.algorithms.iql.torch.iql_torch_learner import IQLTorchLearner
from ray.rllib.algorithms.marwil.torch.marwil_torch_learner import MARWILTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import Learner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from vgf_ray.data.replay import OfflineOnlineReplay
from vgf_ray.metrics import MODULE_ID
from vgf_ray.rllib.compat import learner_device, learner_gradient_step
from vgf_ray.rllib.shared import OfflineDataLearner, log_update_round


def rllib_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A replay minibatch under RLlib's column names (``terminateds`` from VGF's masks)."""
    return {Columns.OBS: batch["observations"], Columns.ACTIONS: batch["actions"],
            Columns.REWARDS: batch["rewards"], Columns.NEXT_OBS: batch["next_observations"],
            Columns.TERMINATEDS: batch["masks"] == 0}


class InMemoryUpdates(OfflineDataLearner, Learner):
    """``run_baseline_updates``: RLlib gradient steps on minibatches of the experiment's offline dataset."""

    rng_stream = 13

    @override(Learner)
    def build(self) -> None:
        super().build()
        self.init_sampling()

    @override(OfflineDataLearner)
    def install_offline_data(self, data: dict[str, np.ndarray], reward_scale: float = 1.0) -> int:
        """The replay from transitions the driver sent (remote learners may sit on nodes without the file)."""
        self._buffer = OfflineOnlineReplay(data, learner_device(self), 1, "iql", 0.0)
        return len(data["observations"])

    def run_baseline_updates(self, num_steps: int, start_step: int = 0) -> dict[str, Any]:
        """``num_steps`` updates, the first being the run's gradient step ``start_step``; returns reduced metrics."""
        size = self.config.train_batch_size_per_learner
        for i in range(num_steps):
            batch = rllib_batch(self.buffer.sample(size, self.rng))
            learner_gradient_step(self, {MODULE_ID: batch})
            # Target networks (IQL, CQL) and learning-rate schedules step on this counter, once per update.
            self.after_gradient_based_update(timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: start_step + i + 1})
        log_update_round(self.metrics, num_steps, size)
        return self.metrics.reduce()


class BCLearner(InMemoryUpdates, MARWILTorchLearner):
    """RLlib's BC loss (MARWIL with beta 0: the negative log-likelihood of the data's actions)."""


class IQLLearner(InMemoryUpdates, IQLTorchLearner):
    """RLlib's IQL: expectile value loss, TD critic loss, advantage-weighted actor loss."""


class CQLLearner(InMemoryUpdates, CQLTorchLearner):
    """RLlib's CQL: SAC with the conservative penalty on sampled actions."""
