"""The user's surface: `vgf-ray train` on a tiny experiment, then `vgf-ray evaluate`, plus clear config errors."""

import csv
import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from vgf_ray.cli import main
from vgf_ray.experiment import ExperimentError, load_experiment


@pytest.fixture
def tiny_experiment(tmp_path, pointmaze_npz):
    exp = {
        "name": "tiny",
        "iterations": "auto",
        "output_dir": str(tmp_path / "runs" / "{name}"),
        "env": {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 15}},
        "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
        "training": {"hidden_dims": [32, 32], "actor_hidden_dims": [32, 32], "num_particles": 4, "bc_flow_steps": 3,
                     "updates_per_iteration": 10, "train_batch_size_per_learner": 32, "offline_steps": 20,
                     "online_env_steps": 30, "rollout_steps_per_iteration": 30, "start_training": 0},
        "evaluation": {"interval": 1, "episodes": 2, "budgets": [0, 1, 2, 3]},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "vgf_test"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def test_train_then_evaluate(ray_session, tiny_experiment, tmp_path, capsys):
    assert main(["train", str(tiny_experiment), "--set", "training.num_particles=3", "--quiet"]) == 0
    out_dir = tmp_path / "runs" / "tiny"
    summary = json.loads(capsys.readouterr().out)
    assert summary["output_dir"] == str(out_dir)
    with open(out_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["phase"]) for r in rows] == [0, 0, 1]  # two offline iterations, then one online round
    assert [int(r["grad_steps"]) for r in rows[:2]] == [10, 20]
    online_steps = int(rows[2]["online_env_steps"])
    assert online_steps >= 30 and int(rows[2]["grad_steps"]) == 20 + online_steps  # one update per env step
    assert int(rows[2]["step"]) == 20 + online_steps
    assert all(r[f"budget_{b}/success"] != "" for r in rows for b in range(4))
    for name in ("learning_curve.png", "budget_curve.png", "final_evaluation.json", "experiment.yaml"):
        assert (out_dir / name).stat().st_size > 0, name
    assert yaml.safe_load((out_dir / "experiment.yaml").read_text())["training"]["num_particles"] == 3

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["vgf_test"])
    assert len(runs) == 1 and runs.iloc[0]["status"] == "FINISHED"
    assert "metrics.budget_2.success" in runs.columns and "params.training/num_particles" in runs.columns

    eval_dir = tmp_path / "eval"
    assert main(["evaluate", summary["checkpoint"], "--budgets", "0", "3", "--episodes", "2",
                 "--out-dir", str(eval_dir)]) == 0
    printed = capsys.readouterr().out
    assert "L_test=0" in printed and "L_test=3" in printed
    results = json.loads((eval_dir / "evaluation.json").read_text())
    assert results["budget_3"]["episodes"] == 2 and (eval_dir / "evaluation_budget_curve.png").exists()
    # Test-time transport settings other than the trained run's; bad ones fail before the checkpoint is loaded.
    assert main(["evaluate", summary["checkpoint"], "--budgets", "1", "--episodes", "1", "--step-size", "0.01",
                 "--alpha", "2.0", "--out-dir", str(tmp_path / "eval-alpha")]) == 0
    assert "L_test=1" in capsys.readouterr().out
    assert main(["evaluate", summary["checkpoint"], "--alpha", "0"]) == 2
    assert "alpha must be a finite number > 0, got 0.0" in capsys.readouterr().err


def test_evaluate_defaults_to_the_runs_test_time_step_size(ray_session, tiny_experiment, tmp_path, capsys,
                                                           monkeypatch):
    """A run trained with ``eval_step_size`` is evaluated at it again by ``vgf-ray evaluate``, not at vgf_lr; its
    episodes come from the run's seed unless ``--seed`` names others."""
    assert main(["train", str(tiny_experiment), "--set", "training.eval_step_size=0.03", "--set", "iterations=1",
                 "--set", "training.online_env_steps=0", "--set", "seed=5", "--quiet"]) == 0
    checkpoint = json.loads(capsys.readouterr().out)["checkpoint"]
    from vgf_ray.experiment import runner

    used = []
    real = runner.run_budget_evaluation
    monkeypatch.setattr(runner, "run_budget_evaluation",
                        lambda group, budgets, episodes, step_size, values, **kw: used.append(
                            (step_size, kw["seed"])) or real(group, budgets, episodes, step_size, values))
    for flags in ([], ["--step-size", "0.01"], ["--seed", "11"]):
        assert main(["evaluate", checkpoint, "--budgets", "1", "--episodes", "1", *flags]) == 0
    assert used == [(0.03, 5), (0.01, 5), (0.03, 11)]


