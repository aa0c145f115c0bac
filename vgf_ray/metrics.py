"""Names shared by the RLlib layer, the experiment runner, Tune, MLflow and the reports.

Every metric, phase and result key that crosses a layer is defined here once (no Ray imports), so that a
renamed metric cannot silently drop out of a history file, a sweep's selection or a plot.
"""

from __future__ import annotations

from dataclasses import dataclass

# The one RLModule VGF trains: RLlib's single-agent module id (``ray.rllib.core.DEFAULT_MODULE_ID``, checked by a
# test; not imported here so that this module stays free of Ray's import time).
MODULE_ID = "default_policy"

# The algorithms an experiment names, and the test-time budgets each is evaluated at by default.
VGF_ALGORITHM = "vgf"
BASELINES = ("bc", "iql", "cql")  # RLlib's own, built by vgf_ray.experiment.baselines
ALGORITHMS = (VGF_ALGORITHM, *BASELINES)
DEFAULT_BUDGETS = (0, 1, 2, 3)  # one trained VGF agent, evaluated at transport steps L = 0..3
BASELINE_BUDGETS = (0,)  # a baseline has no transport: its one evaluation is filed under budget 0

# Phases of a run (spec 2.8) and the result key that reports them.
PHASE = "phase"
PHASE_OFFLINE, PHASE_ONLINE, PHASE_DONE = 0, 1, 2

# Counters of the algorithm, reported every iteration and kept in history rows.
ITERATION = "iteration"
GRAD_STEPS = "grad_steps"
ONLINE_ENV_STEPS = "online_env_steps"
GRAD_STEPS_LIFETIME = "num_grad_steps_lifetime"
ONLINE_ENV_STEPS_LIFETIME = "online_env_steps_lifetime"
ONLINE_BUFFER_SIZE = "online_buffer_size"
# Where the work ran (online iterations): Ray node id -> EnvRunners that sampled there / learners there, and the
# EnvRunner restarts RLlib made so far. Cluster runs assert placement and fault recovery from these.
ENV_RUNNER_NODES = "env_runner_nodes"
LEARNER_NODES = "learner_nodes"
ENV_RUNNER_RESTARTS = "env_runner_restarts"
LEARNER_RESTARTS = "learner_restarts"  # remote learner groups rebuilt after losing a learner (vgf_ray's, not RLlib's)
# Online rounds: weight versions (learner update rounds) between the weights a round was sampled with and the
# weights it trains (0 synchronous, 1 with async_sampling), and the weight sync to the EnvRunners per iteration.
POLICY_LAG = "policy_lag"
WEIGHT_SYNC_S = "weight_sync_s"
WEIGHT_SYNC_MB = "weight_sync_mb"  # object-store bytes of one sync (inference-only weights), in MB
STEP = "step"  # x axis of learning curves: gradient steps offline, then offline steps + online env steps

# Learner metrics (logged under the module id).
CRITIC_LOSS = "critic/loss"
CRITIC_Q_MEAN = "critic/q_mean"
CRITIC_Q_MAX = "critic/q_max"
CRITIC_Q_MIN = "critic/q_min"
CRITIC_TARGET_MEAN = "critic/target_mean"
GRAD_NET_TARGET_NORM = "grad_net/target_norm"
BC_LOSS = "bc/loss"
GRAD_NET_LOSS = "grad_net/loss"
# The baselines' losses under RLlib's own names (ray.rllib ``POLICY_LOSS_KEY`` / ``QF_LOSS_KEY``; a test checks).
POLICY_LOSS, QF_LOSS = "policy_loss", "qf_loss"
LOSS_METRICS = (CRITIC_LOSS, CRITIC_Q_MEAN, BC_LOSS, GRAD_NET_LOSS, POLICY_LOSS, QF_LOSS)

# Evaluation: one trained agent at every test-time budget L.
EVALUATION = "evaluation"
SUCCESS, RETURN, EPISODE_LEN, EPISODES = "success", "return", "episode_len", "episodes"
# Normalized score, 100 (R - R_random) / (R_expert - R_random), where the env has a score reference (locomotion).
SCORE = "score"
SCORE_REFERENCE = "score_reference"  # env_config key: [R_random, R_expert]
EVAL_STATS = (SUCCESS, RETURN, SCORE)  # per-budget statistics kept in history rows (score only where scored)
BEST_BUDGET, BEST_SUCCESS, BEST_SCORE = "best_budget", "best_success", "best_score"

# RLlib's own result layout (names as ``ray.rllib.core.ALL_MODULES`` and ``ray.rllib.utils.metrics``; a test checks):
# a learner's counters go under ``learners/__all_modules__``, and evaluation also fills RLlib's standard
# ``evaluation/env_runners/...`` block, from the default test budget's statistics (``default_test_budget``).
ENV_RUNNERS, ALL_MODULES = "env_runners", "__all_modules__"
NUM_GRAD_STEPS = "num_grad_steps"
NUM_ENV_STEPS_TRAINED, NUM_ENV_STEPS_TRAINED_LIFETIME = "num_env_steps_trained", "num_env_steps_trained_lifetime"
NUM_MODULE_STEPS_TRAINED = "num_module_steps_trained"
NUM_ENV_STEPS_SAMPLED_LIFETIME, NUM_EPISODES_LIFETIME = "num_env_steps_sampled_lifetime", "num_episodes_lifetime"
EPISODE_RETURN_MEAN, EPISODE_LEN_MEAN, NUM_EPISODES = "episode_return_mean", "episode_len_mean", "num_episodes"
RLLIB_EVALUATION_STATS = {RETURN: EPISODE_RETURN_MEAN, EPISODE_LEN: EPISODE_LEN_MEAN, EPISODES: NUM_EPISODES}

