"""VGF networks and losses: ensemble batching, best-of-N identity, TD target, flow matching, hyperparameters.
On the CPU in CI; on a GPU with ``VGF_TEST_DEVICE=cuda`` (benchmarks/gpu_check.sh)."""

import numpy as np
import pytest
import torch
from device_util import DEVICE, generator

from vgf_ray.core.flow_bc import FlowBehaviorModel
from vgf_ray.core.hparams import VGFHyperParams
from vgf_ray.core.networks import LAYER_NORM_EPS, EnsembleMLP
from vgf_ray.core.transport import TransportBudget, aggregate_ensemble
from vgf_ray.core.vgf import VGFAgent, VGFNetworks
from vgf_ray.errors import ConfigError
from vgf_ray.metrics import CRITIC_LOSS, GRAD_NET_LOSS

SMALL = dict(hidden_dims=(32, 32), actor_hidden_dims=(32, 32), num_particles=6, bc_flow_steps=4)


def random_batch(n=16, obs_dim=3, act_dim=2, seed=0):
    g = torch.Generator().manual_seed(seed)  # the same batch on every device
    batch = {"observations": torch.randn(n, obs_dim, generator=g),
             "actions": torch.rand(n, act_dim, generator=g) * 2 - 1,
             "rewards": torch.randn(n, generator=g), "next_observations": torch.randn(n, obs_dim, generator=g),
             "masks": (torch.rand(n, generator=g) > 0.2).float()}
    return {key: value.to(DEVICE) for key, value in batch.items()}


def test_ensemble_equals_per_member_loop():
    torch.manual_seed(0)
    ens = EnsembleMLP(3, 5, (16, 8), 1, layer_norm=True)
    with torch.no_grad():
        for p in ens.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # make LN affine params non-trivial
    x = torch.randn(4, 7, 5)
    out = ens(x)
    assert out.shape == (3, 4, 7, 1)
    for m in range(3):
        h = x
        for i in range(3):
            h = h @ ens.weights[i][m] + ens.biases[i][m]
            if i < 2:
                h = torch.nn.functional.layer_norm(h, (h.shape[-1],), eps=LAYER_NORM_EPS)
                h = torch.relu(h * ens.ln_weights[i][m] + ens.ln_biases[i][m])
        torch.testing.assert_close(out[m], h, atol=1e-5, rtol=1e-5)


def test_ensemble_members_are_initialised_independently():
    ens = EnsembleMLP(2, 4, (8,), 1)
    assert not torch.equal(ens.weights[0][0], ens.weights[0][1])


def test_budget_zero_equals_best_of_n_exactly():
    torch.manual_seed(0)
    nets = VGFNetworks(3, 2, VGFHyperParams(**SMALL, train_q_agg="min")).to(DEVICE)
    obs = torch.randn(5, 3, device=DEVICE)
    action = nets.act_eager(obs, TransportBudget(0, 0.1), generator=generator(7))
    samples = nets.behavior.sample(obs, 6, generator=generator(7))
    q = aggregate_ensemble(nets.q_values(obs.unsqueeze(1).expand(5, 6, 3), samples), "min")
    expected = samples[torch.arange(5, device=DEVICE), q.argmax(-1)]
    torch.testing.assert_close(action, expected, rtol=0, atol=0)
    # The fused acting path (the default) splits the first layers' matmuls: the same particle, to rounding.
    fused = nets.act(obs, TransportBudget(0, 0.1), generator=generator(7))
    torch.testing.assert_close(fused, expected, rtol=0, atol=1e-6)


def test_td_target_without_transport_is_sarsa_over_behavior_samples():
    torch.manual_seed(0)
    nets = VGFNetworks(3, 2, VGFHyperParams(**SMALL, train_vgf_steps=0, train_q_agg="mean", discount=0.9)).to(DEVICE)
    with torch.no_grad():
        for p in nets.target_critic.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # target differs from online: the target net must be used
    batch = random_batch()
    target = nets.td_target(batch, generator(3))
    samples = nets.behavior.sample(batch["next_observations"], 6, generator=generator(3))
    obs_rep = batch["next_observations"].unsqueeze(1).expand(16, 6, 3)
    q_next = nets.q_values(obs_rep, samples, target=True).mean(0).mean(-1)
    expected = batch["rewards"] + 0.9 * batch["masks"] * q_next
    torch.testing.assert_close(target, expected)


def test_td_target_uses_masks_for_bootstrap():
    nets = VGFNetworks(3, 2, VGFHyperParams(**SMALL)).to(DEVICE)
    batch = random_batch()
    batch["masks"] = torch.zeros(16, device=DEVICE)
    torch.testing.assert_close(nets.td_target(batch), batch["rewards"])


