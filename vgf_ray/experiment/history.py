"""A run's history: one row per ``train()`` iteration, its files and plots, and the final evaluation.

Rows carry the counters, the losses, the transport budget applied (``budget/...``) and, on evaluating iterations,
success and return per test-time budget (``budget_<L>/success``). The same rows feed the history files, MLflow,
Tune's results and the HTML report.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from vgf_ray.metrics import (
    BEST_BUDGET,
    BEST_SCORE,
    BEST_SUCCESS,
    BUDGET_METRICS,
    BUDGET_PREFIX,
    ENV_RUNNER_NODES,
    ENV_RUNNER_RESTARTS,
    EVAL_STATS,
    EVALUATION,
    GRAD_STEPS,
    GRAD_STEPS_LIFETIME,
    ITERATION,
    LEARNER_NODES,
    LOSS_METRICS,
    MODULE_ID,
    ONLINE_BUFFER_SIZE,
    ONLINE_ENV_STEPS,
    ONLINE_ENV_STEPS_LIFETIME,
    PHASE,
    PHASE_OFFLINE,
    RETURN,
    STEP,
    SUCCESS,
    VGF_ALGORITHM,
    best_budget_values,
    budget_key,
    budget_metric,
    evaluation_metric,
    headline_stat,
)
from vgf_ray.plots import plot_budget_curve, plot_learning_curves

HISTORY_JSON, HISTORY_CSV = "history.json", "history.csv"
FINAL_EVALUATION = "final_evaluation.json"
LEARNING_CURVE_PNG, BUDGET_CURVE_PNG = "learning_curve.png", "budget_curve.png"
RUN_OUTPUT_FILES = (HISTORY_CSV, HISTORY_JSON, LEARNING_CURVE_PNG, BUDGET_CURVE_PNG, FINAL_EVALUATION)


def summarize(result: dict, budgets: list[int], evaluation_interval: int | None = None,
              offline_steps: int | None = None) -> dict:
    """The numbers of one ``train()`` result worth a history row.

    RLlib keeps the last evaluation's (or NaN) values in results of iterations without an evaluation round, so
    evaluation numbers are taken only on iterations that evaluate (every ``evaluation_interval``).
    """
    row: dict[str, Any] = {ITERATION: result["training_iteration"],
                           GRAD_STEPS: int(result.get(GRAD_STEPS_LIFETIME, 0)),
                           ONLINE_ENV_STEPS: int(result.get(ONLINE_ENV_STEPS_LIFETIME, 0)),
                           PHASE: int(result.get(PHASE, PHASE_OFFLINE)),
                           "time_s": result.get("time_total_s", 0.0)}
    online = row[PHASE] != PHASE_OFFLINE
    if online:
        _add_online(row, result)
    row[STEP] = (offline_steps or 0) + row[ONLINE_ENV_STEPS] if online else row[GRAD_STEPS]
    learner = result.get("learners", {}).get(MODULE_ID, {})
    for key in (*LOSS_METRICS, *BUDGET_METRICS.values()):
        value = learner.get(key, result.get(key))
        if value is not None:
            row[key] = float(value)
    if evaluation_interval and result["training_iteration"] % evaluation_interval == 0:
        _add_evaluation(row, result.get(EVALUATION, {}), budgets)
    if is_evaluation_row(row, budgets):
        add_best(row, budgets)
    return row


def _add_online(row: dict, result: dict) -> None:
    """An online round's replay size, where it ran ({node id: EnvRunners / learners}) and EnvRunner restarts."""
    if result.get(ONLINE_BUFFER_SIZE) is not None:
        row[ONLINE_BUFFER_SIZE] = int(result[ONLINE_BUFFER_SIZE])
    for key in (ENV_RUNNER_NODES, LEARNER_NODES):
        if result.get(key):  # a node seen in earlier rounds only is reduced to NaN: not here now
            row[key] = {node: int(n) for node, n in result[key].items() if math.isfinite(float(n)) and n > 0}
    if result.get(ENV_RUNNER_RESTARTS) is not None:
        row[ENV_RUNNER_RESTARTS] = int(result[ENV_RUNNER_RESTARTS])


