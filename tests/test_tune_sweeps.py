"""`vgf-ray tune`: ASHA stops trials early, PBT mutates the budget (logged lineage = what the learners used), an
exported schedule replays a trial in `train`, MLflow holds a parent run with child runs, bad sweeps fail early."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vgf_ray.cli import main
from vgf_ray.errors import InputError
from vgf_ray.experiment import ExperimentError, load_experiment
from vgf_ray.experiment.lineage import read_lineage
from vgf_ray.metrics import BUDGET_METRICS, GRAD_STEPS, ITERATION
from vgf_ray.tuning import parse_sweep


@pytest.fixture
def sweep_file(tmp_path, pointmaze_npz):
    def write(sweep: dict, **sections) -> Path:
        exp = {
            "name": "sweep", "iterations": 4, "output_dir": str(tmp_path / "runs" / "{name}"),
            "env": {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 10}},
            "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
            "training": {"hidden_dims": [32, 32], "actor_hidden_dims": [32, 32], "num_particles": 4,
                         "bc_flow_steps": 3, "updates_per_iteration": 10, "train_batch_size_per_learner": 32},
            "evaluation": {"interval": 2, "episodes": 1, "budgets": [0, 1]},
            "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "sweeps"},
            "sweep": sweep, **sections,
        }
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(exp))
        return path

    return write


def summary_of(capsys) -> dict:
    printed = capsys.readouterr().out
    return json.loads(printed[printed.rindex('{\n  "metric"'):])


def test_asha_stops_a_trial_early(ray_session, sweep_file, tmp_path, capsys):
    # The first trial learns its behavior model at a useful rate; the others barely move, so ASHA's first rung
    # (iteration 2) stops them. One trial at a time makes the order, and so the outcome, deterministic.
    path = sweep_file({"metric": "bc/loss", "mode": "min", "max_concurrent_trials": 1,
                       "grid": {"training.actor_lr": [3e-3, 1e-7, 1e-7]},
                       "scheduler": {"type": "asha", "grace_period": 2, "reduction_factor": 2}},
                      mlflow={"tracking_uri": None})
    assert main(["tune", str(path)]) == 0
    summary = summary_of(capsys)
    assert summary["trials"] == 3 and summary["errors"] == 0
    table = pd.read_csv(tmp_path / "runs" / "sweep" / "sweep_results.csv")
    assert sorted(table["training_iteration"]) == [2, 2, 4]  # two trials stopped at the first rung
    assert table.loc[table["training_iteration"] == 4, "config/training.actor_lr"].item() == 3e-3


def test_pbt_mutates_the_budget_exports_and_tracks(ray_session, sweep_file, tmp_path, capsys):
    path = sweep_file({"metric": "evaluation/best_success", "mode": "max", "num_samples": 2,
                       "max_concurrent_trials": 2,
                       "scheduler": {"type": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5,
                                     "hyperparam_mutations": {"training.vgf_lr": {"uniform": [0.02, 0.2]},
                                                              "training.train_vgf_steps": {"choice": [0, 1, 2]}}}})
    assert main(["tune", str(path)]) == 0
    summary = summary_of(capsys)
    assert summary["trials"] == 2 and summary["errors"] == 0
    sweep_dir = tmp_path / "runs" / "sweep"
    trials = sorted(d for d in sweep_dir.iterdir() if d.is_dir() and (d / "budget_lineage.json").exists())
    assert len(trials) == 2
    lineages = {t: read_lineage(t) for t in trials}
    mutated = [t for t, lineage in lineages.items() if len(lineage) > 1]
    assert mutated, "PBT's exploit should have mutated one trial's budget"
    for trial, lineage in lineages.items():
        history = json.loads((trial / "history.json").read_text())
        assert [row[ITERATION] for row in history] == [1, 2, 3, 4]
        for row in history:  # the values the learner reports applying = the logged lineage at that step
            segment = [s for s in lineage if s[GRAD_STEPS] < row[GRAD_STEPS]][-1]
            assert row[BUDGET_METRICS["vgf_lr"]] == pytest.approx(segment["values"]["vgf_lr"])
            assert row[BUDGET_METRICS["train_vgf_steps"]] == segment["values"]["train_vgf_steps"]
        assert (trial / "learning_curve.png").exists() and (trial / "final_evaluation.json").exists()

    # Export the mutated trial's schedule and replay it in one `train` run.
    trial = mutated[0]
    out = tmp_path / "replay.yaml"
    trial_id = "_".join(trial.name.split("_")[2:4])  # run_trial_<experiment id>_<index>_...
    assert main(["tune", str(path), "--export-schedule", trial_id, "--out", str(out)]) == 0
    replay = yaml.safe_load(out.read_text())
    assert "vgf_lr" in replay["training"]["budget_schedule"]
    assert main(["train", str(out), "--quiet", "--set", f"output_dir={tmp_path / 'replay'}",
                 "--set", "mlflow.tracking_uri=null"]) == 0
    replayed = json.loads((tmp_path / "replay" / "history.json").read_text())
    original = json.loads((trial / "history.json").read_text())
    for key in (BUDGET_METRICS["vgf_lr"], BUDGET_METRICS["train_vgf_steps"], "critic/loss", "bc/loss"):
        assert [r[key] for r in replayed] == pytest.approx([r[key] for r in original], rel=1e-6), key

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["sweeps"])
    parent = runs[runs["tags.sweep"] == "parent"]
    children = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"].item()]
    assert len(parent) == 1 and parent["status"].item() == "FINISHED" and len(children) == 2
    assert set(children["status"]) == {"FINISHED"}
    assert children["params.training/num_particles"].tolist() == ["4", "4"]
    assert children["metrics.evaluation.budget_1.success"].notna().all()
    assert children["tags.task"].tolist() == ["pointmaze-medium-navigate"] * 2 and children["tags.git_commit"].all()
    child = children["run_id"].iloc[0]
    artifacts = {a.path for a in client.list_artifacts(child)}
    assert {"history.csv", "learning_curve.png", "final_evaluation.json", "checkpoint"} <= artifacts
    steps = client.get_metric_history(child, BUDGET_METRICS["vgf_lr"].replace("/", "."))
    assert len(steps) == 4
    assert "report.html" in {a.path for a in client.list_artifacts(parent["run_id"].item())}

    assert main(["report", str(sweep_dir)]) == 0
    page = (sweep_dir / "report.html").read_text()
    assert "Budget schedule per trial" in page and page.count("data:image/png") >= 4
    assert "No trial changed its budget" not in page


@pytest.mark.parametrize("sweep, message", [
    ({"grid": {"training.vgf_lr": []}}, r"sweep.grid.training.vgf_lr: expected a non-empty list, got \[\]"),
    ({"search_space": {"training.vgf_lr": {"uniform": [0.2, 0.1]}}}, r"the space is empty \(low 0.2"),
    ({"search_space": {"training.nope": {"choice": [1]}}}, r"training.nope.*not valid"),
    ({"search_space": {"vgf_lr": {"choice": [1]}}}, r"must name an experiment key"),
    ({"search_space": {"training.num_particles": {"choice": [4, 0]}}},
     r"value 0 is not valid: training.num_particles: expected a value >= 1"),
    ({"metric": "evaluation/budget_3/success", "grid": {"training.vgf_lr": [0.1]}}, r"is never reported"),
    ({"grid": {"training.vgf_lr": [0.1]}, "scheduler": {"type": "hyperband"}},
     r"sweep.scheduler.type: Input tag 'hyperband'"),
    ({"grid": {"training.vgf_lr": [0.1]}, "scheduler": {"type": "asha", "grace": 1}},
     r"sweep.scheduler.grace: unknown key; keys: grace_period, reduction_factor, type"),
    ({"scheduler": {"type": "pbt", "perturbation_interval": 3,
                    "hyperparam_mutations": {"training.vgf_lr": {"uniform": [0.01, 0.1]}}}},
     r"perturbation_interval 3 misses every evaluation"),
    ({"scheduler": {"type": "pbt", "perturbation_interval": 2,
                    "hyperparam_mutations": {"training.discount": {"uniform": [0.9, 0.99]}}}}, r"may mutate only"),
    ({"scheduler": {"type": "pbt", "perturbation_interval": 2,
                    "hyperparam_mutations": {"training.train_vgf_steps": {"uniform": [0, 3]}}}}, r"whole numbers"),
    ({"searcher": "optuna", "scheduler": {"type": "pbt", "perturbation_interval": 2,
                                          "hyperparam_mutations": {"training.vgf_lr": {"uniform": [0.01, 0.1]}}}},
     r"optuna cannot be combined with pbt"),
    ({"grid": {"training.vgf_lr": [0.1]}, "searchr": "optuna"},
     r"sweep.searchr: unknown key; keys: checkpoint_interval"),
    ({"num_samples": 4, "max_concurrent_trials": 2,
      "scheduler": {"type": "pbt", "perturbation_interval": 2,
                    "hyperparam_mutations": {"training.vgf_lr": {"uniform": [0.01, 0.1]}}}},
     r"max_concurrent_trials 2 < num_samples 4 with pbt: .*never join the population"),
    ({}, r"nothing to search"),
])
def test_bad_sweeps_fail_before_any_trial(sweep_file, sweep, message, capsys):
    with pytest.raises(ExperimentError, match=message):  # the file's shape on loading, the rest on parsing
        parse_sweep(load_experiment(sweep_file(sweep)), 4)
    assert main(["tune", str(sweep_file(sweep))]) == 2  # the CLI says so without starting Ray
    assert "error:" in capsys.readouterr().err


def test_schedule_clash_and_bad_schedule_fail_early(sweep_file, capsys):
    mutations = {"training.vgf_lr": {"uniform": [0.01, 0.1]}}
    path = sweep_file({"scheduler": {"type": "pbt", "perturbation_interval": 2, "hyperparam_mutations": mutations}})
    exp = load_experiment(path, ["training.budget_schedule={vgf_lr: [[0, 0.1]]}"])
    with pytest.raises(ExperimentError, match=r"both mutated and set by training.budget_schedule"):
        parse_sweep(exp, 4)
    assert main(["tune", str(path), "--set", "training.budget_schedule={vgf_lr: [[5, 0.1], [2, 0.2]]}"]) == 2
    assert "budget_schedule.vgf_lr[1]: step 2 does not come after" in capsys.readouterr().err


def test_optuna_searcher_and_export_errors(sweep_file, tmp_path, capsys):
    exp = load_experiment(sweep_file({"searcher": {"type": "optuna"},
                                      "search_space": {"training.vgf_lr": {"loguniform": [0.01, 0.1]}}}))
    spec = parse_sweep(exp, 4)
    assert type(spec.build_searcher().searcher).__name__ == "OptunaSearch"
    exp = load_experiment(sweep_file({"scheduler": {"type": "pb2", "perturbation_interval": 2,
                                                    "hyperparam_bounds": {"training.vgf_lr": [0.01, 0.1]}}}))
    spec = parse_sweep(exp, 4)
    assert type(spec.build_scheduler(4)).__name__ == "PB2" and "training.vgf_lr" in spec.param_space()
    assert main(["tune", str(sweep_file({"grid": {"training.vgf_lr": [0.1]}})), "--export-schedule", "abc"]) == 2
    assert "no trial folder" in capsys.readouterr().err


SHIPPED_SWEEPS = sorted((Path(__file__).resolve().parents[1] / "tune_configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED_SWEEPS, ids=lambda p: p.name)
def test_shipped_sweeps_are_valid(path):
    from vgf_ray.tuning import prepare_sweep

    _, iterations, spec = prepare_sweep(load_experiment(path))
    assert iterations >= 1 and spec.param_space()
    assert spec.build_scheduler(iterations) is not None


def test_bad_mutation_value_names_its_entry(sweep_file):
    mutations = {"training.train_vgf_steps": {"choice": [1, -1]}}
    exp = load_experiment(sweep_file({"scheduler": {"type": "pbt", "perturbation_interval": 2,
                                                    "hyperparam_mutations": mutations}}))
    with pytest.raises(ExperimentError, match=r"hyperparam_mutations.training.train_vgf_steps: value -1 is not valid"):
        parse_sweep(exp, 4)


def test_pbt_population_continues_a_shared_start_checkpoint(ray_session, sweep_file, tmp_path, capsys):
    # One run's first phase, then a PBT population that resumes its checkpoint exactly (sweep.start_from).
    mutations = {"training.train_vgf_steps": {"choice": [0, 2]}}
    sweep = {"num_samples": 2, "max_concurrent_trials": 2,
             "scheduler": {"type": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5,
                           "hyperparam_mutations": mutations}}
    path = sweep_file(sweep, iterations=6)
    start_dir = tmp_path / "start"
    assert main(["train", str(path), "--quiet", "--set", "iterations=2", "--set", f"output_dir={start_dir}",
                 "--set", "mlflow.tracking_uri=null"]) == 0
    start_history = json.loads((start_dir / "history.json").read_text())
    checkpoint = start_dir / "checkpoint"

    exp = load_experiment(path, [f"sweep.start_from={checkpoint}"])
    assert parse_sweep(exp, 6).start_iteration == 2
    with pytest.raises(ExperimentError, match=r"start_from .* iteration 2, so iterations \(2\) leaves"):
        parse_sweep(exp, 2)
    other = load_experiment(path, [f"sweep.start_from={checkpoint}", "training.hidden_dims=[16, 16]"])
    with pytest.raises(InputError, match=r"its training.hidden_dims is \[32, 32\] but this run's is \[16, 16\]"):
        parse_sweep(other, 6)
    with pytest.raises(InputError, match=r"sweep.start_from .*not an RLlib checkpoint"):
        parse_sweep(load_experiment(path, [f"sweep.start_from={tmp_path}"]), 6)

    assert main(["tune", str(path), "--set", f"sweep.start_from={checkpoint}",
                 "--set", "mlflow.tracking_uri=null"]) == 0
    assert summary_of(capsys)["errors"] == 0
    sweep_dir = tmp_path / "runs" / "sweep"
    table = pd.read_csv(sweep_dir / "sweep_results.csv")
    assert sorted(table["training_iteration"]) == [4, 4]  # Tune counts the 4 iterations after the checkpoint
    trials = sorted(d for d in sweep_dir.iterdir() if d.is_dir() and (d / "budget_lineage.json").exists())
    assert len(trials) == 2
    for trial in trials:
        history = json.loads((trial / "history.json").read_text())
        assert [row[ITERATION] for row in history] == [1, 2, 3, 4, 5, 6]
        assert history[:2] == start_history  # the shared phase, carried in by the checkpoint
        assert history[2][GRAD_STEPS] == start_history[-1][GRAD_STEPS] + 10  # training went on from it
        lineage = read_lineage(trial)
        assert lineage[0]["values"]["train_vgf_steps"] == 1 and lineage[0][ITERATION] == 0  # the start run's
        assert lineage[1][ITERATION] == 2  # the trial's own values from the checkpoint on
        for row in history[2:]:
            segment = [s for s in lineage if s[GRAD_STEPS] < row[GRAD_STEPS]][-1]
            assert row[BUDGET_METRICS["train_vgf_steps"]] == segment["values"]["train_vgf_steps"]
