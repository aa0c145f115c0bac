"""Flow-matching behavior model: the reference distribution mu(a|s) that VGF's particles start from.

Conditional flow matching on the linear path x_t = (1-t) x0 + t a with velocity target a - x0, sampled by
forward Euler with K steps from Gaussian noise and clipped to the action box (spec 2.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vgf_ray.core.networks import MLP


class FlowBehaviorModel(nn.Module):
    """Velocity field v(s, x, t) with a flow-matching loss and an Euler sampler."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_dims: Sequence[int] = (512, 512, 512, 512),
        layer_norm: bool = False,
        flow_steps: int = 10,
        action_low: float = -1.0,
        action_high: float = 1.0,
    ):
        super().__init__()
        self.obs_dim, self.act_dim, self.flow_steps = obs_dim, act_dim, flow_steps
        self.action_low, self.action_high = action_low, action_high
        self.velocity_net = MLP(obs_dim + act_dim + 1, hidden_dims, act_dim, layer_norm=layer_norm)

    def velocity(self, obs: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.velocity_net(torch.cat([obs, x, t], dim=-1))

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared error between predicted and straight-line velocity, one noise sample per transition."""
        x0 = torch.randn(actions.shape, generator=generator, device=actions.device, dtype=actions.dtype)
        t = torch.rand((*actions.shape[:-1], 1), generator=generator, device=actions.device, dtype=actions.dtype)
        x_t = (1.0 - t) * x0 + t * actions
        return (self.velocity(obs, x_t, t) - (actions - x0)).pow(2).mean()

    @torch.no_grad()
    def sample(
        self,
        obs: torch.Tensor,
        num_samples: int,
        generator: torch.Generator | None = None,
        flow_steps: int | None = None,
    ) -> torch.Tensor:
        """Draw ``num_samples`` actions per state: ``obs [B, obs_dim] -> [B, num_samples, act_dim]``."""
        obs_rep = obs.unsqueeze(-2).expand(*obs.shape[:-1], num_samples, obs.shape[-1])
        noise = torch.randn((*obs_rep.shape[:-1], self.act_dim), generator=generator, device=obs.device,
                            dtype=obs.dtype)
        return self.flow(obs_rep, noise, flow_steps)

    @torch.no_grad()
    def flow(self, obs_rep: torch.Tensor, noise: torch.Tensor, flow_steps: int | None = None) -> torch.Tensor:
        """The actions the Euler flow carries ``noise [..., act_dim]`` to (zero noise: the flow's central action)."""
        steps = self.flow_steps if flow_steps is None else flow_steps
        x = noise
        t = torch.empty((*x.shape[:-1], 1), device=x.device, dtype=x.dtype)
        for i in range(steps):
            t.fill_(i / steps)
            x = x + self.velocity(obs_rep, x, t).to(x.dtype) / steps
        return x.clamp(self.action_low, self.action_high)