def _add_evaluation(row: dict, evaluation: dict, budgets: list[int]) -> None:
    """Each budget's statistics of an iteration that evaluated."""
    for budget in budgets:
        stats = evaluation.get(budget_key(budget))
        # Iterations without an evaluation round still carry the keys, reduced to NaN: skip them.
        if stats and math.isfinite(float(stats.get(SUCCESS, float("nan")))):
            for stat in EVAL_STATS:
                if stat in stats:
                    row[budget_metric(budget, stat)] = float(stats[stat])


def add_best(row: dict, budgets: list[int]) -> None:
    """The best budget by the headline statistic (normalized score where scored, else success) and its values."""
    row.update(best_budget_values(lambda b, stat: row[budget_metric(b, stat)], budgets))


def is_evaluation_row(row: dict, budgets: list[int]) -> bool:
    return budget_metric(budgets[0]) in row


def last_evaluation_row(history: list[dict], budgets: list[int]) -> dict | None:
    return next((row for row in reversed(history) if is_evaluation_row(row, budgets)), None)


def final_evaluation(history: list[dict], budgets: list[int]) -> dict | None:
    """Success and return per budget of the last evaluating row (None before any evaluation)."""
    last = last_evaluation_row(history, budgets)
    if last is None:
        return None
    return {budget_key(b): {stat: last[budget_metric(b, stat)] for stat in EVAL_STATS if budget_metric(b, stat) in last}
            for b in budgets}


def tune_result(history: list[dict], budgets: list[int]) -> dict[str, Any]:
    """What a Tune trial reports for the newest row: its numbers, plus the latest evaluation under the
    ``evaluation/...`` names (carried over non-evaluating iterations, like RLlib does, so schedulers always find
    the metric; NaN before the first evaluation; ``evaluation/fresh`` says whether this iteration evaluated)."""
    row = history[-1]
    out = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not k.startswith(BUDGET_PREFIX)}
    last = last_evaluation_row(history, budgets)
    scored = last is not None and BEST_SCORE in last
    stats = EVAL_STATS if scored else (SUCCESS, RETURN)
    best = (BEST_SUCCESS, BEST_BUDGET, BEST_SCORE) if scored else (BEST_SUCCESS, BEST_BUDGET)
    for key in (*(budget_metric(b, s) for b in budgets for s in stats), *best):
        out[evaluation_metric(key)] = last[key] if last is not None else math.nan
    out[evaluation_metric("fresh")] = int(last is row)
    return out


def read_history(path: Path, up_to_iteration: int) -> list[dict]:
    """Rows of ``path`` (a run folder or a checkpoint holding ``history.json``) up to an iteration."""
    path = path / HISTORY_JSON
    if not path.exists():
        return []
    return [row for row in json.loads(path.read_text()) if row[ITERATION] <= up_to_iteration]


def write_history(history: list[dict], out_dir: Path) -> None:
    (out_dir / HISTORY_JSON).write_text(json.dumps(history, indent=2))
    keys = sorted({k for row in history for k in row}, key=lambda k: (k not in (ITERATION, GRAD_STEPS), k))
    with open(out_dir / HISTORY_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def write_run_outputs(history: list[dict], budgets: list[int], out_dir: Path, step_size: float,
                      online_start: int | None, algorithm: str = VGF_ALGORITHM) -> dict | None:
    """History files, the learning curve, and (once evaluated) the final evaluation and its budget plot."""
    write_history(history, out_dir)
    last = last_evaluation_row(history, budgets)
    metric = headline_stat(last, budgets[0]) if last is not None else SUCCESS
    plot_learning_curves(history, budgets, out_dir / LEARNING_CURVE_PNG, metric=metric, online_start=online_start,
                         algorithm=algorithm)
    final = final_evaluation(history, budgets)
    if final is not None:
        (out_dir / FINAL_EVALUATION).write_text(json.dumps(final, indent=2))
        plot_budget_curve(final, budgets, out_dir / BUDGET_CURVE_PNG, step_size, algorithm)
    return final
