"""The fused acting path gives the numbers of the autograd reference: kernel and repulsion, the critic's
action-gradient, the transported particles (1e-5 in fp32) and the chosen particle; bf16 within a stated
tolerance; torch.compile falls back cleanly. On the CPU in CI; on a GPU with ``VGF_TEST_DEVICE=cuda``
(benchmarks/gpu_check.sh)."""

import dataclasses
import warnings

import pytest
import torch
from device_util import DEVICE, FP32_TRANSPORT_ATOL, generator

from vgf_ray.core.fused_acting import (
    COMPILE_FALLBACK,
    FusedSettings,
    critic_value_and_action_grad,
    fused_act,
    fused_act_max,
    kernel_and_repulsion_closed_form,
    pack_weights,
)
from vgf_ray.core.hparams import VGFHyperParams
from vgf_ray.core.transport import TransportBudget, aggregate_ensemble, kernel_and_repulsion, q_action_gradient
from vgf_ray.core.vgf import VGFNetworks, auto_target_transport

OBS, ACT = 7, 3


def make_nets(seed: int = 0, **overrides) -> VGFNetworks:
    torch.manual_seed(seed)
    hp = VGFHyperParams(**{"hidden_dims": (32, 32), "actor_hidden_dims": (32, 32), "num_particles": 6,
                           "bc_flow_steps": 4, "acting": "fused", **overrides})
    nets = VGFNetworks(OBS, ACT, hp)
    with torch.no_grad():  # move off the zero-bias init so every term of the closed forms matters
        for p in nets.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return nets.to(DEVICE)


