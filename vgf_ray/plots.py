"""Plots people look at: learning curve per test-time budget, and success against the budget."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vgf_ray.metrics import (  # noqa: E402
    BEST_SUCCESS,
    GRAD_STEPS,
    RETURN,
    SCORE,
    STEP,
    SUCCESS,
    VGF_ALGORITHM,  # noqa: E402
    budget_key,
    budget_metric,
    headline_stat,
)

STAT_LABELS = {SUCCESS: "success rate", SCORE: "normalized score (0 random, 100 expert)", RETURN: "episode return"}


def _legend(ax, **kwargs) -> None:
    """A legend once something is drawn: before a run's first evaluation there is no line, and matplotlib warns
    about an empty legend at every iteration (a warning nobody can act on)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def plot_learning_curves(history: list[dict], budgets: list[int], path: str | Path, metric: str = SUCCESS,
                         online_start: int | None = None, algorithm: str = VGF_ALGORITHM) -> None:
    """One line per budget: evaluation ``metric`` against steps (offline gradient steps, then online env steps).
    A baseline (``algorithm`` bc/iql/cql) has no transport: one line, titled with its own name."""
    transport = algorithm == VGF_ALGORITHM
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for budget in budgets:
        key = budget_metric(budget, metric)
        points = [(row.get(STEP, row[GRAD_STEPS]), row[key]) for row in history if key in row]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=f"L_test = {budget}" if transport else algorithm.upper())
    if online_start is not None:
        ax.axvline(online_start, color="gray", linestyle="--", label="online phase starts")
    ax.set_xlabel("steps (offline gradient steps, then online env steps)" if online_start is not None
                  else "gradient steps")
    ax.set_ylabel(f"evaluation {STAT_LABELS.get(metric, metric)}")
    ax.set_title(f"VGF learning curve per test-time transport budget ({metric})" if transport
                 else f"{algorithm.upper()} learning curve ({metric})")
    ax.grid(alpha=0.3)
    _legend(ax)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_budget_curve(results: dict, budgets: list[int], path: str | Path, step_size: float | None,
                      algorithm: str = VGF_ALGORITHM) -> None:
    """Success (or the normalized score, where scored) and return against the test-time budget L (transport
    L * step_size per coordinate); a baseline's one evaluation as a single point under its own name."""
    transport = algorithm == VGF_ALGORITHM
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
    stat = headline_stat(results[budget_key(budgets[0])])
    headline = [results[budget_key(b)][stat] for b in budgets]
    returns = [results[budget_key(b)][RETURN] for b in budgets]
    ax1.plot(budgets, headline, marker="o")
    ax1.set_ylabel(STAT_LABELS[stat])
    ax2.plot(budgets, returns, marker="o", color="tab:orange")
    ax2.set_ylabel("episode return")
    for ax in (ax1, ax2):
        if transport:
            ax.set_xlabel("test-time flow steps L" + (f" (step size {step_size})" if step_size is not None else ""))
            ax.set_xticks(budgets)
        else:
            ax.set_xticks(budgets, [algorithm.upper()] * len(budgets))
        ax.grid(alpha=0.3)
    fig.suptitle("VGF: one trained agent at several transport budgets" if transport
                 else f"{algorithm.upper()}: final evaluation (no transport budget)")
    fig.subplots_adjust(wspace=0.35)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_trial_curves(histories: dict[str, list[dict]], path: str | Path) -> None:
    """Best success over the test-time budgets against steps, one line per sweep trial."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, history in histories.items():
        points = [(row.get(STEP, row[GRAD_STEPS]), row[BEST_SUCCESS]) for row in history if BEST_SUCCESS in row]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel("steps (offline gradient steps, then online env steps)")
    ax.set_ylabel("best success over test-time budgets")
    ax.set_title("Sweep trials")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_budget_lineages(lineages: dict[str, list[dict]], path: str | Path) -> bool:
    """The budget each trial trained with (PBT's schedule): one panel per key that changed anywhere, values
    against gradient steps. Returns False (no file) when no trial changed any value."""
    keys = sorted({key for lineage in lineages.values() for seg in lineage for key, value in seg["values"].items()
                   if value != lineage[0]["values"][key]})
    if not keys:
        return False
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        for name, lineage in lineages.items():
            xs = [seg[GRAD_STEPS] for seg in lineage]
            ys = [seg["values"][key] for seg in lineage]
            end = max(xs[-1] + 1, max((s[GRAD_STEPS] for lin in lineages.values() for s in lin), default=0))
            ax.step([*xs, end], [*ys, ys[-1]], where="post", label=name)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("gradient step at which the value took effect")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Budget schedule found by the sweep, per trial")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_behavior_curve(curve: list[dict], refs: dict, path: str | Path) -> None:
    """A behavior policy's SAC training curve with the picked medium and expert snapshots and the random return."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    steps = [row["step"] for row in curve]
    means = [row["return_mean"] for row in curve]
    stds = [row["return_std"] for row in curve]
    ax.plot(steps, means, label="stochastic return (training-time evaluation)")
    ax.fill_between(steps, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], alpha=0.2)
    for level, color in (("medium", "tab:orange"), ("expert", "tab:green")):
        row = refs[level]
        ax.scatter([row["step"]], [row["return_mean"]], color=color, zorder=3,
                   label=f"{level}: {row['return_mean']:.0f} over {row['episodes']} episodes")
    ax.axhline(refs["random"]["return_mean"], color="gray", linestyle="--", label="uniform-random policy")
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.set_title(f"Behavior policy training: SAC on {refs['env_id']}")
    _legend(ax, loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