def test_experiment_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainig: {num_particles: 3}\n")
    with pytest.raises(ExperimentError, match=r"bad.yaml: trainig: unknown section; sections: algorithm, .*training"):
        load_experiment(bad)
    good = tmp_path / "good.yaml"
    good.write_text("name: x\n")
    with pytest.raises(ExperimentError, match="expected KEY=VALUE"):
        load_experiment(good, ["training.num_particles"])
    with pytest.raises(ExperimentError, match="unknown section 'trainin'"):
        load_experiment(good, ["trainin.num_particles=3"])
    with pytest.raises(ExperimentError, match="not found"):
        load_experiment(tmp_path / "missing.yaml")


def test_iterations_past_the_offline_steps_fail_instead_of_idling(tiny_experiment, capsys):
    offline_only = ["--set", "training.online_env_steps=0", "--set", "iterations=3", "--quiet"]
    assert main(["train", str(tiny_experiment), *offline_only]) == 2
    assert "iterations: 3 is more than the 2 that training.offline_steps (20, 10 a train() call)" in (
        capsys.readouterr().err)


def test_cli_reports_bad_training_key(tmp_path, capsys):
    path = tmp_path / "e.yaml"
    path.write_text(f"output_dir: {tmp_path / 'out'}\ntraining: {{num_particles: 0}}\nmlflow: {{tracking_uri: null}}\n")
    assert main(["train", str(path), "--quiet"]) == 2
    assert "e.yaml: training.num_particles: expected a value >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing is written for a config that fails validation


@pytest.mark.parametrize(("value", "expected"), [
    ("{rollout_node: abc}", "custom_resources_per_env_runner.rollout_node: expected a number, got 'abc'"),
    ("{rollout_node: -1}", "custom_resources_per_env_runner.rollout_node: expected a value >= 0, got -1"),
    ("[1]", "custom_resources_per_env_runner: expected a mapping, got [1]")])
def test_bad_custom_resources_name_the_key(tmp_path, capsys, value, expected):
    path = tmp_path / "e.yaml"
    path.write_text(f"output_dir: {tmp_path / 'out'}\nmlflow: {{tracking_uri: null}}\n")
    assert main(["train", str(path), "--quiet", "--set", f"resources.custom_resources_per_env_runner={value}"]) == 2
    assert f"e.yaml with --set overrides: resources.{expected}" in capsys.readouterr().err


