"""VGF's greedy action with the behavior noise as an input: what the endpoint runs and what ``export`` writes.

The noise ``[B, N, act_dim]`` is an argument, so the same observation and noise give the same action on every
path (the module, the endpoint, a TorchScript or ONNX file). Actions come out in the env's own action box (the
agent works in [-1, 1] inside; ``vgf_ray.data.action_box``), with the aggregated Q of the chosen particle.
"""

from __future__ import annotations

import torch
from torch import nn

from vgf_ray.core.fused_acting import (
    FusedSettings,
    LayerPack,
    WeightPack,
    best_particle,
    fused_act,
    fused_settings,
    pack_weights,
)

PACK_TENSORS = ("critic_obs", "critic_act", "critic_act_t", "critic_head_t", "behavior_obs", "behavior_act",
                "behavior_time")
LAYER_TENSORS = ("weight", "bias", "ln_weight", "ln_bias")


def greedy_action(pack: WeightPack, settings: FusedSettings, flow_steps: int, obs: torch.Tensor,
                  noise: torch.Tensor, steps: int, step_size: float, row_steps: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(actions [B, d] in [-1, 1], Q [B])``: the particle with the highest aggregated Q per state; row ``i``
    moved ``row_steps[i]`` steps where given (``steps`` their maximum)."""
    x, q = fused_act(pack, obs, noise, steps, step_size, flow_steps, settings, row_steps=row_steps)
    return best_particle(x, q)


def to_env_box(action: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> the env's ``[low, high]`` (``RescaleAction``'s map, so the env sees what evaluation sends)."""
    return low + (action + 1.0) * 0.5 * (high - low)


class ActingFunction(nn.Module):
    """``forward(obs [B, o], noise [B, N, d]) -> (action [B, d], q [B])`` at one fixed budget, with the weights of
    one moment packed as buffers: a standalone function of tensors, traceable and exportable."""

    def __init__(self, nets, steps: int, step_size: float, action_low, action_high):
        super().__init__()
        pack = pack_weights(nets, torch.float32)
        self.layout = _layout(pack)
        for name, tensor in _flatten(pack).items():
            self.register_buffer(name, tensor.detach().clone().float())
        self.register_buffer("action_low", torch.as_tensor(action_low, dtype=torch.float32))
        self.register_buffer("action_high", torch.as_tensor(action_high, dtype=torch.float32))
        self.settings, self.flow_steps = fused_settings(nets, portable=True), nets.hp.bc_flow_steps
        self.steps, self.step_size = int(steps), float(step_size)

    def forward(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pack = _unflatten(self.layout, dict(self.named_buffers()))
        action, q = greedy_action(pack, self.settings, self.flow_steps, obs.float(), noise.float(), self.steps,
                                  self.step_size)
        return to_env_box(action, self.action_low, self.action_high), q


def _flatten(pack: WeightPack) -> dict[str, torch.Tensor]:
    """Every tensor of a pack under a buffer name (``critic_0_weight``, ``behavior_obs``, ...)."""
    out = {f"{group}_{i}_{field}": getattr(layer, field)
           for group in ("critic", "behavior") for i, layer in enumerate(getattr(pack, group))
           for field in LAYER_TENSORS if getattr(layer, field) is not None}
    return out | {field: getattr(pack, field) for field in PACK_TENSORS}


def _layout(pack: WeightPack) -> dict[str, list[list[str]]]:
    """Which optional fields each layer has, to rebuild the pack from buffers."""
    return {group: [[f for f in LAYER_TENSORS[2:] if getattr(layer, f) is not None] for layer in getattr(pack, group)]
            for group in ("critic", "behavior")}


def _unflatten(layout: dict[str, list[list[str]]], buffers: dict[str, torch.Tensor]) -> WeightPack:
    groups = {group: [LayerPack(*(buffers[f"{group}_{i}_{f}"] if f in ("weight", "bias", *fields) else None
                                  for f in LAYER_TENSORS))
                      for i, fields in enumerate(layers)] for group, layers in layout.items()}
    return WeightPack(critic=groups["critic"], behavior=groups["behavior"], version=(),
                      **{k: buffers[k] for k in PACK_TENSORS})
