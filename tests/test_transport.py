"""Particle transport: kernel, repulsion, Adam-on-particles, clipping and the budget-0 identity."""

import math

import pytest
import torch

from vgf_ray.core.transport import (
    ParticleAdam,
    TransportBudget,
    TransportSettings,
    kernel_and_repulsion,
    rbf_kernel,
    select_particle,
    stable_median,
    svgd_velocity,
    transport_particles,
)
from vgf_ray.errors import ConfigError


def quadratic_q(target: torch.Tensor):
    """Two-member 'critic' peaking at ``target`` (members differ by a constant)."""

    def q_fn(obs, x):
        q = -((x - target) ** 2).sum(-1)
        return torch.stack([q, q - 1.0])

    return q_fn


def test_adam_first_step_is_step_size_times_sign():
    phi = torch.tensor([[[0.3, -2.0, 1e-3], [-5.0, 0.7, -1e-2]]])
    step = ParticleAdam(0.05).direction(phi)
    torch.testing.assert_close(step, 0.05 * torch.sign(phi), atol=1e-6, rtol=1e-5)


def test_later_adam_steps_stay_near_step_size_for_stable_sign():
    adam = ParticleAdam(0.1)
    for scale in (1.0, 10.0, 0.1):
        step = adam.direction(torch.full((1, 2, 3), scale))
    assert torch.all(step > 0) and torch.all(step <= 0.1 * 1.0001 * 3)


def test_identical_particles_give_all_ones_kernel_and_zero_repulsion():
    x = torch.tensor([0.2, -0.4, 0.9]).expand(1, 7, 3).clone()
    k, rep = kernel_and_repulsion(x)
    torch.testing.assert_close(k, torch.ones(1, 7, 7))
    torch.testing.assert_close(rep, torch.zeros(1, 7, 3))
    score = torch.randn(1, 7, 3)
    phi = svgd_velocity(x, score, alpha=0.5)
    torch.testing.assert_close(phi, (score.mean(1, keepdim=True) / 0.5).expand(1, 7, 3), atol=1e-5, rtol=1e-5)


def test_median_ties_resolve_in_index_order():
    """Kernel distances tie in pairs (d_ij = d_ji), and which tied entry the median's gradient reaches decides which
    particle the bandwidth term moves: the stable order (as jax's sort), the same on every device and compiler."""
    values = torch.tensor([[2.0, 1.0, 3.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]], requires_grad=True)
    median, _ = stable_median(values)
    median.sum().backward()
    torch.testing.assert_close(median.detach(), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]]))
    even = torch.tensor([[4.0, 0.0, 4.0, 9.0, 4.0, 0.0]], requires_grad=True)  # lo, hi: 2nd and 3rd sorted
    median, _ = stable_median(even)
    median.sum().backward()
    torch.testing.assert_close(even.grad, torch.tensor([[0.5, 0.0, 0.5, 0.0, 0.0, 0.0]]))


def test_batched_kernel_equals_per_state_loop():
    torch.manual_seed(0)
    x = torch.randn(5, 9, 4)
    batched = rbf_kernel(x)
    for b in range(5):
        xb = x[b]
        d2 = ((xb[:, None] - xb[None]) ** 2).sum(-1)
        med = torch.quantile(d2.flatten(), 0.5)
        h = med / (2 * math.log(9 + 1))
        gamma = 1.0 / (2 * torch.clamp(h, min=1e-12) + 1e-6)
        torch.testing.assert_close(batched[b], torch.exp(-gamma * d2))


@pytest.mark.parametrize("bandwidth_grad", [True, False])
def test_repulsion_is_minus_gradient_of_kernel_sum(bandwidth_grad):
    torch.manual_seed(1)
    x = torch.randn(3, 6, 2)
    _, rep = kernel_and_repulsion(x, bandwidth_grad=bandwidth_grad)
    # Numerical gradient of sum_ij k(x_i, stopgrad x_j) w.r.t. x_i, bandwidth fixed when bandwidth_grad=False.
    from vgf_ray.core.transport import pairwise_sq_dists, rbf_gamma

    gamma_fixed = rbf_gamma(pairwise_sq_dists(x, x))

    def total(xv):
        d2 = pairwise_sq_dists(xv, x)
        gamma = rbf_gamma(d2) if bandwidth_grad else gamma_fixed
        return torch.exp(-gamma * d2).sum()

    xv = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(total(xv), xv)
    torch.testing.assert_close(rep, -grad, atol=1e-5, rtol=1e-4)
    assert rep.abs().sum() > 0