def test_make_dataset_command(tmp_path, capsys):
    assert main(["make-dataset", "pointmaze-medium-navigate", "--size", "40", "--episode-length", "21",
                 "--out-dir", str(tmp_path / "d")]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    assert path.endswith("pointmaze-medium-navigate-v0.npz")


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "tune_configs").glob("**/*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    from vgf_ray.experiment import build_config, resolve_iterations

    exp = load_experiment(path)
    config = build_config(exp)
    assert resolve_iterations(exp, config) >= 1
    assert config.eval_budgets == [0, 1, 2, 3]


def test_toy_command_writes_the_particle_plot(tmp_path, capsys):
    out = tmp_path / "toy.png"
    assert main(["toy", "--steps", "200", "--budgets", "0", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "L=0: mean true reward" in printed and "L=5: mean true reward" in printed
    assert out.stat().st_size > 10_000


def sets(*overrides: str) -> list[str]:
    """``--set`` arguments for the CLI."""
    return [arg for override in overrides for arg in ("--set", override)]


def test_resume_continues_an_interrupted_run_exactly(ray_session, tiny_experiment, tmp_path, capsys):
    overrides = ["training.offline_steps=null", "training.online_env_steps=0", "evaluation.interval=2",
                 "evaluation.budgets=[0]", "evaluation.episodes=1", "checkpoint_every=1"]
    straight = sets(f"output_dir={tmp_path / 'straight'}", "mlflow.experiment=straight")
    assert main(["train", str(tiny_experiment), "--quiet", *straight, *sets(*overrides, "iterations=3")]) == 0
    interrupted = sets(f"output_dir={tmp_path / 'resumed'}", "mlflow.experiment=resumed")
    assert main(["train", str(tiny_experiment), "--quiet", *interrupted, *sets(*overrides, "iterations=2")]) == 0
    checkpoint = str(tmp_path / "resumed" / "checkpoint")
    assert main(["train", str(tiny_experiment), "--quiet", *interrupted, "--resume", checkpoint,
                 *sets(*overrides, "iterations=3")]) == 0

    def history(name):
        return json.loads((tmp_path / name / "history.json").read_text())

    want, got = history("straight"), history("resumed")
    assert [r["iteration"] for r in got] == [1, 2, 3] and [r["grad_steps"] for r in got] == [10, 20, 30]
    for key in ("critic/loss", "bc/loss", "budget_0/success"):
        assert [r.get(key) for r in got] == [r.get(key) for r in want], key
    assert "warning" not in capsys.readouterr().err

    # The checkpoint carries its history: resuming into another folder keeps the whole curve.
    elsewhere = sets(f"output_dir={tmp_path / 'elsewhere'}", "mlflow.experiment=elsewhere")  # checkpoint is at 3 now
    assert main(["train", str(tiny_experiment), "--quiet", *elsewhere, "--resume", checkpoint,
                 *sets(*overrides, "iterations=4")]) == 0
    err = capsys.readouterr().err  # from outside the run's folder: the one warning says checkpoints are pickles
    assert err.count("warning") == 1 and "checkpoints are pickles" in err
    assert [r["iteration"] for r in history("elsewhere")] == [1, 2, 3, 4]
    (Path(checkpoint) / "history.json").unlink()  # a checkpoint without its history, resumed into a new folder
    bare = sets(f"output_dir={tmp_path / 'bare'}", "mlflow.experiment=bare")
    assert main(["train", str(tiny_experiment), "--quiet", *bare, "--resume", checkpoint,
                 *sets(*overrides, "iterations=4")]) == 0
    assert "(0 found)" in capsys.readouterr().err  # says the curve is partial
    assert [r["iteration"] for r in history("bare")] == [4]

    # Checked before loading, one line each: other networks, an incomplete save, another algorithm's checkpoint.
    assert main(["train", str(tiny_experiment), "--quiet", *bare, "--resume", checkpoint,
                 *sets(*overrides, "iterations=5", "training.hidden_dims=[16, 16]")]) == 2
    assert "its training.hidden_dims is [32, 32] but this run's is [16, 16]" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    (broken / "algorithm_state.pkl").unlink()
    assert main(["train", str(tiny_experiment), "--quiet", *bare, "--resume", str(broken),
                 *sets(*overrides, "iterations=5")]) == 2
    assert main(["evaluate", str(broken), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("incomplete checkpoint (missing algorithm_state.pkl)") == 2
    other = tmp_path / "other"
    shutil.copytree(checkpoint, other)
    (other / "class_and_ctor_args.pkl").write_bytes(pickle.dumps({"class": dict, "ctor_args_and_kwargs": ((), {})}))
    assert main(["train", str(tiny_experiment), "--quiet", *bare, "--from-checkpoint", str(other)]) == 2
    assert "a checkpoint of dict, not of VGF" in capsys.readouterr().err

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["resumed"])
    assert len(runs) == 1 and runs.iloc[0]["status"] == "FINISHED"  # the resumed run continues the same MLflow run
    steps = mlflow.MlflowClient().get_metric_history(runs.iloc[0]["run_id"], "critic.loss")
    assert sorted(m.step for m in steps) == [10, 20, 30]


def test_resume_rejects_a_folder_that_is_not_a_checkpoint(tiny_experiment, tmp_path, capsys):
    assert main(["train", str(tiny_experiment), "--quiet", "--resume", str(tmp_path)]) == 2
    assert "not an RLlib checkpoint folder" in capsys.readouterr().err


class _RaisesWhenUnpickled:
    def __reduce__(self):
        return divmod, (1, 0)  # loading this pickle runs code: here, a ZeroDivisionError


def test_an_outside_checkpoint_is_flagged_before_any_of_its_pickles_is_read(tmp_path, capsys):
    import pickle

    from vgf_ray.rllib.checkpoint_check import CTOR_ARGS, RLLIB_CHECKPOINT_JSON, check_checkpoint

    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / RLLIB_CHECKPOINT_JSON).write_text("{}")
    (folder / CTOR_ARGS).write_bytes(pickle.dumps(_RaisesWhenUnpickled()))
    with pytest.raises(ZeroDivisionError):
        check_checkpoint(folder, "--resume", trusted_root=tmp_path / "runs")
    assert "checkpoints are pickles and loading one runs code" in capsys.readouterr().err


def test_internal_errors_keep_their_traceback(tiny_experiment, monkeypatch, capsys):
    """A bad value from the user is one line with exit code 2; a bug (even a ValueError) is not hidden."""
    import vgf_ray.experiment

    def broken(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")  # what a numpy bug looks like

    monkeypatch.setattr(vgf_ray.experiment, "run_experiment", broken)
    with pytest.raises(ValueError, match="broadcast"):
        main(["train", str(tiny_experiment), "--quiet"])
    monkeypatch.undo()
    assert main(["train", str(tiny_experiment), "--quiet", "--set", "training.num_particles=0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training.num_particles: expected a value >= 1, got 0" in err


def test_the_parser_imports_no_ray():
    """Ray reads its auth mode once, at import: ``vgf-ray`` sets token mode first, so parsing must not import it."""
    import subprocess
    import sys

    code = "import sys; from vgf_ray.cli import build_parser; build_parser(); assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
