"""``vgf-ray report DIR``: one self-contained HTML page for a run folder or a sweep folder.

A run: learning curves per test-time budget, success against the budget, the final evaluation. A sweep: the
table of trials, the best config, every trial's curve and the budget schedule each trial trained with (PBT).
Plots are embedded as PNG, so the page can be mailed or attached to an MLflow run as it is.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from vgf_ray.errors import ExperimentError
from vgf_ray.experiment.history import HISTORY_JSON, final_evaluation
from vgf_ray.experiment.lineage import read_lineage, trial_id
from vgf_ray.experiment.runner import EXPERIMENT_YAML
from vgf_ray.experiment.schema import algorithm_of
from vgf_ray.metrics import (
    BASELINE_BUDGETS,
    BEST_SCORE,
    BEST_SUCCESS,
    BUDGET_PREFIX,
    EVAL_STATS,
    GRAD_STEPS,
    RETURN,
    SCORE,
    SUCCESS,
    VGF_ALGORITHM,
    budget_key,
)
from vgf_ray.plots import plot_budget_curve, plot_budget_lineages, plot_learning_curves, plot_trial_curves

STAT_COLUMNS = {SUCCESS: "success", RETURN: "return", SCORE: "normalized score"}

REPORT_HTML = "report.html"
STYLE = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}")


def _png(plot, *args) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plot.png"
        if plot(*args, path) is False:
            return ""
        return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _run_settings(folder: Path, history: list[dict]) -> tuple[list[int], float | None, str]:
    """(evaluated budgets, test-time step size, algorithm) from the run's experiment file, else its history."""
    exp_file = folder / EXPERIMENT_YAML
    if exp_file.exists():
        exp = yaml.safe_load(exp_file.read_text())
        training = exp.get("training", {})
        algorithm = algorithm_of(exp)
        budgets = exp["evaluation"]["budgets"] if algorithm == VGF_ALGORITHM else BASELINE_BUDGETS
        return list(budgets), training.get("eval_step_size") or training.get("vgf_lr"), algorithm
    return sorted({int(k.split("/")[0][len(BUDGET_PREFIX):]) for row in history for k in row
                   if k.startswith(BUDGET_PREFIX) and k.endswith(f"/{SUCCESS}")}), None, VGF_ALGORITHM


def _run_section(folder: Path) -> str:
    history = json.loads((folder / HISTORY_JSON).read_text())
    budgets, step_size, algorithm = _run_settings(folder, history)
    parts = [_png(lambda h, b, p: plot_learning_curves(h, b, p, algorithm=algorithm), history, budgets)]
    final = final_evaluation(history, budgets)
    if final is not None:
        parts.append(_png(lambda r, b, p: plot_budget_curve(r, b, p, step_size, algorithm), final, budgets))
        stats = [stat for stat in EVAL_STATS if stat in final[budget_key(budgets[0])]]
        parts.append(_table(["L_test", *(STAT_COLUMNS[stat] for stat in stats)],
                            [[b, *(final[budget_key(b)][stat] for stat in stats)] for b in budgets]))
    return "\n".join(parts)


def _sweep_section(folder: Path, trials: list[Path]) -> str:
    summary_file = folder / "sweep_summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}

    histories = {trial_id(t.name): json.loads((t / HISTORY_JSON).read_text()) for t in trials}
    lineages = {name: read_lineage(t) for name, t in zip(histories, trials)}
    params = {name: json.loads((t / "params.json").read_text()) if (t / "params.json").exists() else {}
              for name, t in zip(histories, trials)}
    keys = sorted({k for p in params.values() for k in p})
    rows = []
    for name, history in histories.items():
        last = history[-1] if history else {}
        evaluated = [row for row in history if BEST_SUCCESS in row]
        best = BEST_SCORE if evaluated and BEST_SCORE in evaluated[-1] else BEST_SUCCESS
        rows.append([name, *(params[name].get(k, "") for k in keys), last.get(GRAD_STEPS, 0),
                     f"{evaluated[-1][best]:.3g} ({best.replace('_', ' ')})" if evaluated else ""])
    parts = []
    if summary:
        parts.append(f"<p>Selected on <b>{html.escape(str(summary.get('metric')))}</b> ({summary.get('mode')}): best "
                     f"trial <b>{html.escape(str(summary.get('best_trial')))}</b> = {summary.get('best_metric')}</p>")
        parts.append("<h3>Best config</h3><pre>" + html.escape(json.dumps(summary.get("best_config"), indent=2))
                     + "</pre>")
    parts.append("<h3>Trials</h3>" + _table(["trial", *keys, "grad steps", "last best"], rows))
    parts.append("<h3>Curves</h3>" + _png(plot_trial_curves, histories))
    schedule = _png(plot_budget_lineages, lineages)
    parts.append("<h3>Budget schedule per trial</h3>" + (schedule or "<p>No trial changed its budget.</p>"))
    return "\n".join(parts)


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML page for a run or sweep folder; returns its path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExperimentError(f"report: {folder} is not a folder")
    trials = sorted(d for d in folder.iterdir() if d.is_dir() and (d / HISTORY_JSON).exists())
    if (folder / HISTORY_JSON).exists():
        title, body = f"vgf_ray run {folder.name}", _run_section(folder)
    elif trials:
        title, body = f"vgf_ray sweep {folder.name}", _sweep_section(folder, trials)
        for trial in trials:
            body += f"<h2>Trial {html.escape(trial.name)}</h2>" + _run_section(trial)
    else:
        raise ExperimentError(f"report: {folder} holds neither a run (history.json) nor sweep trials")
    path = Path(out) if out else folder / REPORT_HTML
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return path
