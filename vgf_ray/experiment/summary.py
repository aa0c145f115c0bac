"""The one-screen summary ``vgf-ray train`` ends with: success per budget, where the outputs are, what to run next."""

from __future__ import annotations

from pathlib import Path

from vgf_ray.experiment.history import last_evaluation_row
from vgf_ray.experiment.schema import algorithm_of
from vgf_ray.experiment.tracking import RUN_ID_FILE
from vgf_ray.metrics import (
    BEST_BUDGET,
    DEFAULT_BUDGETS,
    GRAD_STEPS,
    ONLINE_ENV_STEPS,
    RETURN,
    SCORE,
    VGF_ALGORITHM,
    best_budget_values,
    budget_metric,
    headline_stat,
)

BAR_WIDTH = 30


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _budget_lines(row: dict, budgets: list[int], episodes: int) -> list[str]:
    """One line per budget with a bar: success, or the normalized score (0 random, 100 expert) where scored."""
    stat = headline_stat(row, budgets[0])
    name, full = ("normalized score", 100.0) if stat == SCORE else ("success", 1.0)
    lines = [f"{name} at iteration {row['iteration']}, {episodes} paired episodes per test-time budget L:"]
    best = best_budget_values(lambda b, stat: row[budget_metric(b, stat)], budgets)[BEST_BUDGET]
    for b in budgets:
        value = row[budget_metric(b, stat)]
        bar = "#" * max(0, min(BAR_WIDTH, round(value / full * BAR_WIDTH)))
        mark = "  <- best" if b == best else ""
        shown = f"{value:6.1f}" if stat == SCORE else f"{value:5.2f}"
        lines.append(f"  L={b}  {shown}  return {row[budget_metric(b, RETURN)]:8.1f}  |{bar:<{BAR_WIDTH}}|{mark}")
    return lines


def run_summary(exp: dict, result, wall_s: float) -> str:
    """Plain text, about 15 lines, from an ``ExperimentResult``: what a person looks at after a run."""
    history, out = result.history, Path(result.output_dir)
    vgf = algorithm_of(exp) == VGF_ALGORITHM
    budgets = list(exp["evaluation"].get("budgets", DEFAULT_BUDGETS)) if vgf else [0]
    last = history[-1] if history else {}
    lines = [f"{exp['name']} ({algorithm_of(exp)}) finished in {_duration(wall_s)}: "
             f"{last.get(GRAD_STEPS, 0)} gradient steps, {last.get(ONLINE_ENV_STEPS, 0)} online env steps"]
    row = last_evaluation_row(history, budgets)
    if row is None:
        lines.append("no evaluation ran (evaluation.interval); evaluate the checkpoint with the command below")
    else:
        lines.extend(_budget_lines(row, budgets, exp["evaluation"].get("episodes", 10)))
    lines.append(f"outputs:  {out}/ (learning_curve.png, budget_curve.png, history.csv, checkpoint/)")
    uri = (exp.get("mlflow") or {}).get("tracking_uri")
    run_id_file = out / RUN_ID_FILE
    if uri and run_id_file.exists():
        lines.append(f"MLflow:   run {run_id_file.read_text().strip()} in experiment "
                     f"'{exp['mlflow'].get('experiment', 'vgf_ray')}'; browse with "
                     f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1")
    checkpoint = result.checkpoint
    if checkpoint and vgf:
        lines.append(f"next:     vgf-ray evaluate {checkpoint} --budgets 0 1 2 3 5 --episodes 50")
    lines.append(f"          vgf-ray report {out}   (one HTML page: curves, budgets, lineage)")
    return "\n".join(lines)
