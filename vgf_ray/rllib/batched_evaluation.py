"""One evaluation round as one batch: every (episode, budget) row plays at once, one module call per env step.

Each EnvRunner of the evaluation group plays its share of the rows in envs of its own (built from the run's env
config and kept for later rounds). Row ``(episode j, budget L)`` resets its env with seed ``seed + j`` at every
budget and for every algorithm, so the episodes are paired: the same initial states at each budget and for the
baselines. A VGF module acts for all live rows in one call, each row moved with its own budget
(``TransportBudget.per_row``); a baseline's module acts greedily (its distribution's deterministic action).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from vgf_ray.metrics import SUCCESS

EPISODE_SEED_OFFSET = 10_007  # episode seeds stay clear of the training envs' seeds
# Rows a runner plays at once unless told otherwise: each row holds an env of its own, and one OGBench
# manipulation env holds about 200 MB (its MuJoCo model), so a whole round's 80 rows at once would need 16 GB.
DEFAULT_PARALLEL_ROWS = 16


@dataclass(frozen=True)
class EvalRow:
    episode: int
    budget: int
    seed: int


@dataclass(frozen=True)
class EpisodeResult:
    episode: int
    budget: int
    success: float
    episode_return: float
    length: int


def plan_rows(num_episodes: int, budgets: list[int], seed: int) -> list[EvalRow]:
    """Every (episode, budget) pair of a round; episode ``j`` has the same seed at every budget."""
    return [EvalRow(j, b, seed + EPISODE_SEED_OFFSET + j) for j in range(num_episodes) for b in budgets]


def rows_of_runner(rows: list[EvalRow], worker_index: int, num_remote: int) -> list[EvalRow]:
    """The share of runner ``worker_index`` (1..n; 0 is the local runner, which plays every row when alone):
    whole episodes, all their budgets, dealt round-robin."""
    if num_remote == 0:
        return rows
    return [row for row in rows if row.episode % num_remote == worker_index - 1]


def greedy_actions(module, obs: np.ndarray, row_steps: list[int], step_size: float) -> np.ndarray:
    """Actions for a batch of observations: VGF at each row's budget, a baseline's deterministic action."""
    device = next(module.parameters()).device
    obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
    with torch.no_grad():
        if hasattr(module, "act_rows"):
            actions = module.act_rows(obs_t, row_steps, step_size)
        else:
            out = module.forward_inference({Columns.OBS: obs_t})
            actions = out.get(Columns.ACTIONS)
            if actions is None:
                dist = module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
                actions = dist.to_deterministic().sample()
    return actions.float().clamp(-1.0, 1.0).cpu().numpy()


def evaluation_envs(runner, count: int) -> list:
    """``count`` envs of the run's env config, made once per runner and reused by later rounds."""
    envs = getattr(runner, "_vgf_evaluation_envs", [])
    while len(envs) < count:
        envs.append(runner.config.env(dict(runner.config.env_config)))
    runner._vgf_evaluation_envs = envs
    return envs[:count]


def play_rows(runner, rows: list[EvalRow], step_size: float, parallel: int | None = None,
              timings: dict[str, float] | None = None) -> list[EpisodeResult]:
    """Play ``rows`` on ``runner``, ``parallel`` at a time (None: all at once), one module call per env step;
    ``timings`` (if given) accumulates seconds spent acting, in env steps and resets."""
    size = len(rows) if not parallel else min(parallel, len(rows))
    results: list[EpisodeResult] = []
    for start in range(0, len(rows), max(size, 1)):
        chunk = rows[start:start + size]
        results.extend(play_chunk(runner.module, evaluation_envs(runner, len(chunk)), chunk, step_size, timings))
    return results


def seeded_reset(env, seed: int):
    """``env.reset(seed=seed)`` with numpy's global RNG seeded alike for the call (and restored after): OGBench's
    maze envs draw their start and goal noise from ``np.random``, so their own seed alone does not repeat them."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        return env.reset(seed=seed)
    finally:
        np.random.set_state(state)


def padded_rows(live: int, rows: int) -> int:
    """The batch a step acts for: the live rows padded to the next power of two (at most ``rows``), so that as
    episodes end the module sees a handful of batch shapes, not one per count, and a compiled acting graph
    (``acting: auto`` or ``compiled``) is built a few times per round, not at every episode's end."""
    return min(rows, 1 << max(live - 1, 0).bit_length())


def play_chunk(module, envs: list, rows: list[EvalRow], step_size: float,
               timings: dict[str, float] | None = None) -> list[EpisodeResult]:
    """One episode per row, all rows stepping together until the last one ends."""
    clock = defaultdict(float)
    tic = time.perf_counter()
    obs = [seeded_reset(env, row.seed)[0] for env, row in zip(envs, rows)]
    clock["reset_s"] += time.perf_counter() - tic
    totals, lengths = [0.0] * len(rows), [0] * len(rows)
    live, success = list(range(len(rows))), [0.0] * len(rows)
    while live:
        tic = time.perf_counter()
        padded = live + live[-1:] * (padded_rows(len(live), len(rows)) - len(live))
        actions = greedy_actions(module, np.stack([obs[i] for i in padded]), [rows[i].budget for i in padded],
                                 step_size)[:len(live)]
        toc = time.perf_counter()
        clock["acting_s"] += toc - tic
        still = []
        for i, action in zip(live, actions):
            obs[i], reward, terminated, truncated, info = envs[i].step(action)
            totals[i] += float(reward)
            lengths[i] += 1
            if terminated or truncated:
                success[i] = float(info.get(SUCCESS, 0.0)) if isinstance(info, dict) else 0.0
            else:
                still.append(i)
        clock["env_step_s"] += time.perf_counter() - toc
        live = still
    if timings is not None:
        for key, seconds in clock.items():
            timings[key] = timings.get(key, 0.0) + seconds
    return [EpisodeResult(row.episode, row.budget, success[i], totals[i], lengths[i]) for i, row in enumerate(rows)]


def play_round(group, budgets: list[int], num_episodes: int, step_size: float, seed: int,
               budget_values: dict[str, Any] | None = None,
               parallel: int | None = DEFAULT_PARALLEL_ROWS) -> list[EpisodeResult]:
    """Every (episode, budget) row of a round on the group's runners (the local one where there are none),
    ``parallel`` rows at a time per runner (None: its whole share at once)."""
    rows = plan_rows(num_episodes, budgets, seed)
    num_remote = group.num_remote_env_runners()

    def work(runner) -> list[EpisodeResult]:
        if budget_values is not None and hasattr(runner.module, "apply_budget_values"):
            runner.module.apply_budget_values(budget_values)
        return play_rows(runner, rows_of_runner(rows, runner.worker_index, num_remote), step_size, parallel)

    per_runner = group.foreach_env_runner(work, local_env_runner=num_remote == 0)
    return [result for share in per_runner for result in share]
