"""Particle transport: the SVGD-style value-gradient flow that turns behavior samples into VGF actions.

Follows the authors' ``SVGD_VGF`` (spec 2.4): score G = grad_a Q, RBF kernel with a median-heuristic
bandwidth, velocity phi = (K @ G / alpha + repulsion) / N, applied with a *fresh* Adam on the particles for
every call (so the step is ~step_size per coordinate whatever the scale of Q), clipped after every step.
The transport budget is (steps, step_size); steps == 0 returns the particles unchanged (best-of-N).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vgf_ray.errors import ConfigError

# (obs [B, N, obs_dim], particles [B, N, d]) -> per-member Q [E, B, N]
QFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# (obs, particles) -> velocity [B, N, d]  (A-VGF's learned gradient network)
VelocityFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # optax.adam defaults


@dataclass(frozen=True)
class TransportBudget:
    """How far particles may travel: ``steps`` Adam steps of size ``step_size`` (~ per coordinate).

    ``row_steps`` gives each state of a batch its own number of steps (``steps`` is then their maximum): one call
    acts for rows at different budgets, each row moved exactly as a call at its own budget would move it (rows
    never interact; a row past its budget is frozen while the others go on)."""

    steps: int
    step_size: float
    row_steps: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"transport steps must be >= 0, got {self.steps}")
        if self.step_size < 0:
            raise ConfigError(f"transport step_size must be >= 0, got {self.step_size}")
        if self.row_steps is not None and (min(self.row_steps, default=0) < 0
                                           or max(self.row_steps, default=0) != self.steps):
            raise ConfigError(f"row_steps {self.row_steps} must be >= 0 with maximum steps={self.steps}")

    @classmethod
    def per_row(cls, row_steps: list[int], step_size: float) -> TransportBudget:
        """One budget per row of a batch (all equal: a plain budget)."""
        rows = tuple(int(s) for s in row_steps)
        uniform = len(set(rows)) <= 1
        return cls(max(rows, default=0), step_size, None if uniform else rows)

    def row_tensor(self, rows: int, device: torch.device) -> torch.Tensor | None:
        """``[rows]`` steps per row, or None for a uniform budget; a length mismatch is an error."""
        if self.row_steps is None:
            return None
        if len(self.row_steps) != rows:
            raise ConfigError(f"row_steps has {len(self.row_steps)} entries for a batch of {rows} states")
        return torch.tensor(self.row_steps, device=device)


def freeze_finished_rows(moved: torch.Tensor, previous: torch.Tensor, row_steps: torch.Tensor | None,
                         step: int) -> torch.Tensor:
    """``moved`` where a row's budget reaches ``step``, else the row as it was (``row_steps`` None: ``moved``)."""
    if row_steps is None:
        return moved
    active = (row_steps >= step).view(-1, *([1] * (moved.dim() - 1)))
    return torch.where(active, moved, previous)


def aggregate_ensemble(q: torch.Tensor, how: str) -> torch.Tensor:
    """Reduce the leading ensemble axis with ``min`` (clipped double-Q) or ``mean``."""
    if how == "min":
        return q.min(dim=0).values
    if how == "mean":
        return q.mean(dim=0)
    raise ValueError(f"unknown ensemble aggregation {how!r}; expected 'min' or 'mean'")


def pairwise_sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[B, N, d] x [B, M, d] -> [B, N, M]`` squared distances, exact (no ||x||^2 - 2xy cancellation)."""
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).pow(2).sum(-1).clamp_min(0.0)


def median_positions(count: int) -> tuple[int, int, float]:
    """``(lo, hi, frac)``: the median of ``count`` sorted values is ``v[lo] + frac * (v[hi] - v[lo])``."""
    pos = 0.5 * (count - 1)
    lo = math.floor(pos)
    return lo, math.ceil(pos), pos - lo


def stable_median(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(median, sort order)`` over the last dim, interpolated like ``jnp.median``; differentiable.

    The sort is stable (ties in index order, as jax's sort): a kernel's distances tie in pairs (d_ij = d_ji), and
    which of the two the median's gradient reaches decides which particle it moves. An unstable sort resolves
    ties differently on each backend (the CPU's, CUDA's, the compiler's bitonic sort)."""
    sorted_values, order = torch.sort(values, dim=-1, stable=True)
    lo, hi, frac = median_positions(values.shape[-1])
    return sorted_values[..., lo] + frac * (sorted_values[..., hi] - sorted_values[..., lo]), order


def rbf_gamma(sq_dists: torch.Tensor) -> torch.Tensor:
    """Median-heuristic RBF precision per state, ``[B, N, N] -> [B, 1, 1]``, as in the authors' kernel.

    The median includes the zero diagonal and interpolates between the middle two entries like ``jnp.median``.
    """
    n = sq_dists.shape[-1]
    med = stable_median(sq_dists.flatten(-2))[0][..., None, None]
    h = med / (2.0 * math.log(n + 1))
    sigma_sq = h.clamp_min(1e-12)
    return 1.0 / (2.0 * sigma_sq + 1e-6)


def rbf_kernel(x: torch.Tensor) -> torch.Tensor:
    """``[B, N, d] -> [B, N, N]`` median-heuristic RBF kernel matrix."""
    d2 = pairwise_sq_dists(x, x)
    return torch.exp(-rbf_gamma(d2) * d2)


