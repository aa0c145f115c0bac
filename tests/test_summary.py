"""The end of a run a person reads: the one-screen summary, and no library noise they cannot act on."""

import logging
import warnings

from vgf_ray.experiment.runner import ExperimentResult
from vgf_ray.experiment.summary import run_summary
from vgf_ray.quiet import quiet_library_noise


def test_summary_shows_success_per_budget_outputs_and_next_commands(tmp_path):
    (tmp_path / "mlflow_run_id.txt").write_text("abc123\n")
    history = [{"iteration": 4, "grad_steps": 4000, "online_env_steps": 0, "budget_0/success": 0.1,
                "budget_0/return": -150.0, "budget_1/success": 0.35, "budget_1/return": -120.0},
               {"iteration": 5, "grad_steps": 5000, "online_env_steps": 1000}]
    exp = {"name": "quick", "algorithm": "vgf", "evaluation": {"episodes": 20, "budgets": [0, 1]},
           "mlflow": {"tracking_uri": "sqlite:////x/mlflow.db", "experiment": "vgf_ray"}}
    text = run_summary(exp, ExperimentResult(history, None, "/c", str(tmp_path), []), 125.0)
    lines = text.splitlines()
    assert lines[0] == "quick (vgf) finished in 2m05s: 5000 gradient steps, 1000 online env steps"
    assert "iteration 4, 20 paired episodes" in lines[1]
    assert lines[2].startswith("  L=0   0.10") and "<- best" not in lines[2]
    assert lines[3].startswith("  L=1   0.35") and lines[3].endswith("<- best") and "#" * 10 in lines[3]
    assert any("run abc123" in line and "mlflow ui --backend-store-uri sqlite:////x/mlflow.db" in line
               for line in lines)
    assert any("vgf-ray evaluate /c --budgets" in line for line in lines)
    assert len(lines) <= 20  # one screen
    empty = run_summary({**exp, "mlflow": {}}, ExperimentResult([], None, None, str(tmp_path), []), 1)
    assert "no evaluation ran" in empty and "MLflow" not in empty


def test_library_noise_is_dropped_and_other_messages_kept(caplog):
    quiet_library_noise()
    with caplog.at_level(logging.INFO):
        logging.getLogger("ray.rllib.algorithms.algorithm_config").warning("You are running VGF on the new API stack!")
        logging.getLogger("ray.tune.utils.util").warning("Install gputil for GPU system monitoring.")
        logging.getLogger("ray.rllib.algorithms.algorithm_config").warning("something about your settings")
    assert [r.getMessage() for r in caplog.records] == ["something about your settings"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_library_noise()
        warnings.warn("WARN: Box low's precision lowered by casting to float32", stacklevel=1)
        warnings.warn("a warning the user should see", stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning the user should see"]


def test_learning_curve_before_the_first_evaluation_warns_nothing(tmp_path):
    """Iterations before a run's first evaluation plot an empty curve; it must not print matplotlib's warning."""
    from vgf_ray.metrics import GRAD_STEPS, budget_metric
    from vgf_ray.plots import plot_learning_curves

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_learning_curves([{GRAD_STEPS: 1000}], [0, 1], tmp_path / "empty.png")
        plot_learning_curves([{GRAD_STEPS: 1000, budget_metric(0): 0.5}], [0, 1], tmp_path / "one.png")
    assert (tmp_path / "empty.png").stat().st_size > 0 and (tmp_path / "one.png").stat().st_size > 0


def test_plots_name_the_algorithm_and_a_baseline_has_no_budget_axis(tmp_path, monkeypatch):
    """A baseline's run folder holds the same plots as VGF's; they say which algorithm they show and do not
    describe transport budgets it does not have."""
    from vgf_ray import plots
    from vgf_ray.metrics import GRAD_STEPS, RETURN, SUCCESS, budget_key, budget_metric

    drawn = []
    monkeypatch.setattr(plots.plt, "close", drawn.append)
    history = [{GRAD_STEPS: 1000, budget_metric(0): 0.5}]
    final = {budget_key(0): {SUCCESS: 0.5, RETURN: -10.0}}
    plots.plot_learning_curves(history, [0], tmp_path / "bc.png", algorithm="bc")
    plots.plot_budget_curve(final, [0], tmp_path / "bc_budget.png", 0.0, "bc")
    plots.plot_learning_curves(history, [0], tmp_path / "vgf.png")
    bc_curve, bc_budget, vgf_curve = drawn
    assert bc_curve.axes[0].get_title() == "BC learning curve (success)"
    assert bc_curve.axes[0].get_legend_handles_labels()[1] == ["BC"]
    assert "no transport budget" in bc_budget._suptitle.get_text()
    assert bc_budget.axes[0].get_xlabel() == ""
    assert [t.get_text() for t in bc_budget.axes[0].get_xticklabels()] == ["BC"]
    assert vgf_curve.axes[0].get_title().startswith("VGF learning curve per test-time transport budget")
    assert vgf_curve.axes[0].get_legend_handles_labels()[1] == ["L_test = 0"]


def test_a_baseline_runs_report_shows_its_one_evaluation(tmp_path):
    """A baseline's experiment file keeps the evaluation budgets of the VGF config it came from; the report must
    not look for budgets 1..3 that a baseline never evaluates."""
    import yaml

    from vgf_ray.experiment.runner import EXPERIMENT_YAML
    from vgf_ray.report import _run_settings

    exp = {"algorithm": "bc", "evaluation": {"budgets": [0, 1, 2, 3]}, "training": {}}
    (tmp_path / EXPERIMENT_YAML).write_text(yaml.safe_dump(exp))
    assert _run_settings(tmp_path, []) == ([0], None, "bc")
    exp.update(algorithm="vgf", training={"eval_step_size": 0.01})
    (tmp_path / EXPERIMENT_YAML).write_text(yaml.safe_dump(exp))
    assert _run_settings(tmp_path, []) == ([0, 1, 2, 3], 0.01, "vgf")
