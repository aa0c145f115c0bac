"""``acting: auto`` (the default): the fused path until its time at a call signature reaches a compile's expected
cost, then a timed trial of the compiled path, and the faster one kept; a compiler that falls back means fused.
The paths are stubs on a fake clock here, so the rule is tested without paying for a compile."""

import pytest
import torch

from vgf_ray.core.auto_acting import COMPILED, FUSED, TRIAL_CALLS, AutoActor
from vgf_ray.core.fused_acting import FusedActor, fused_act_max
from vgf_ray.core.hparams import VGFHyperParams
from vgf_ray.core.transport import TransportBudget
from vgf_ray.core.vgf import VGFNetworks

OBS, ACT = 5, 2


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedPath(FusedActor):
    """The fused path that takes ``cost`` seconds of the fake clock per call (``first`` for its first call), and
    says it runs a compiled graph when ``compiles``."""

    def __init__(self, clock: Clock, cost: float, first: float | None = None, compiles: bool = False):
        super().__init__(compile=False)
        self.clock, self.cost, self.first, self.compiles, self.calls = clock, cost, first, compiles, 0

    def act(self, *args, **kwargs):
        self.calls += 1
        self.clock.now += self.first if self.calls == 1 and self.first is not None else self.cost
        return super().act(*args, **kwargs)

    def is_compiled(self, function=fused_act_max) -> bool:
        return self.compiles and self.calls > 0


def nets_and_actor(fused_cost: float, compiled_cost: float, compile_cost: float, prior: float = 10.0,
                   compiles: bool = True) -> tuple[VGFNetworks, AutoActor]:
    torch.manual_seed(0)
    nets = VGFNetworks(OBS, ACT, VGFHyperParams(hidden_dims=(16, 16), actor_hidden_dims=(16, 16), num_particles=4,
                                                bc_flow_steps=2))
    clock = Clock()
    actor = AutoActor(compile_cost_prior_s=prior, clock=clock)
    actor.paths = {FUSED: TimedPath(clock, fused_cost),
                   COMPILED: TimedPath(clock, compiled_cost, first=compile_cost, compiles=compiles)}
    return nets, actor


def act_times(nets, actor, calls: int, batch: int = 3, steps: int = 2) -> None:
    for _ in range(calls):
        actor.act(nets, torch.zeros(batch, OBS), TransportBudget(steps, 0.1))


def test_the_default_is_auto_and_acts_like_the_fused_path():
    nets = VGFNetworks(OBS, ACT, VGFHyperParams(hidden_dims=(16, 16), actor_hidden_dims=(16, 16)))
    assert nets.hp.acting == "auto"
    obs, budget = torch.randn(4, OBS), TransportBudget(2, 0.1)
    auto = nets.act(obs, budget, generator=torch.Generator().manual_seed(1))
    fused = FusedActor(compile=False).act(nets, obs, budget, generator=torch.Generator().manual_seed(1))
    assert isinstance(nets._fused_actor, AutoActor) and torch.equal(auto, fused)
    assert list(nets._fused_actor.choices().values()) == [None]  # a few calls: nothing compiled


def test_rents_until_a_compile_would_pay_then_keeps_the_faster_compiled_path():
    nets, actor = nets_and_actor(fused_cost=1.0, compiled_cost=0.5, compile_cost=31.0)
    act_times(nets, actor, 10)  # 10 s of fused calls: the 10 s prior is reached, nothing compiled yet
    assert actor.paths[COMPILED].calls == 0 and list(actor.choices().values()) == [None]
    act_times(nets, actor, 1 + TRIAL_CALLS)  # the compiling call, then the timed trial
    assert list(actor.choices().values()) == [COMPILED]
    assert actor.compile_cost_s == pytest.approx(30.0)  # the compiling call less a fused call
    act_times(nets, actor, 4)
    assert actor.paths[FUSED].calls == 10 and actor.paths[COMPILED].calls == 1 + TRIAL_CALLS + 4
    # Another signature (another batch shape) pays the measured price, 30 s, before it compiles.
    act_times(nets, actor, 29, batch=7)
    assert actor.paths[COMPILED].calls == 1 + TRIAL_CALLS + 4
    act_times(nets, actor, 2, batch=7)
    assert actor.paths[COMPILED].calls == 1 + TRIAL_CALLS + 5


def test_a_compiled_graph_that_is_slower_goes_back_to_fused():
    nets, actor = nets_and_actor(fused_cost=1.0, compiled_cost=1.5, compile_cost=5.0)
    act_times(nets, actor, 10 + 1 + TRIAL_CALLS + 3)
    assert list(actor.choices().values()) == [FUSED]
    assert actor.paths[COMPILED].calls == 1 + TRIAL_CALLS and actor.paths[FUSED].calls == 13


def test_a_compiler_that_falls_back_means_fused_at_once():
    nets, actor = nets_and_actor(fused_cost=1.0, compiled_cost=0.1, compile_cost=0.1, compiles=False)
    act_times(nets, actor, 10 + 1 + 3)
    assert list(actor.choices().values()) == [FUSED] and actor.paths[COMPILED].calls == 1


def test_each_budget_is_its_own_signature():
    nets, actor = nets_and_actor(fused_cost=1.0, compiled_cost=0.5, compile_cost=2.0, prior=1000.0)
    for steps in (0, 1, 2, 3):
        act_times(nets, actor, 2, steps=steps)
    assert len(actor.choices()) == 4 and actor.paths[COMPILED].calls == 0
