"""VGF's TorchLearner: samples minibatches from an in-memory replay and runs many gradient steps per call.

RLlib's ``update()`` path (episodes -> learner connectors -> minibatch iterator) costs far more than a VGF
step on small data, so ``run_vgf_updates`` feeds ``_update`` directly; optimizers, gradient clipping, DDP and
checkpointing stay RLlib's. Metrics: ``critic/...``, ``bc/...`` (and ``grad_net/...`` for A-VGF), and the
transport budget and learning rates applied (``budget/...``: the mean over the round's steps, so a schedule change
inside a round shows as a fraction).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from vgf_ray.core.divergence import DivergenceMonitor, q_bound
from vgf_ray.core.schedule import LEARNER_KEYS
from vgf_ray.core.vgf import OPTIMIZER_LR_KEYS, param_groups, train_step
from vgf_ray.data.replay import OfflineOnlineReplay
from vgf_ray.metrics import BUDGET_METRICS, MODULE_ID
from vgf_ray.rllib.compat import learner_device, learner_gradient_step, mark_weights_updated, set_optimizer_lr
from vgf_ray.rllib.shared import OfflineDataLearner, log_update_round


class VGFTorchLearner(OfflineDataLearner, TorchLearner):
    """Critic, behavior-flow (and A-VGF gradient-net) optimizers plus the Polyak target rule."""

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        self.init_sampling()
        self._pending_online_state: dict | None = None  # restored online replay waiting for the offline data
        self._reward_scale = 1.0  # the dataset's reward factor (normalize_rewards), set with the offline data

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id: str, config=None) -> None:
        module = self._module[module_id].unwrapped()
        for name, params in param_groups(module.nets).items():
            self.register_optimizer(module_id=module_id, optimizer_name=name, optimizer=torch.optim.Adam(params),
                                    params=params, lr_or_lr_schedule=getattr(config, OPTIMIZER_LR_KEYS[name]))

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id: str, config=None, batch: dict, fwd_out: dict) -> torch.Tensor:
        return sum(fwd_out["losses"].values())

    @override(OfflineDataLearner)
    def install_offline_data(self, data: dict[str, np.ndarray], reward_scale: float = 1.0) -> int:
        """Build the replay from transitions the driver sent (remote learners may sit on nodes without the
        dataset file); a restored online replay is put back into it. Returns the number of offline transitions."""
        config = self.config
        self._reward_scale = float(reward_scale)
        self._buffer = OfflineOnlineReplay(data, learner_device(self), config.online_buffer_capacity,
                                           config.replay_style, config.online_fraction)
        self._max_abs_reward = float(np.abs(np.asarray(data["rewards"], np.float64)).max(initial=0.0))
        if self._pending_online_state is not None:
            self._buffer.online.load_state_dict(self._pending_online_state)
            self._pending_online_state = None
        return len(data["observations"])

    def add_online_transitions(self, data: dict[str, np.ndarray]) -> int:
        """Append EnvRunner transitions to the online FIFO, rewards on the dataset's scale; returns how many online
        transitions are held."""
        buffer = self.buffer  # installs the offline data (and its reward scale) on first use
        if self._reward_scale != 1.0:
            data = {**data, "rewards": (np.asarray(data["rewards"]) * self._reward_scale).astype(np.float32)}
        buffer.add_online(data)
        self._max_abs_reward = max(self._max_abs_reward, float(np.abs(np.asarray(data["rewards"])).max(initial=0.0)))
        return self.buffer.online.size

    @property
    def vgf_module(self):
        return self.module[MODULE_ID].unwrapped()

    def apply_budget_values(self, values: dict[str, Any]) -> None:
        """Put scheduled values in force: L_train, step size and alpha in the networks, the optimizers' rates."""
        self.vgf_module.nets.set_budget_values(values["train_vgf_steps"], values["vgf_lr"], values["vgf_alpha"])
        for name, optimizer in self.get_optimizers_for_module(MODULE_ID):
            set_optimizer_lr(self, optimizer, values[OPTIMIZER_LR_KEYS[name]])

    def run_vgf_updates(self, num_steps: int, start_step: int = 0) -> dict[str, Any]:
        """``num_steps`` VGF gradient steps on uniformly sampled minibatches, the first being the run's gradient step
        ``start_step`` (a budget schedule is applied at every step); returns reduced metrics."""
        module, config = self.vgf_module, self.config
        module.train_generator = self.rng
        # RLlib's hook re-applies the configured learning rates: a restored optimizer (PBT exploit, --resume with a
        # changed value_lr/actor_lr) otherwise keeps the rate saved in its checkpoint state.
        self.after_gradient_based_update(timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: start_step})
        schedule, defaults = config.schedule(), config.budget_defaults()
        applied: dict[str, float] = dict.fromkeys(LEARNER_KEYS, 0.0)
        values = schedule.values_at(defaults, start_step)
        self.apply_budget_values(values)
        totals: dict[str, torch.Tensor] = {}
        buffer = self.buffer
        monitor = DivergenceMonitor(q_bound(self._max_abs_reward, config.discount, config.divergence_q_factor))
        for i in range(num_steps):
            if schedule and i:
                values = schedule.values_at(defaults, start_step + i)
                self.apply_budget_values(values)
            for key in LEARNER_KEYS:
                applied[key] += values[key]
            batch = buffer.sample(config.train_batch_size_per_learner, self.rng)
            step = lambda b=batch: learner_gradient_step(self, {MODULE_ID: b})[0][MODULE_ID]["metrics"]  # noqa: E731
            metrics = train_step(module.nets, step, config.tau, config.target_update_before_step)
            monitor.observe(metrics, start_step + i + 1)
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value.detach()
        monitor.check()  # one sync per round: a NaN loss or exploding Q stops the run here
        mark_weights_updated(self)
        for key, total in totals.items():
            self.metrics.log_value((MODULE_ID, key), float(total) / num_steps, window=1)
        for key, total in applied.items():
            self.metrics.log_value((MODULE_ID, BUDGET_METRICS[key]), total / num_steps, window=1)
        log_update_round(self.metrics, num_steps, config.train_batch_size_per_learner)
        return self.metrics.reduce()

    @override(TorchLearner)
    def get_state(self, *args, **kwargs) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        if self.config.checkpoint_replay:
            if self._buffer is not None and self._buffer.online.size:
                state["vgf_online_replay"] = self._buffer.online.state_dict()
            elif self._pending_online_state is not None:
                state["vgf_online_replay"] = self._pending_online_state  # restored, not yet used: keep it
        return state

    @override(TorchLearner)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "vgf_online_replay" in state:
            if self._buffer is None:
                self._pending_online_state = state["vgf_online_replay"]
            else:
                self._buffer.online.load_state_dict(state["vgf_online_replay"])