@pytest.mark.parametrize("bandwidth_grad", [True, False])
def test_closed_form_kernel_and_repulsion_equal_autograd(bandwidth_grad):
    torch.manual_seed(0)
    for x in (torch.rand(4, 8, 5, device=DEVICE) * 2 - 1, torch.rand(2, 7, 2, device=DEVICE),
              torch.zeros(1, 5, 3, device=DEVICE)):  # even/odd N, all equal
        k_ref, rep_ref = kernel_and_repulsion(x, bandwidth_grad)
        k, rep = kernel_and_repulsion_closed_form(x, bandwidth_grad)
        torch.testing.assert_close(k, k_ref, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(rep, rep_ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("q_agg", ["mean", "min"])
@pytest.mark.parametrize("layer_norm", [True, False])
def test_closed_form_critic_gradient_equals_autograd(q_agg, layer_norm):
    nets = make_nets(critic_layer_norm=layer_norm, hidden_dims=(32, 16, 8))
    pack = pack_weights(nets)
    obs, x = torch.randn(10, OBS, device=DEVICE), torch.rand(10, ACT, device=DEVICE) * 2 - 1
    members = pack.critic_obs.shape[0]
    obs_proj = torch.bmm(obs.expand(members, -1, -1), pack.critic_obs) + pack.critic[0].bias
    q, grad = critic_value_and_action_grad(pack, obs_proj, x, q_agg)
    torch.testing.assert_close(q, aggregate_ensemble(nets.q_values(obs, x), q_agg).detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, q_action_gradient(nets.q_values, obs, x, q_agg), atol=1e-5, rtol=1e-4)


def fused_and_eager_particles(nets: VGFNetworks, obs: torch.Tensor, budget: TransportBudget, onednn: bool = False):
    """Both paths from the same behavior noise: ``(fused particles, fused Q, eager particles, eager Q)``."""
    _, eager = nets.sample_particles(obs, budget, generator(5))
    obs_rep = obs.unsqueeze(-2).expand(-1, nets.hp.num_particles, -1)
    eager_q = aggregate_ensemble(nets.q_values(obs_rep, eager), nets.hp.train_q_agg)
    noise = torch.randn((obs.shape[0], nets.hp.num_particles, ACT), generator=generator(5), device=DEVICE)
    s = nets.transport_settings
    settings = FusedSettings(s.alpha, s.q_agg, nets.hp.train_q_agg, s.repulsion, s.bandwidth_grad, s.step_rule,
                             s.clip_low, s.clip_high)
    pack = pack_weights(nets, onednn=onednn)
    x, q = fused_act(pack, obs, noise, budget.steps, budget.step_size, nets.hp.bc_flow_steps, settings)
    return x, q, eager, eager_q.detach()


VARIANTS = [{}, {"train_q_agg": "min", "vgf_q_agg": "min"}, {"step_rule": "euler"}, {"repulsion": False},
            {"bandwidth_grad": False}, {"actor_layer_norm": True, "critic_layer_norm": False},
            {"hidden_dims": (64, 64, 64), "num_particles": 9, "vgf_alpha": 0.3}]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(o) or "default")
def test_fused_transport_equals_eager_in_fp32(overrides):
    nets = make_nets(**overrides)
    obs = torch.randn(16, OBS, device=DEVICE)
    for steps in (0, 1, 3):
        x, q, eager, eager_q = fused_and_eager_particles(nets, obs, TransportBudget(steps, 0.1))
        torch.testing.assert_close(x, eager, atol=FP32_TRANSPORT_ATOL, rtol=0)
        torch.testing.assert_close(q, eager_q, atol=1e-5, rtol=1e-5)
        assert steps == 0 or not torch.allclose(x, nets.sample_particles(obs, TransportBudget(0, 0.1),
                                                                         generator(5))[1])


@pytest.mark.parametrize("selection", ["max", "softmax", "random"])
def test_fused_act_chooses_the_eager_particle(selection):
    nets = make_nets()
    obs = torch.randn(32, OBS, device=DEVICE)
    for steps in (0, 2):
        budget = TransportBudget(steps, 0.1)
        eager = nets.act_eager(obs, budget, selection, generator(9))
        fused = nets.act(obs, budget, selection, generator(9))
        torch.testing.assert_close(fused, eager, atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available() or DEVICE.type != "cpu",
                    reason="oneDNN's packed matmuls are a CPU path")
def test_onednn_matmuls_keep_the_reference_numbers():
    """Wide layers in fp32 go through oneDNN's packed matmul (MKL runs at half speed on AMD CPUs); the particles,
    the chosen particle and the TD target stay those of the autograd reference."""
    nets = make_nets(hidden_dims=(256, 256, 256), actor_hidden_dims=(256, 256, 256))
    obs = torch.randn(32, OBS, device=DEVICE)
    for steps in (0, 2):
        x, q, eager, eager_q = fused_and_eager_particles(nets, obs, TransportBudget(steps, 0.05), onednn=True)
        torch.testing.assert_close(x, eager, atol=1e-5, rtol=0)
        assert torch.equal(q.argmax(-1), eager_q.argmax(-1))
        budget = TransportBudget(steps, 0.05)
        torch.testing.assert_close(nets.act(obs, budget, generator=generator(2)),
                                   nets.act_eager(obs, budget, generator=generator(2)),
                                   atol=1e-5, rtol=0)
    pack = nets._fused_actor.pack
    assert pack.critic[1].onednn is not None and pack.critic[1].onednn_t is not None
    assert pack.behavior[1].onednn is not None and pack.critic[0].onednn is None  # the split first layer: aten
    batch = {"next_observations": obs, "rewards": torch.randn(32, device=DEVICE),
             "masks": torch.ones(32, device=DEVICE)}
    reference = nets.td_target(batch, generator(3))
    nets.hp = dataclasses.replace(nets.hp, target_transport="fused", train_vgf_steps=2)
    eager_hp = dataclasses.replace(nets.hp, target_transport="eager")
    fast = nets.td_target(batch, generator(3))
    nets.hp = eager_hp
    torch.testing.assert_close(fast, nets.td_target(batch, generator(3)), atol=1e-5, rtol=1e-5)
    assert not torch.equal(fast, reference)  # L_train 2 vs 1: the comparison above is not vacuous


def test_auto_target_transport_is_fused_on_gpus_and_in_fp32_on_cpu_and_eager_in_bf16_on_cpu():
    batch = {"next_observations": torch.randn(4, OBS, device=DEVICE), "rewards": torch.zeros(4, device=DEVICE),
             "masks": torch.ones(4, device=DEVICE)}
    fp32, bf16 = make_nets(), make_nets(bf16=True)
    assert fp32.hp.target_transport == "auto"
    for nets in (fp32, bf16):
        nets.td_target(batch)
    on_gpu = DEVICE.type == "cuda"
    assert (fp32._target_transporter is not None) == (on_gpu or torch.backends.mkldnn.is_available())
    assert (bf16._target_transporter is not None) == on_gpu
    assert auto_target_transport(torch.device("cuda"), bf16=True) == "fused"
    assert auto_target_transport(torch.device("cpu"), bf16=True) == "eager"
    assert auto_target_transport(torch.device("mps"), bf16=False) == "eager"
    with pytest.raises(ValueError, match="target_transport='jit' is not one of \\('auto'"):
        dataclasses.replace(fp32.hp, target_transport="jit").validate()


def test_fused_act_follows_weight_changes():
    """Weights are packed once per weight version: an optimizer step or a weight sync must be seen."""
    nets = make_nets()
    obs, budget = torch.randn(8, OBS, device=DEVICE), TransportBudget(1, 0.1)
    nets.act(obs, budget, generator=generator(0))
    with torch.no_grad():
        for p in nets.critic.parameters():
            p.mul_(1.5)
    nets.load_state_dict(make_nets(seed=3).state_dict())
    eager = nets.act_eager(obs, budget, generator=generator(1))
    torch.testing.assert_close(nets.act(obs, budget, generator=generator(1)), eager,
                               atol=1e-5, rtol=0)


def test_fused_act_follows_replaced_parameters():
    """The fused actor keeps the networks' parameter list between calls; parameters replaced by new objects
    (``load_state_dict(assign=True)``, a plain ``setattr``) must still be seen."""
    nets = make_nets()
    obs, budget = torch.randn(8, OBS, device=DEVICE), TransportBudget(2, 0.1)
    nets.act(obs, budget, generator=generator(0))
    nets.load_state_dict(make_nets(seed=4).state_dict(), assign=True)
    eager = nets.act_eager(obs, budget, generator=generator(1))
    torch.testing.assert_close(nets.act(obs, budget, generator=generator(1)), eager,
                               atol=1e-5, rtol=0)
    nets.critic.weights[0] = torch.nn.Parameter(nets.critic.weights[0].detach() * -1.0)
    eager = nets.act_eager(obs, budget, generator=generator(2))
    torch.testing.assert_close(nets.act(obs, budget, generator=generator(2)), eager,
                               atol=1e-5, rtol=0)


def test_acting_dtype_can_differ_from_the_learners():
    """``acting_bf16: false`` with ``bf16: true``: acting (fused and eager) gives the fp32 actions, while the TD
    target's transport stays bf16."""
    nets, fp32 = make_nets(bf16=True, acting_bf16=False), make_nets(bf16=False)
    obs = torch.randn(16, OBS, device=DEVICE)
    for steps in (0, 2):
        budget = TransportBudget(steps, 0.1)
        reference = fp32.act_eager(obs, budget, generator=generator(5))
        for act in (nets.act, nets.act_eager):
            torch.testing.assert_close(act(obs, budget, generator=generator(5)), reference,
                                       atol=1e-5, rtol=0)
    batch = {"next_observations": obs, "rewards": torch.zeros(16, device=DEVICE),
             "masks": torch.ones(16, device=DEVICE)}
    bf16_target = nets.td_target(batch, generator(0))
    fp32_target = fp32.td_target(batch, generator(0))
    assert not torch.allclose(bf16_target, fp32_target, atol=1e-5, rtol=0)


def test_fused_bf16_stays_within_tolerance_of_eager_bf16():
    """bf16 rounds differently in the two paths. Stated tolerance: particles within 0.02 of the eager bf16
    particles in 95% of coordinates, and the same particle chosen in at least 90% of states. Eager bf16 itself
    differs from fp32 by about as much."""
    nets = make_nets(bf16=True, hidden_dims=(128, 128), actor_hidden_dims=(128, 128))
    obs = torch.randn(128, OBS, device=DEVICE)
    for steps in (0, 1, 3):
        x, q, eager, eager_q = fused_and_eager_particles(nets, obs, TransportBudget(steps, 0.05))
        assert ((x - eager).abs() < 0.02).float().mean() >= 0.95
        assert (q.argmax(-1) == eager_q.argmax(-1)).float().mean() >= 0.9


def test_compile_failure_falls_back_to_the_fused_path(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    nets = make_nets(acting="compiled")
    obs, budget = torch.randn(4, OBS, device=DEVICE), TransportBudget(1, 0.1)
    with pytest.warns(UserWarning, match="torch.compile unavailable"):
        action = nets.act(obs, budget, generator=generator(0))
    torch.testing.assert_close(action, nets.act_eager(obs, budget, generator=generator(0)),
                               atol=1e-5, rtol=0)


def test_acting_path_is_validated_and_avgf_uses_the_eager_path():
    with pytest.raises(ValueError, match="acting='jit' is not one of"):
        VGFHyperParams(acting="jit").validate()
    nets = make_nets(variant="avgf")
    obs, budget = torch.randn(4, OBS, device=DEVICE), TransportBudget(2, 0.1)
    torch.testing.assert_close(nets.act(obs, budget, generator=generator(0)),
                               nets.act_eager(obs, budget, generator=generator(0)))
    assert nets._fused_actor is None
    eager = dataclasses.replace(nets.hp, variant="vgf", acting="eager")
    nets.hp = eager
    nets.act(obs, budget)
    assert nets._fused_actor is None


def test_compiled_path_equals_eager():
    """torch.compile of the whole fused function (one graph per budget) keeps the reference numbers."""
    nets = make_nets(acting="compiled")
    obs, budget = torch.randn(2, OBS, device=DEVICE), TransportBudget(1, 0.1)
    eager = nets.act_eager(obs, budget, generator=generator(4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = nets.act(obs, budget, generator=generator(4))
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=0)
    fell_back = [w for w in caught if str(w.message).startswith(COMPILE_FALLBACK)]
    if fell_back:  # a machine without a C++ compiler: the fallback gave the right numbers above
        pytest.skip(f"torch.compile is unavailable here: {fell_back[0].message}")
    assert nets._fused_actor.is_compiled(fused_act_max) and not nets._fused_actor.is_compiled(fused_act)


@pytest.mark.parametrize("path", ["fused", "compiled"])
@pytest.mark.parametrize("steps", [0, 2])
def test_td_target_through_the_fused_transport_equals_eager(path, steps):
    """``target_transport`` changes how the TD target computes, not what: the same noise, particles and y."""
    nets = make_nets(train_vgf_steps=steps, discount=0.9)
    batch = {"next_observations": torch.randn(5, OBS, device=DEVICE), "rewards": torch.randn(5, device=DEVICE),
             "masks": torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], device=DEVICE)}
    reference = nets.td_target(batch, generator(3))
    nets.hp = dataclasses.replace(nets.hp, target_transport=path)
    fast = nets.td_target(batch, generator(3))
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)
    assert nets._target_transporter is not None and nets._fused_actor is None  # acting keeps its own path
    nets.hp = dataclasses.replace(nets.hp, target_transport="eager")
    with pytest.raises(ValueError, match="target_transport='jit' is not one of"):
        dataclasses.replace(nets.hp, target_transport="jit").validate()


def test_fused_act_keeps_every_tensor_on_the_networks_device():
    """CI has no GPU, so the branch a GPU takes (no oneDNN packing) runs here on the meta device (shapes, no
    numbers): a tensor made on the CPU inside the fused path (an ``arange`` without ``device``, say) fails to mix."""
    nets = make_nets().to("meta")
    obs = torch.empty(3, OBS, device="meta")
    for bf16 in (False, True):
        nets.hp = dataclasses.replace(nets.hp, bf16=bf16)
        for steps in (0, 2):
            for selection in ("max", "softmax"):
                action = nets.act(obs, TransportBudget(steps, 0.1), selection)
                assert action.device.type == "meta" and action.shape == (3, ACT)
    pack = nets._fused_actor.pack
    assert pack.critic[1].onednn is None and pack.behavior[1].onednn is None
    with pytest.raises(RuntimeError, match="device"):  # the check can fail: a CPU tensor does not mix
        torch.addcmul(obs, torch.ones(3, OBS), obs)
