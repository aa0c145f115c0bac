"""VGF as a TorchRLModule: acting runs the budgeted particle transport; forward_train computes VGF's losses."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override

from vgf_ray.core.hparams import VGFHyperParams
from vgf_ray.core.transport import TransportBudget
from vgf_ray.core.vgf import VGFNetworks, group_losses
from vgf_ray.errors import ConfigError

TARGET_CRITIC = "nets.target_critic"  # the one part acting never uses


class VGFTorchRLModule(TorchRLModule, InferenceOnlyAPI):
    """No policy network: actions come from behavior samples moved along the critic's action-gradient.

    Acting needs the behavior flow and the online critic (and A-VGF's gradient network), not the target critic:
    EnvRunners build the module ``inference_only`` without it, and weight syncs leave it out.

    ``model_config``: ``{"vgf": VGFHyperParams dict, "inference_steps": int, "exploration_steps": int,
    "exploration_step_size": float | None, "exploration_selection": str}``. The budgets can be changed at any time
    with ``set_budget``.
    """

    @override(RLModule)
    def setup(self) -> None:
        cfg = self.model_config or {}
        self.hp = VGFHyperParams.from_dict(cfg.get("vgf", {}))
        obs_space, act_space = self.observation_space, self.action_space
        if obs_space is None or len(obs_space.shape) != 1:
            raise ConfigError(f"VGF needs a 1-D Box observation space, got {obs_space}")
        if not (np.allclose(act_space.low, -1.0) and np.allclose(act_space.high, 1.0)):
            raise ConfigError(f"VGF needs the [-1, 1] action box (rescale the env's actions), got {act_space}")
        self.nets = VGFNetworks(obs_space.shape[0], act_space.shape[0], self.hp)
        if self.inference_only:  # here, not by RLlib: its removal of a nested attribute deletes the wrong one
            del self.nets.target_critic
        inference_steps = int(cfg.get("inference_steps", self.hp.train_vgf_steps))
        self.inference_budget = TransportBudget(inference_steps, self.hp.vgf_lr)
        exploration_step_size = cfg.get("exploration_step_size")
        self.exploration_budget = TransportBudget(
            int(cfg.get("exploration_steps", 0)), self.hp.vgf_lr if exploration_step_size is None
            else float(exploration_step_size))
        self.exploration_selection = cfg.get("exploration_selection", "max")
        self.train_generator: torch.Generator | None = None

    def set_budget(self, steps: int, step_size: float | None = None, exploration: bool = False) -> None:
        """Change the test-time (or exploration) transport budget without retraining."""
        budget = TransportBudget(int(steps), self.hp.vgf_lr if step_size is None else float(step_size))
        if exploration:
            self.exploration_budget = budget
        else:
            self.inference_budget = budget

    def act_rows(self, obs: torch.Tensor, row_steps: list[int], step_size: float | None = None) -> torch.Tensor:
        """Greedy actions for a batch, row ``i`` moved ``row_steps[i]`` steps: a whole evaluation round (every
        episode at every budget) in one call."""
        size = self.hp.vgf_lr if step_size is None else float(step_size)
        with torch.no_grad():
            return self.nets.act(obs.float(), TransportBudget.per_row(row_steps, size))

    def apply_budget_values(self, values: dict[str, Any]) -> None:
        """Acting side of a schedule or PBT mutation: transport alpha and the exploration budget."""
        self.nets.set_budget_values(vgf_alpha=values["vgf_alpha"])
        self.set_budget(values["exploration_steps"], values["exploration_step_size"], exploration=True)

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return [TARGET_CRITIC]

    @override(TorchRLModule)
    def forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        """TorchRLModule's version switches the whole module tree to eval mode and back on every call, a fixed
        cost of acting; VGF has no layer that behaves differently in eval mode, so acting skips it."""
        with torch.no_grad():
            return self._forward_inference(batch, **kwargs)

    @override(TorchRLModule)
    def forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            return self._forward_exploration(batch, **kwargs)

    def _obs(self, batch: dict[str, Any]) -> torch.Tensor:
        return batch[Columns.OBS].float()

    @override(RLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTIONS: self.nets.act(self._obs(batch), self.inference_budget)}

    @override(RLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        actions = self.nets.act(self._obs(batch), self.exploration_budget, self.exploration_selection)
        return {Columns.ACTIONS: actions}

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        """All VGF losses for one batch (computed inside forward so DDP sees a forward pass)."""
        losses, metrics = group_losses(self.nets, batch, self.train_generator)
        return {"losses": losses, "metrics": metrics}