def test_critic_loss_sums_members_of_mean_squared_error():
    nets = VGFNetworks(3, 2, VGFHyperParams(**SMALL, discount=0.0)).to(DEVICE)
    batch = random_batch()
    loss, _ = nets.critic_loss(batch)
    q = nets.q_values(batch["observations"], batch["actions"])
    expected = ((q[0] - batch["rewards"]) ** 2).mean() + ((q[1] - batch["rewards"]) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_target_update_lags_one_step_like_the_authors_code():
    hp = VGFHyperParams(**SMALL, tau=0.5)
    agent = VGFAgent(3, 2, hp, device=DEVICE)
    before = [p.detach().clone() for p in agent.nets.critic.parameters()]
    target_before = [p.detach().clone() for p in agent.nets.target_critic.parameters()]
    agent.update(random_batch())
    for t_new, t_old, online_old in zip(agent.nets.target_critic.parameters(), target_before, before):
        torch.testing.assert_close(t_new, 0.5 * online_old + 0.5 * t_old)


@pytest.mark.parametrize("dim", [1, 2])
def test_flow_matching_fits_a_bimodal_distribution(dim):
    torch.manual_seed(0)
    model = FlowBehaviorModel(1, dim, hidden_dims=(64, 64), flow_steps=10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    modes = torch.tensor([[-0.6] * dim, [0.6] * dim])
    obs = torch.zeros(256, 1)
    for _ in range(600):
        actions = modes[torch.randint(2, (256,))] + 0.05 * torch.randn(256, dim)
        loss = model.loss(obs, actions)
        opt.zero_grad()
        loss.backward()
        opt.step()
    samples = model.sample(torch.zeros(1, 1), 2000)[0]
    dist = torch.cdist(samples, modes)
    nearest = dist.argmin(-1)
    share = nearest.float().mean().item()
    assert 0.3 < share < 0.7, f"one mode is missing: share of mode 2 = {share}"
    assert (dist.min(-1).values < 0.25).float().mean() > 0.8, "samples are not concentrated on the modes"


def test_behavior_samples_are_clipped_to_the_box():
    model = FlowBehaviorModel(2, 3, hidden_dims=(16,))
    with torch.no_grad():
        model.velocity_net.net[-1].bias.fill_(50.0)
    s = model.sample(torch.zeros(4, 2), 5)
    assert s.shape == (4, 5, 3) and s.max() <= 1.0 and s.min() >= -1.0


def test_agent_learns_a_one_step_problem():
    """Reward regression (discount 0) must drive the critic loss down on fixed data."""
    agent = VGFAgent(3, 2, VGFHyperParams(**SMALL, discount=0.0, value_lr=3e-3, actor_lr=3e-3), device=DEVICE)
    batch = random_batch(64)
    batch["rewards"] = batch["actions"].sum(-1) + batch["observations"][:, 0]
    first = agent.update(batch)[CRITIC_LOSS]
    for _ in range(300):
        last = agent.update(batch)[CRITIC_LOSS]
    assert last < 0.1 * first


def test_bf16_acting_matches_fp32_closely():
    torch.manual_seed(0)
    nets = VGFNetworks(3, 2, VGFHyperParams(**SMALL)).to(DEVICE)
    obs = torch.randn(64, 3, device=DEVICE)
    ref = nets.behavior.sample(obs, 6, generator=generator(1))
    nets.hp.bf16 = True
    _, moved = nets.sample_particles(obs, TransportBudget(0, 0.1), generator(1))
    assert (moved - ref).abs().max() < 0.1
    _, moved3 = nets.sample_particles(obs, TransportBudget(3, 0.1), generator(1))
    assert moved3.dtype == torch.float32 and moved3.abs().max() <= 1.0


def test_amortized_variant_learns_the_action_gradient():
    torch.manual_seed(0)
    hp = VGFHyperParams(**SMALL, variant="avgf", discount=0.0, value_lr=3e-3)
    agent = VGFAgent(3, 2, hp, device=DEVICE)
    batch = random_batch(64)
    batch["rewards"] = -((batch["actions"] - 0.3) ** 2).sum(-1)
    losses = [agent.update(batch)[GRAD_NET_LOSS] for _ in range(300)]
    assert losses[-1] < 0.5 * max(losses[:20])
    moved = agent.act(batch["observations"][:8], steps=5, step_size=0.1)
    assert moved.shape == (8, 2) and moved.abs().max() <= 1.0


@pytest.mark.parametrize(
    "overrides, key",
    [({"num_particles": 0}, "num_particles"), ({"train_vgf_steps": -1}, "train_vgf_steps"),
     ({"train_q_agg": "median"}, "train_q_agg"), ({"vgf_lr": -0.1}, "vgf_lr"),
     ({"eval_particle_select": "best"}, "eval_particle_select"), ({"step_rule": "sgd"}, "step_rule"),
     ({"discount": 1.5}, "discount"), ({"hidden_dims": ()}, "hidden_dims")],
)
def test_hyperparameter_validation_names_the_key(overrides, key):
    with pytest.raises(ValueError, match=key):
        VGFHyperParams(**overrides).validate()


def test_unknown_hyperparameter_is_rejected_by_name():
    with pytest.raises(ValueError, match="num_particle"):
        VGFHyperParams.from_dict({"num_particle": 3})


def test_hyperparams_from_dict_roundtrip():
    hp = VGFHyperParams.from_dict({"hidden_dims": [8, 8], "num_particles": 4})
    assert hp.hidden_dims == (8, 8) and VGFHyperParams.from_dict(hp.to_dict()) == hp
    assert np.isclose(hp.vgf_lr, 0.1)


def test_bf16_auto_is_bf16_only_where_the_device_has_native_kernels(monkeypatch):
    """Without native bf16 matmuls (an AVX2-only CPU) aten falls back to a reference GEMM tens of times slower than
    fp32: ``bf16: auto`` then runs fp32, and ``bf16: true`` warns."""
    import warnings

    from vgf_ray.core import hparams

    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(hparams, "bf16_native", lambda device_type, native=native: native)
        hparams._warn_slow_bf16.cache_clear()
        auto = VGFHyperParams(bf16="auto")
        assert auto.bf16_on(cpu) is native and auto.acts_in_bf16(cpu) is native
        assert VGFHyperParams(bf16="auto", acting_bf16=False).acts_in_bf16(cpu) is False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert VGFHyperParams(bf16=True).bf16_on(cpu) is True
        assert any("no native bf16" in str(w.message) for w in caught) is not native
    with pytest.raises(ConfigError, match="bf16 must be true, false or auto, got 'yes'"):
        VGFHyperParams.from_dict({"bf16": "yes"})
