"""Evaluation at several test-time transport budgets with RLlib's evaluation EnvRunners.

Reported as ``evaluation/budget_<L>/{success,return,episode_len}`` (and ``score`` where the env has a score
reference): one trained agent, budgets 0..3 by default. RLlib's standard ``evaluation/env_runners/{episode_return_mean,
episode_len_mean,num_episodes}`` report the default test budget (``metrics.default_test_budget``: the training
budget, as ``forward_inference`` acts; budget 0 for the baselines). A round plays every (episode, budget) row at once
(``batched_evaluation``); ``run_budget_evaluation_sequential`` is the former one-budget-at-a-time path through
RLlib's ``sample()``, kept as the benchmarks' baseline.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EVALUATION_RESULTS
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from vgf_ray.data.mujoco_refs import normalized_score
from vgf_ray.metrics import (
    RLLIB_EVALUATION_STATS,
    SCORE_REFERENCE,
    SUCCESS,
    BudgetEvaluation,
    BudgetStats,
    default_test_budget,
)
from vgf_ray.rllib.batched_evaluation import DEFAULT_PARALLEL_ROWS, play_round


def _episode_stats(episode) -> tuple[float, float, int]:
    infos = episode.get_infos()
    last = infos[-1] if len(infos) else {}
    success = float(last.get(SUCCESS, 0.0)) if isinstance(last, dict) else 0.0
    return success, float(episode.get_return()), len(episode)


def run_episodes(eval_env_runner_group, num_episodes: int, score_reference=None) -> BudgetStats:
    """``num_episodes`` (split over the remote runners, if any) without exploration: mean success, return and
    length, and the normalized score where ``score_reference`` ([R_random, R_expert]) is given. Each
    ``sample(num_episodes=...)`` call reseeds its env (RLlib), so every round - each budget, each algorithm
    with the same seed and runners - starts from the same initial states: paired episodes."""
    num_remote = eval_env_runner_group.num_remote_env_runners()
    per_runner = max(1, math.ceil(int(num_episodes) / max(1, num_remote)))
    per_worker = eval_env_runner_group.foreach_env_runner(
        lambda runner, n=per_runner: [_episode_stats(e) for e in runner.sample(num_episodes=n, explore=False)],
        local_env_runner=num_remote == 0,
    )
    stats = np.array([row for worker in per_worker for row in worker], dtype=np.float64)
    if len(stats) == 0:
        raise RuntimeError(f"no evaluation episode came back from {max(1, num_remote)} evaluation EnvRunner(s): each "
                           "failed or was restarted (its log under Ray's session folder says why)")
    return episode_means(stats[:, 0], stats[:, 1], stats[:, 2], score_reference)


def episode_means(success, returns, lengths, score_reference: tuple[float, float] | None) -> BudgetStats:
    """Mean success, return and length of some episodes, and their normalized score where scored."""
    mean_return = float(np.mean(returns))
    score = None if score_reference is None else float(normalized_score(mean_return, *score_reference))
    return BudgetStats(success=float(np.mean(success)), episode_return=mean_return,
                       episode_len=float(np.mean(lengths)), episodes=len(returns), score=score)


def score_reference_of(config) -> tuple[float, float] | None:
    """The env's [R_random, R_expert] (``env_config.score_reference``), if it has one."""
    reference = (config.env_config or {}).get(SCORE_REFERENCE)
    return None if reference is None else (float(reference[0]), float(reference[1]))


def budget_stats(results: list, budget: int, score_reference: tuple[float, float] | None) -> BudgetStats:
    """Mean success, return and length of one budget's episodes (and their normalized score where scored)."""
    mine = [r for r in results if r.budget == budget]
    return episode_means([r.success for r in mine], [r.episode_return for r in mine], [r.length for r in mine],
                         score_reference)


