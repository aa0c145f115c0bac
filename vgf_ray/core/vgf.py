"""VGF's networks, losses and acting rule in plain PyTorch (no Ray): the behavior flow, the twin critic with
its Polyak target, and (A-VGF only) the learned action-gradient network."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from vgf_ray.core.auto_acting import AutoActor
from vgf_ray.core.flow_bc import FlowBehaviorModel
from vgf_ray.core.fused_acting import ACTING_COMPILE_OPTIONS, FusedActor
from vgf_ray.core.hparams import AUTO_PATH, VGFHyperParams
from vgf_ray.core.networks import MLP, EnsembleMLP
from vgf_ray.core.transport import (
    TransportBudget,
    TransportSettings,
    aggregate_ensemble,
    q_action_gradient,
    select_particle,
    transport_particles,
)
from vgf_ray.metrics import (
    BC_LOSS,
    CRITIC_LOSS,
    CRITIC_Q_MAX,
    CRITIC_Q_MEAN,
    CRITIC_Q_MIN,
    CRITIC_TARGET_MEAN,
    GRAD_NET_LOSS,
    GRAD_NET_TARGET_NORM,
)

Batch = dict[str, torch.Tensor]


def auto_target_transport(device: torch.device, bf16: bool) -> str:
    """``target_transport: auto``: the TD target's faster transport where it was measured faster.

    On a GPU the fused path removes kernel launches (paper config on an H200: 1.5x eager's gradient steps/s in
    fp32 and in bf16); on a CPU it pays in fp32 through oneDNN, while in bf16 its casts cost more than autograd."""
    if device.type == "cuda":
        return "fused"
    return "fused" if device.type == "cpu" and not bf16 and torch.backends.mkldnn.is_available() else "eager"


class VGFNetworks(nn.Module):
    """All trainable parts of VGF plus the target critic; methods give the losses and the acting rule."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hp: VGFHyperParams,
        action_low: float = -1.0,
        action_high: float = 1.0,
    ):
        super().__init__()
        hp.validate()
        self.hp, self.obs_dim, self.act_dim = hp, obs_dim, act_dim
        self.behavior = FlowBehaviorModel(
            obs_dim, act_dim, hp.actor_hidden_dims, hp.actor_layer_norm, hp.bc_flow_steps, action_low, action_high
        )
        self.critic = EnsembleMLP(hp.num_critics, obs_dim + act_dim, hp.hidden_dims, 1, hp.critic_layer_norm)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.grad_net = (
            MLP(obs_dim + act_dim, hp.hidden_dims, act_dim, layer_norm=True) if hp.variant == "avgf" else None
        )
        self.transport_settings = TransportSettings(
            alpha=hp.vgf_alpha,
            q_agg=hp.vgf_q_agg,
            step_rule=hp.step_rule,
            repulsion=hp.repulsion,
            bandwidth_grad=hp.bandwidth_grad,
            clip_low=action_low,
            clip_high=action_high,
            clip_global_norm=1.0 if hp.variant == "avgf" else None,
        )
        self._fused_actor: FusedActor | AutoActor | None = None  # built on first fused act; not a module, not in state
        self._target_transporter: FusedActor | None = None  # the same for the TD target (its own compiled graph)

    def set_budget_values(self, train_vgf_steps: int | None = None, vgf_lr: float | None = None,
                          vgf_alpha: float | None = None) -> None:
        """Apply scheduled (or mutated) transport values: L_train and step size of the TD target, and alpha of
        every transport. Only the given keys change; the networks are untouched."""
        changes = {k: v for k, v in (("train_vgf_steps", train_vgf_steps), ("vgf_lr", vgf_lr),
                                     ("vgf_alpha", vgf_alpha)) if v is not None and getattr(self.hp, k) != v}
        if not changes:
            return
        self.hp = dataclasses.replace(self.hp, **changes)
        self.hp.validate()
        if "vgf_alpha" in changes:
            self.transport_settings = dataclasses.replace(self.transport_settings, alpha=self.hp.vgf_alpha)

    # ----- evaluation helpers -------------------------------------------------------------------------
    def autocast(self, device: torch.device, bf16: bool | None = None) -> contextlib.AbstractContextManager:
        """bf16 autocast for the sampling/transport paths when ``hp.bf16`` (or the given ``bf16``) is on."""
        if not (self.hp.bf16_on(device) if bf16 is None else bf16):
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Per-member Q, ``[E, *batch]``."""
        net = self.target_critic if target else self.critic
        return net(torch.cat([obs, actions], dim=-1)).squeeze(-1)

    def grad_net_velocity(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        assert self.grad_net is not None
        return self.grad_net(torch.cat([obs, actions], dim=-1))

    def transport(self, obs_rep: torch.Tensor, particles: torch.Tensor, budget: TransportBudget,
                  bf16: bool | None = None) -> torch.Tensor:
        """Move particles with the online critic's action-gradient (or A-VGF's gradient network)."""
        if budget.steps == 0:
            return particles
        velocity_fn = self.grad_net_velocity if self.grad_net is not None else None
        with self.autocast(particles.device, bf16):
            return transport_particles(obs_rep, particles, budget, self.q_values, self.transport_settings, velocity_fn)

    def sample_particles(
        self, obs: torch.Tensor, budget: TransportBudget, generator: torch.Generator | None = None,
        bf16: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """N behavior samples per state moved by ``budget``: returns ``(obs_rep [B,N,o], particles [B,N,d])``."""
        n = self.hp.num_particles
        obs_rep = obs.unsqueeze(-2).expand(*obs.shape[:-1], n, obs.shape[-1])
        with torch.no_grad(), self.autocast(obs.device, bf16):
            x0 = self.behavior.sample(obs, n, generator=generator).float()
        return obs_rep, self.transport(obs_rep, x0, budget, bf16)

    def act(  # no autograd: both paths below run without it
        self,
        obs: torch.Tensor,
        budget: TransportBudget,
        selection: str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """VGF's action for each state ``obs [B, obs_dim] -> [B, act_dim]`` at the given transport budget.

        ``hp.acting`` picks the fused path (same numbers, fewer ops) or the autograd reference (``act_eager``).
        """
        if self.hp.acting != "eager" and self.grad_net is None:
            self._fused_actor = _fused_for(self._fused_actor, self.hp.acting, ACTING_COMPILE_OPTIONS)
            return self._fused_actor.act(self, obs, budget, selection, generator)
        return self.act_eager(obs, budget, selection, generator)

    @torch.no_grad()
    def act_eager(
        self,
        obs: torch.Tensor,
        budget: TransportBudget,
        selection: str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The reference acting rule: behavior samples, autograd transport, best particle by aggregated Q."""
        bf16 = self.hp.acts_in_bf16(obs.device)
        obs_rep, particles = self.sample_particles(obs, budget, generator, bf16)
        with self.autocast(obs.device, bf16):
            q = aggregate_ensemble(self.q_values(obs_rep, particles), self.hp.train_q_agg).float()
        idx = select_particle(q, selection or self.hp.eval_particle_select, self.hp.softmax_temp, generator)
        return particles[torch.arange(particles.shape[0], device=particles.device), idx]

    # ----- losses -------------------------------------------------------------------------------------
    def td_target(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        """y = r + gamma * mask * agg_particles(agg_ensemble(Q_target(s', X))), X moved by L_train steps."""
        hp = self.hp
        if hp.discount == 0.0:  # bandit / reward regression: the bootstrap term vanishes, skip its cost
            return batch["rewards"]
        next_obs, budget = batch["next_observations"], TransportBudget(hp.train_vgf_steps, hp.vgf_lr)
        path = hp.target_transport
        if path == AUTO_PATH:
            path = auto_target_transport(next_obs.device, hp.bf16_on(next_obs.device))
        if path != "eager" and self.grad_net is None:
            self._target_transporter = _fused_for(self._target_transporter, path)
            particles, _ = self._target_transporter.particles(self, next_obs, budget, generator, with_q=False)
            obs_rep = next_obs.unsqueeze(-2).expand(*particles.shape[:-1], next_obs.shape[-1])
        else:
            obs_rep, particles = self.sample_particles(next_obs, budget, generator)
        with torch.no_grad(), self.autocast(particles.device):
            q_next = aggregate_ensemble(self.q_values(obs_rep, particles, target=True), hp.train_q_agg).float()
        q_next = q_next.mean(-1) if hp.train_particle_select == "mean" else q_next.max(-1).values
        return batch["rewards"] + hp.discount * batch["masks"] * q_next

    def critic_loss(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """Sum over ensemble members of the mean squared TD error (spec 2.3), in fp32."""
        target = self.td_target(batch, generator).detach()
        q = self.q_values(batch["observations"], batch["actions"])
        loss = (q - target).pow(2).mean(-1).sum()
        metrics = {CRITIC_LOSS: loss.detach(), CRITIC_Q_MEAN: q.detach().mean(), CRITIC_Q_MAX: q.detach().max(),
                   CRITIC_Q_MIN: q.detach().min(), CRITIC_TARGET_MEAN: target.mean()}
        return loss, metrics

    def behavior_loss(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        loss = self.behavior.loss(batch["observations"], batch["actions"], generator)
        return loss, {BC_LOSS: loss.detach()}

    def grad_net_loss(self, batch: Batch) -> tuple[torch.Tensor, dict]:
        """A-VGF: regress f(s, a) onto grad_a mean_k Q_k(s, a) at dataset actions."""
        target = q_action_gradient(self.q_values, batch["observations"], batch["actions"], "mean").detach()
        if self.hp.q_grad_norm:
            target = target / (target.norm(dim=-1, keepdim=True) + 1e-6)
        pred = self.grad_net_velocity(batch["observations"], batch["actions"])
        loss = (pred - target).pow(2).sum(-1).mean()
        return loss, {GRAD_NET_LOSS: loss.detach(), GRAD_NET_TARGET_NORM: target.norm(dim=-1).mean()}

    @torch.no_grad()
    def update_target(self, tau: float | None = None) -> None:
        """Polyak step target <- tau * online + (1 - tau) * target."""
        tau = self.hp.tau if tau is None else tau
        for target, online in zip(self.target_critic.parameters(), self.critic.parameters()):
            target.lerp_(online, tau)


def _fused_for(current: FusedActor | AutoActor | None, path: str, compile_options: dict | None = None
               ) -> FusedActor | AutoActor:
    """The fused, compiled or auto-choosing transport for an ``ACTING_PATHS`` value, kept while the value stays."""
    if path == AUTO_PATH:
        return current if isinstance(current, AutoActor) else AutoActor(compile_options)
    compile = path == "compiled"
    if isinstance(current, FusedActor) and current.requested_compile == compile:
        return current
    return FusedActor(compile, compile_options)


# Learning rate (hyperparameter name) of each optimizer group.
OPTIMIZER_LR_KEYS = {"critic": "value_lr", "behavior": "actor_lr", "grad_net": "value_lr"}


def param_groups(nets: VGFNetworks) -> dict[str, list[nn.Parameter]]:
    """Parameters per optimizer: critic, behavior flow and (A-VGF) gradient network."""
    groups = {"critic": list(nets.critic.parameters()), "behavior": list(nets.behavior.parameters())}
    if nets.grad_net is not None:
        groups["grad_net"] = list(nets.grad_net.parameters())
    return groups


def group_losses(nets: VGFNetworks, batch: Batch, generator: torch.Generator | None = None) -> tuple[dict, dict]:
    """Loss per optimizer group and the merged metrics for one training batch."""
    critic_loss, metrics = nets.critic_loss(batch, generator)
    bc_loss, bc_metrics = nets.behavior_loss(batch, generator)
    losses = {"critic": critic_loss, "behavior": bc_loss}
    metrics.update(bc_metrics)
    if nets.grad_net is not None:
        losses["grad_net"], grad_metrics = nets.grad_net_loss(batch)
        metrics.update(grad_metrics)
    return losses, metrics


def train_step(nets: VGFNetworks, gradient_step: Callable[[], dict], tau: float | None = None,
               target_update_before_step: bool | None = None) -> dict:
    """One VGF update: ``gradient_step`` (losses, backward, optimizer steps; returns the loss metrics) and the
    Polyak target step, before it (the authors' one-step lag, spec 6.9) or after it (FQL). The RLlib learner and
    ``VGFAgent`` both update through here, so they run the same rule."""
    before = nets.hp.target_update_before_step if target_update_before_step is None else target_update_before_step
    if before:
        nets.update_target(tau)
    metrics = gradient_step()
    if not before:
        nets.update_target(tau)
    return metrics


class VGFAgent:
    """Standalone VGF learner (networks + Adam optimizers): the reference update used by tests and benchmarks.

    The RLlib learner runs the same ``group_losses`` through the same ``train_step``; this class needs no Ray.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hp: VGFHyperParams,
        device: str = "cpu",
        seed: int = 0,
        action_low: float = -1.0,
        action_high: float = 1.0,
    ):
        torch.manual_seed(seed)
        self.hp, self.device = hp, torch.device(device)
        self.nets = VGFNetworks(obs_dim, act_dim, hp, action_low, action_high).to(self.device)
        self.optimizers = {name: torch.optim.Adam(params, lr=getattr(hp, OPTIMIZER_LR_KEYS[name]))
                           for name, params in param_groups(self.nets).items()}
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.num_updates = 0

    def update(self, batch: Batch) -> dict[str, float]:
        metrics = train_step(self.nets, lambda: self._gradient_step(batch))
        self.num_updates += 1
        return {k: float(v) for k, v in metrics.items()}

    def _gradient_step(self, batch: Batch) -> dict:
        losses, metrics = group_losses(self.nets, batch, self.generator)
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        for opt in self.optimizers.values():
            if self.hp.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], self.hp.grad_clip_norm)
            opt.step()
        return metrics

    def act(self, obs: torch.Tensor, steps: int, step_size: float | None = None, selection: str | None = None):
        budget = TransportBudget(steps, self.hp.vgf_lr if step_size is None else step_size)
        return self.nets.act(obs.to(self.device), budget, selection, self.generator)
