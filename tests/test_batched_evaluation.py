"""A batched evaluation round: every (episode, budget) row at once, paired seeds, one module call per env step."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from vgf_ray.envs import VGFEnv
from vgf_ray.rllib.batched_evaluation import padded_rows, plan_rows, play_round, rows_of_runner

ENV_CONFIG = {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 12}}


class RecordingModule(torch.nn.Module):
    """Acts as a fixed function of the observation (the same at every budget) and records each call's rows."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([0.7, -0.4]))
        self.calls: list[list[int]] = []
        self.observations: list[torch.Tensor] = []

    def act_rows(self, obs: torch.Tensor, row_steps: list[int], step_size: float) -> torch.Tensor:
        self.calls.append(list(row_steps))
        self.observations.append(obs.clone())
        return torch.tanh(obs[:, :2] * self.weight)


class FakeGroup:
    """What ``play_round`` uses of an EnvRunnerGroup: the runners and ``foreach_env_runner``."""

    def __init__(self, runners):
        self.runners = runners

    def num_remote_env_runners(self) -> int:
        return len(self.runners) if self.runners[0].worker_index > 0 else 0

    def foreach_env_runner(self, func, local_env_runner=True):
        return [func(runner) for runner in self.runners]


def runner(index: int, module=None):
    config = SimpleNamespace(env=VGFEnv, env_config=ENV_CONFIG)
    return SimpleNamespace(module=module or RecordingModule(), config=config, worker_index=index)


def test_every_budget_plays_the_same_initial_states():
    """With actions that ignore the budget, each episode's rows at budgets 0..3 play the very same trajectory
    (same initial state), while different episodes start elsewhere."""
    module = RecordingModule()
    results = play_round(FakeGroup([runner(0, module)]), [0, 1, 2, 3], 4, 0.1, seed=3)
    assert len(results) == 16
    for obs in (module.observations[0], module.observations[-1]):  # the initial states, and the last ones
        per_episode = obs.reshape(4, 4, -1)  # rows are (episode, budget) in order
        assert torch.equal(per_episode, per_episode[:, :1].expand_as(per_episode))
    starts = module.observations[0].reshape(4, 4, -1)[:, 0]
    assert len({tuple(row.tolist()) for row in starts}) == 4  # each episode starts elsewhere


def test_one_module_call_per_env_step_with_each_rows_budget():
    module = RecordingModule()
    results = play_round(FakeGroup([runner(0, module)]), [0, 2, 3], 2, 0.1, seed=0)
    assert module.calls[0] == [0, 2, 3, 0, 2, 3]  # every row of the round in the first call
    assert len(module.calls) == max(r.length for r in results)  # one call per step of the longest episode
    assert all(len(call) <= 6 for call in module.calls)


def test_live_rows_are_padded_to_a_few_batch_shapes():
    """As episodes end, the batch is padded (with a live row, whose extra actions are dropped) to a power of two
    or the chunk's size, so a compiled acting graph is built for a few shapes, not for every count."""
    assert [padded_rows(n, 80) for n in (1, 2, 3, 5, 9, 33, 64, 65, 80)] == [1, 2, 4, 8, 16, 64, 64, 80, 80]
    module = RecordingModule()
    env_config = {**ENV_CONFIG, "env_kwargs": {"max_episode_steps": 40}}
    group = FakeGroup([SimpleNamespace(module=module, worker_index=0,
                                       config=SimpleNamespace(env=VGFEnv, env_config=env_config))])
    results = play_round(group, [0, 1, 2], 5, 0.1, seed=0)
    assert {len(call) for call in module.calls} <= {1, 2, 4, 8, 15}
    assert len(module.calls) == max(r.length for r in results)


def test_rows_split_over_runners_by_whole_episodes():
    rows = plan_rows(5, [0, 1], seed=0)
    shares = [rows_of_runner(rows, index, 2) for index in (1, 2)]
    assert sorted(shares[0] + shares[1], key=lambda r: (r.episode, r.budget)) == rows
    for share in shares:
        for row in share:
            assert {r.budget for r in share if r.episode == row.episode} == {0, 1}
    results = play_round(FakeGroup([runner(1), runner(2)]), [0, 1], 5, 0.1, seed=0)
    alone = play_round(FakeGroup([runner(0)]), [0, 1], 5, 0.1, seed=0)
    key = lambda r: (r.episode, r.budget)  # noqa: E731
    assert sorted(results, key=key) == sorted(alone, key=key)


def test_episode_seeds_depend_on_the_run_seed_only():
    assert [r.seed for r in plan_rows(2, [0, 1, 2], seed=7)] == [plan_rows(1, [0], 7)[0].seed] * 3 + [
        plan_rows(1, [0], 7)[0].seed + 1] * 3
    first = play_round(FakeGroup([runner(0)]), [0], 3, 0.1, seed=1)
    again = play_round(FakeGroup([runner(0)]), [0], 3, 0.1, seed=1)
    assert [r.episode_return for r in first] == [r.episode_return for r in again]
    assert np.isfinite([r.episode_return for r in first]).all()


def test_the_evaluation_record_picks_the_best_budget_by_score_and_counts_env_steps():
    from vgf_ray.metrics import BudgetEvaluation, BudgetStats

    round_ = BudgetEvaluation({0: BudgetStats(1.0, 300.0, 100.0, 4, score=10.0),
                               1: BudgetStats(0.0, 900.0, 50.0, 4, score=30.0),
                               2: BudgetStats(0.5, 900.0, 25.0, 4, score=30.0)})
    out = round_.as_dict()
    assert out["best_budget"] == 1 and out["best_score"] == 30.0 and out["best_success"] == 0.0  # first on ties
    assert out["budget_2"] == {"success": 0.5, "return": 900.0, "episode_len": 25.0, "episodes": 4, "score": 30.0}
    assert round_.env_steps == 700
    unscored = BudgetEvaluation({0: BudgetStats(0.2, 1.0, 10.0, 2), 3: BudgetStats(0.6, 0.0, 10.0, 2)}).as_dict()
    assert unscored["best_budget"] == 3 and "best_score" not in unscored and "score" not in unscored["budget_0"]