def run_budget_evaluation(
    eval_env_runner_group, budgets: list[int], num_episodes: int, step_size: float,
    budget_values: dict[str, Any] | None = None, score_reference: tuple[float, float] | None = None,
    seed: int = 0, parallel: int | None = DEFAULT_PARALLEL_ROWS,
) -> BudgetEvaluation:
    """``num_episodes`` paired episodes at each budget, every (episode, budget) row played at once."""
    played = play_round(eval_env_runner_group, budgets, num_episodes, step_size, seed, budget_values, parallel)
    return BudgetEvaluation({b: budget_stats(played, b, score_reference) for b in budgets})


def run_budget_evaluation_sequential(
    eval_env_runner_group, budgets: list[int], num_episodes: int, step_size: float,
    budget_values: dict[str, Any] | None = None, score_reference: tuple[float, float] | None = None,
) -> BudgetEvaluation:
    """Episodes at each transport budget on an EnvRunnerGroup (remote runners if any, else the local one).

    ``budget_values`` (a schedule's values now) sets the transport alpha the runners act with."""
    use_local = eval_env_runner_group.num_remote_env_runners() == 0
    per_budget: dict[int, BudgetStats] = {}
    for steps in budgets:
        def set_budget(runner, s=steps) -> None:
            if budget_values is not None:
                runner.module.apply_budget_values(budget_values)
            runner.module.set_budget(s, step_size)

        eval_env_runner_group.foreach_env_runner(set_budget, local_env_runner=use_local)
        per_budget[steps] = run_episodes(eval_env_runner_group, num_episodes, score_reference)
    return BudgetEvaluation(per_budget)


def _report(algorithm, evaluation: BudgetEvaluation, default_budget: int) -> tuple[dict, int, int]:
    """Into the algorithm's evaluation results, with RLlib's standard ``env_runners`` block (episode return,
    length and count) filled from the default test budget's episodes."""
    results, env_steps = evaluation.as_dict(), evaluation.env_steps
    stats = evaluation.per_budget[default_budget].as_dict()
    results[ENV_RUNNER_RESULTS] = {rllib: stats[ours] for ours, rllib in RLLIB_EVALUATION_STATS.items()}
    # Evaluation results reach Algorithm.evaluate() through its metrics logger (RLlib's new stack).
    logger = MetricsLogger()
    logger.log_dict(results, window=1)
    algorithm.metrics.aggregate([logger.reduce()], key=EVALUATION_RESULTS)
    return results, env_steps, env_steps


def evaluation_step_size(config, budget_values: dict[str, Any]) -> float:
    """The test-time transport step size of a run: its ``eval_step_size`` where set, else the training step size
    in force (a schedule's current ``vgf_lr``)."""
    return config.eval_step_size if config.eval_step_size is not None else budget_values["vgf_lr"]


def evaluate_budgets(algorithm, eval_env_runner_group) -> tuple[dict[str, Any], int, int]:
    """RLlib ``custom_evaluation_function``: ``evaluation_duration`` episodes at every budget in ``eval_budgets``."""
    config = algorithm.config
    values = algorithm.budget_values()
    step_size = evaluation_step_size(config, values)
    budgets = list(config.eval_budgets)
    evaluation = run_budget_evaluation(eval_env_runner_group, budgets, int(config.evaluation_duration), step_size,
                                       values, score_reference_of(config), config.seed or 0,
                                       config.eval_parallel_episodes)
    return _report(algorithm, evaluation, default_test_budget(budgets, values["train_vgf_steps"]))


def evaluate_policy(algorithm, eval_env_runner_group) -> tuple[dict[str, Any], int, int]:
    """``custom_evaluation_function`` of the baselines: their policy as is, reported as budget 0 (no transport),
    on the same episodes VGF's budget-0 round plays."""
    config = algorithm.config
    evaluation = run_budget_evaluation(eval_env_runner_group, [0], int(config.evaluation_duration), 0.0, None,
                                       score_reference_of(config), config.seed or 0)
    return _report(algorithm, evaluation, 0)
