"""A diverging run stops: a non-finite loss or Q beyond the reward bound names the metric and gradient step, and
the last good checkpoint stays usable."""

import json

import pytest
import torch
import yaml

from vgf_ray.cli import EXIT_DIVERGED, main
from vgf_ray.core.divergence import DivergenceError, DivergenceMonitor, q_bound
from vgf_ray.metrics import BC_LOSS, CRITIC_LOSS, CRITIC_Q_MAX, CRITIC_Q_MIN


def metrics(loss=0.5, q_max=3.0, q_min=-3.0) -> dict:
    return {CRITIC_LOSS: torch.tensor(loss), BC_LOSS: torch.tensor(0.1), CRITIC_Q_MAX: torch.tensor(q_max),
            CRITIC_Q_MIN: torch.tensor(q_min)}


def test_q_bound_follows_rewards_and_discount():
    assert q_bound(1.0, 0.99, 10.0) == pytest.approx(1000.0)
    assert q_bound(0.0, 0.99, 10.0) == 10.0  # freshly initialised critics output values of order 1
    assert q_bound(1.0, 1.0, 10.0) is None and q_bound(1.0, 0.9, None) is None


def test_monitor_names_the_first_bad_metric_and_step():
    monitor = DivergenceMonitor(bound=100.0)
    for step in range(1, 6):
        monitor.observe(metrics(), step)
    monitor.check()  # all fine
    monitor.observe(metrics(q_max=250.0), 6)
    monitor.observe(metrics(loss=float("nan"), q_max=float("inf")), 7)
    with pytest.raises(DivergenceError, match=r"gradient step 6: critic/q_max = 250 is beyond the bound 100"):
        monitor.check()
    nan_first = DivergenceMonitor(bound=None)
    nan_first.observe(metrics(q_max=1e30), 1)  # no bound: only non-finite values count
    nan_first.observe(metrics(loss=float("inf")), 2)
    with pytest.raises(DivergenceError, match=r"gradient step 2: critic/loss = inf"):
        nan_first.check()


def test_training_stops_at_divergence_and_keeps_the_last_good_checkpoint(ray_session, tmp_path, pointmaze_npz,
                                                                          capsys):
    exp = {
        "name": "diverge", "iterations": 5, "checkpoint_every": 1, "output_dir": str(tmp_path / "run"),
        "env": {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 10}},
        "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
        # From gradient step 20 on the critic's learning rate is absurd: its Q values explode within a step or two.
        "training": {"hidden_dims": [32, 32], "actor_hidden_dims": [32, 32], "num_particles": 4, "bc_flow_steps": 3,
                     "updates_per_iteration": 10, "train_batch_size_per_learner": 32,
                     "budget_schedule": {"value_lr": [[0, 3e-4], [20, 1e4]]}},
        "evaluation": {"interval": 100, "episodes": 1, "budgets": [0]},
        "mlflow": {"tracking_uri": None},
    }
    path = tmp_path / "diverge.yaml"
    path.write_text(yaml.safe_dump(exp))
    assert main(["train", str(path), "--quiet"]) == EXIT_DIVERGED
    err = capsys.readouterr().err
    assert "training diverged at gradient step 2" in err and "critic/" in err
    assert f"the last good checkpoint is {tmp_path / 'run' / 'checkpoint'}" in err
    step = int(err.split("gradient step ")[1].split(":")[0])
    assert 21 <= step <= 23  # right after the schedule's change, not at the end of the run
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["iteration"] for row in history] == [1, 2]
    kept = json.loads((tmp_path / "run" / "checkpoint" / "history.json").read_text())
    assert len(kept) == 2  # the checkpoint of iteration 2, before the divergence