def kernel_and_repulsion(x: torch.Tensor, bandwidth_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel matrix K and repulsion R_i = -d/dX_i sum_{i,j} k(X_i, stopgrad X_j).

    ``bandwidth_grad=True`` differentiates through the median bandwidth exactly like the authors' code
    (spec 6.14); ``False`` is textbook SVGD with a constant bandwidth: R_i = sum_j 2 gamma (X_i - X_j) k_ij.
    """
    x = x.detach().float()
    if not bandwidth_grad:
        d2 = pairwise_sq_dists(x, x)
        gamma = rbf_gamma(d2)
        k = torch.exp(-gamma * d2)
        repulsion = 2.0 * gamma * (x * k.sum(-1, keepdim=True) - k @ x)
        return k, repulsion
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        d2 = pairwise_sq_dists(xg, x)
        k = torch.exp(-rbf_gamma(d2) * d2)
        (grad,) = torch.autograd.grad(k.sum(), xg)
    return k.detach(), -grad


def svgd_velocity(
    x: torch.Tensor, score: torch.Tensor, alpha: float, repulsion: bool = True, bandwidth_grad: bool = True
) -> torch.Tensor:
    """phi_i = (sum_j k_ij G_j / alpha + R_i) / N; without repulsion, the kernel-smoothed score alone."""
    n = x.shape[-2]
    if repulsion:
        k, rep = kernel_and_repulsion(x, bandwidth_grad=bandwidth_grad)
        return (k @ score.float() / alpha + rep) / n
    k = rbf_kernel(x.detach().float())
    return (k @ score.float() / alpha) / n


def q_action_gradient(q_fn: QFunction, obs: torch.Tensor, x: torch.Tensor, q_agg: str) -> torch.Tensor:
    """G = d/dX sum Q_agg(s, X): one autodiff call for all states and particles; no parameter gradients."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        q = aggregate_ensemble(q_fn(obs, xg), q_agg)
        (grad,) = torch.autograd.grad(q.sum(), xg)
    return grad.float()


class ParticleAdam:
    """Adam on the particle tensor with a fresh state per transport call (optax defaults).

    ``clip_global_norm`` reproduces A-VGF's ``clip_by_global_norm`` applied to the whole particle array.
    """

    def __init__(self, step_size: float, clip_global_norm: float | None = None):
        self.step_size, self.clip_global_norm = step_size, clip_global_norm
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.t = 0

    def direction(self, ascent: torch.Tensor) -> torch.Tensor:
        """Displacement for one step that *increases* the objective whose gradient is ``ascent``."""
        g = -ascent
        if self.clip_global_norm is not None:
            norm = g.norm()
            g = g * torch.clamp(self.clip_global_norm / (norm + 1e-16), max=1.0)
        if self.m is None:
            self.m, self.v = torch.zeros_like(g), torch.zeros_like(g)
        self.t += 1
        self.m = ADAM_BETA1 * self.m + (1 - ADAM_BETA1) * g
        self.v = ADAM_BETA2 * self.v + (1 - ADAM_BETA2) * g * g
        m_hat = self.m / (1 - ADAM_BETA1**self.t)
        v_hat = self.v / (1 - ADAM_BETA2**self.t)
        return -self.step_size * m_hat / (v_hat.sqrt() + ADAM_EPS)


@dataclass(frozen=True)
class TransportSettings:
    """Everything about the particle update except the budget."""

    alpha: float = 1.0
    q_agg: str = "mean"
    step_rule: str = "adam"
    repulsion: bool = True
    bandwidth_grad: bool = True
    clip_low: float = -1.0
    clip_high: float = 1.0
    clip_global_norm: float | None = None  # A-VGF: 1.0


def transport_particles(
    obs: torch.Tensor,
    particles: torch.Tensor,
    budget: TransportBudget,
    q_fn: QFunction,
    settings: TransportSettings = TransportSettings(),
    velocity_fn: VelocityFunction | None = None,
) -> torch.Tensor:
    """Move ``particles [B, N, d]`` (states ``obs [B, N, obs_dim]``) along the value-gradient flow.

    With ``velocity_fn`` (A-VGF) the velocity is the learned gradient network's output: no kernel, no 1/N.
    """
    if settings.step_rule not in ("adam", "euler"):
        raise ValueError(f"unknown step_rule {settings.step_rule!r}; expected 'adam' or 'euler'")
    x = particles.detach().float()
    adam = ParticleAdam(budget.step_size, settings.clip_global_norm) if settings.step_rule == "adam" else None
    row_steps = budget.row_tensor(x.shape[0], x.device)
    for t in range(1, budget.steps + 1):
        if velocity_fn is not None:
            with torch.no_grad():
                phi = velocity_fn(obs, x).float()
        else:
            score = q_action_gradient(q_fn, obs, x, settings.q_agg)
            phi = svgd_velocity(x, score, settings.alpha, settings.repulsion, settings.bandwidth_grad)
        step = adam.direction(phi) if adam is not None else budget.step_size * phi
        x = freeze_finished_rows((x + step).clamp(settings.clip_low, settings.clip_high), x, row_steps, t)
    return x


def select_particle(
    q: torch.Tensor, how: str = "max", softmax_temp: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Index ``[B]`` of the particle to execute from scores ``q [B, N]``: max, softmax or uniform random."""
    if how == "max":
        return q.argmax(dim=-1)
    if how == "softmax":
        probs = torch.softmax((q - q.max(dim=-1, keepdim=True).values) / softmax_temp, dim=-1)
        return torch.multinomial(probs.float(), 1, generator=generator).squeeze(-1)
    if how == "random":
        return torch.randint(q.shape[-1], q.shape[:-1], generator=generator, device=q.device)
    raise ValueError(f"unknown particle selection {how!r}; expected 'max', 'softmax' or 'random'")