def test_particles_never_leave_the_box():
    target = torch.tensor([3.0, -3.0])  # peak far outside [-1, 1]
    x0 = torch.rand(4, 10, 2) * 2 - 1
    obs = torch.zeros(4, 10, 1)
    for rule in ("adam", "euler"):
        settings = TransportSettings(step_rule=rule)
        x = transport_particles(obs, x0, TransportBudget(25, 0.5), quadratic_q(target), settings)
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert torch.allclose(x[..., 0], torch.ones(4, 10)) and torch.allclose(x[..., 1], -torch.ones(4, 10))


def test_zero_steps_returns_particles_unchanged():
    x0 = torch.rand(2, 5, 3) * 2 - 1
    x = transport_particles(torch.zeros(2, 5, 1), x0, TransportBudget(0, 0.1), quadratic_q(torch.zeros(3)))
    torch.testing.assert_close(x, x0)


def test_transport_climbs_q_and_distance_grows_with_budget():
    target = torch.tensor([0.5, 0.5])
    torch.manual_seed(0)
    x0 = torch.rand(8, 10, 2) * 0.4 - 0.8  # far corner
    obs = torch.zeros(8, 10, 1)
    settings = TransportSettings(repulsion=False)
    moved = {steps: transport_particles(obs, x0, TransportBudget(steps, 0.05), quadratic_q(target), settings)
             for steps in (1, 2, 4)}
    dists = {s: (m - x0).abs().max(-1).values.mean().item() for s, m in moved.items()}
    assert dists[1] == pytest.approx(0.05, rel=1e-3)  # first Adam step: epsilon per coordinate
    assert dists[1] < dists[2] < dists[4] <= 4 * 0.05 + 1e-6
    q = {s: -((m - target) ** 2).sum(-1).mean().item() for s, m in moved.items()}
    assert q[1] < q[2] < q[4]


def test_euler_step_scales_with_the_gradient():
    target = torch.tensor([0.5])
    x0 = torch.zeros(1, 1, 1)
    x = transport_particles(torch.zeros(1, 1, 1), x0, TransportBudget(1, 0.1), quadratic_q(target),
                            TransportSettings(step_rule="euler", repulsion=False, alpha=1.0))
    # phi = grad of mean-Q = 2 * (0.5 - 0) = 1.0 (kernel of one particle is 1, N = 1): Euler moves 0.1 * 1.0
    torch.testing.assert_close(x, torch.full((1, 1, 1), 0.1))


def test_selection_rules():
    q = torch.tensor([[0.0, 5.0, 1.0], [3.0, -1.0, 2.0]])
    assert select_particle(q, "max").tolist() == [1, 0]
    g = torch.Generator().manual_seed(0)
    picks = torch.stack([select_particle(q, "softmax", 0.01, g) for _ in range(50)])
    assert (picks == torch.tensor([1, 0])).all()
    picks = torch.stack([select_particle(q, "random", generator=g) for _ in range(200)])
    assert set(picks.flatten().tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="unknown particle selection 'best'"):
        select_particle(q, "best")


def test_budget_rejects_negative_values():
    with pytest.raises(ValueError, match="steps must be >= 0"):
        TransportBudget(-1, 0.1)
    with pytest.raises(ValueError, match="step_size must be >= 0"):
        TransportBudget(1, -0.1)


@pytest.mark.parametrize("acting", ["eager", "fused"])
def test_rows_at_different_budgets_move_as_separate_calls(acting):
    """One call for rows at budgets 0..3 gives each row what a call at its own budget gives it, noise alike."""
    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.core.vgf import VGFNetworks

    hp = VGFHyperParams(hidden_dims=(32, 32), actor_hidden_dims=(32, 32), num_particles=5, bc_flow_steps=2,
                        acting=acting, bf16=False, acting_bf16=False)
    nets = VGFNetworks(3, 2, hp)
    obs = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    row_steps = [0, 1, 2, 3, 3, 2, 1, 0]
    together = nets.act(obs, TransportBudget.per_row(row_steps, 0.2), generator=torch.Generator().manual_seed(5))
    for steps in set(row_steps):
        alone = nets.act(obs, TransportBudget(steps, 0.2), generator=torch.Generator().manual_seed(5))
        rows = [i for i, s in enumerate(row_steps) if s == steps]
        torch.testing.assert_close(together[rows], alone[rows], atol=1e-5, rtol=1e-5)
    assert TransportBudget.per_row([2, 2], 0.1) == TransportBudget(2, 0.1)
    with pytest.raises(ConfigError, match="row_steps has 2 entries for a batch of 8"):
        nets.act(obs, TransportBudget.per_row([0, 1], 0.2))