# The transport budget as applied (schedules, PBT): config key -> metric name.
BUDGET_METRICS = {
    "train_vgf_steps": "budget/train_steps",
    "vgf_lr": "budget/step_size",
    "vgf_alpha": "budget/alpha",
    "exploration_steps": "budget/exploration_steps",
    "exploration_step_size": "budget/exploration_step_size",
    "value_lr": "budget/value_lr",
    "actor_lr": "budget/actor_lr",
}


BUDGET_PREFIX = "budget_"


def budget_key(budget: int) -> str:
    """``budget_<L>``: the evaluation block of test-time budget L."""
    return f"{BUDGET_PREFIX}{int(budget)}"


def budget_metric(budget: int, stat: str = SUCCESS) -> str:
    """History/plot column of one budget's statistic, e.g. ``budget_2/success``."""
    return f"{budget_key(budget)}/{stat}"


def evaluation_metric(name: str) -> str:
    """The name Tune and MLflow see, e.g. ``evaluation/budget_2/success`` or ``evaluation/best_success``."""
    return f"{EVALUATION}/{name}"


def headline_stat(stats: dict, budget: int | None = None) -> str:
    """What a run is judged by: the normalized score where the evaluation reports one, else success. ``stats``
    is one budget's block, or a history row with ``budget`` given."""
    key = SCORE if budget is None else budget_metric(budget, SCORE)
    return SCORE if key in stats else SUCCESS


def best_budget_values(value, budgets: list[int]) -> dict:
    """``{best_budget, best_success[, best_score]}`` from ``value(budget, stat)``: the budget with the highest
    headline statistic (the normalized score where ``value`` has one, else success), first on ties."""
    try:
        value(budgets[0], SCORE)
        stat = SCORE
    except KeyError:
        stat = SUCCESS
    best = max(budgets, key=lambda b: value(b, stat))
    out = {BEST_BUDGET: best, BEST_SUCCESS: value(best, SUCCESS)}
    if stat == SCORE:
        out[BEST_SCORE] = value(best, SCORE)
    return out


def default_test_budget(budgets: list[int], train_steps: int) -> int:
    """The budget RLlib's standard evaluation keys report: the one ``forward_inference`` acts with (the training
    budget L_train in force), or, where it is not evaluated, the largest evaluated budget below it (else the
    smallest evaluated)."""
    below = [b for b in budgets if b <= train_steps]
    return max(below) if below else min(budgets)


def reported_evaluation_metrics(budgets: list[int], scored: bool = False) -> list[str]:
    """Every evaluation metric a run with these budgets reports (what a sweep may select on); ``scored``: the
    env has a score reference, so per-budget and best normalized scores are reported too."""
    stats = EVAL_STATS if scored else (SUCCESS, RETURN)
    names = [evaluation_metric(budget_metric(b, stat)) for b in budgets for stat in stats]
    best = [BEST_SUCCESS, BEST_BUDGET] + ([BEST_SCORE] if scored else [])
    standard = [f"{ENV_RUNNERS}/{EPISODE_RETURN_MEAN}", f"{ENV_RUNNERS}/{EPISODE_LEN_MEAN}"]
    return names + [evaluation_metric(name) for name in best + standard]


@dataclass(frozen=True)
class BudgetStats:
    """One budget's evaluation episodes: mean success, return and length, their count, and the normalized score
    where the env has a score reference."""

    success: float
    episode_return: float
    episode_len: float
    episodes: int
    score: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The budget's block as results, history and JSON carry it (``success``, ``return``, ...)."""
        out = {SUCCESS: self.success, RETURN: self.episode_return, EPISODE_LEN: self.episode_len,
               EPISODES: self.episodes}
        return out if self.score is None else {**out, SCORE: self.score}


@dataclass(frozen=True)
class BudgetEvaluation:
    """One evaluation round of a trained agent: its statistics at every test-time budget played."""

    per_budget: dict[int, BudgetStats]

    @property
    def env_steps(self) -> int:
        return round(sum(s.episode_len * s.episodes for s in self.per_budget.values()))

    def as_dict(self) -> dict:
        """``{budget_<L>: {...}, best_budget, best_success[, best_score]}``: what RLlib's evaluation results, the
        run's ``evaluation.json`` and the history read."""
        budgets = list(self.per_budget)
        out: dict = {budget_key(b): s.as_dict() for b, s in self.per_budget.items()}
        return out | best_budget_values(lambda b, stat: out[budget_key(b)][stat], budgets)
