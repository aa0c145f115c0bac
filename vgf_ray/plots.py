"""Plots people look at: learning curve per test-time budget, and success against the budget."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_learning_curves(history: list[dict], budgets: list[int], path: str | Path, metric: str = "success",
                         online_start: int | None = None) -> None:
    """One line per budget: evaluation ``metric`` against steps (offline gradient steps, then online env steps)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for budget in budgets:
        key = f"budget_{budget}/{metric}"
        points = [(row.get("step", row["grad_steps"]), row[key]) for row in history if key in row]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=f"L_test = {budget}")
    if online_start is not None:
        ax.axvline(online_start, color="gray", linestyle="--", label="online phase starts")
    ax.set_xlabel("steps (offline gradient steps, then online env steps)" if online_start is not None
                  else "gradient steps")
    ax.set_ylabel(f"evaluation {metric}")
    ax.set_title(f"VGF learning curve per test-time transport budget ({metric})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_budget_curve(results: dict, budgets: list[int], path: str | Path, step_size: float) -> None:
    """Success and return against the test-time budget L (transport L * step_size per coordinate)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
    success = [results[f"budget_{b}"]["success"] for b in budgets]
    returns = [results[f"budget_{b}"]["return"] for b in budgets]
    ax1.plot(budgets, success, marker="o")
    ax1.set_ylabel("success rate")
    ax2.plot(budgets, returns, marker="o", color="tab:orange")
    ax2.set_ylabel("episode return")
    for ax in (ax1, ax2):
        ax.set_xlabel(f"test-time flow steps L (step size {step_size})")
        ax.set_xticks(budgets)
        ax.grid(alpha=0.3)
    fig.suptitle("VGF: one trained agent at several transport budgets")
    fig.subplots_adjust(wspace=0.35)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
