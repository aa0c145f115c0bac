"""Two Ray nodes on this machine (Ray's own ``ray.cluster_utils.Cluster``: each node its own raylet and object store,
all on 127.0.0.1). EnvRunners are placed on the worker node by a custom resource; a short offline-to-online VGF run
(`vgf-ray train --address`, its own driver process) must show from its own history that they sampled there, that
their transitions reached the learner's replay on the head, and that it evaluated at every budget. Then the worker
node is removed mid-online and a new one added: the run finishes with every counter and replay entry exact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from vgf_ray.local_cluster import start_local_cluster

ROLLOUT = "rollout_node"  # the custom resource only worker nodes have


@pytest.fixture
def two_nodes(tmp_path):
    """A head (driver and learner) and one worker node with the rollout resource."""
    temp = tempfile.mkdtemp(prefix="vgfray")  # short: Ray's socket paths must fit in 107 bytes
    cluster = start_local_cluster({
        "num_cpus": 2, "include_dashboard": False, "object_store_memory": 1 << 28, "temp_dir": temp})
    worker = cluster.add_node(num_cpus=2, resources={ROLLOUT: 2}, object_store_memory=1 << 28)
    cluster.wait_for_nodes()
    yield cluster, worker
    cluster.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def experiment(tmp_path: Path, pointmaze_npz: Path, online_env_steps: int) -> Path:
    exp = {"name": "multinode", "iterations": "auto", "output_dir": str(tmp_path / "run"),
           "env": {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 20}},
           "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
           "training": {"hidden_dims": [16], "actor_hidden_dims": [16], "num_particles": 2, "bc_flow_steps": 2,
                        "updates_per_iteration": 10, "train_batch_size_per_learner": 16, "offline_steps": 20,
                        "online_env_steps": online_env_steps, "rollout_steps_per_iteration": 100,
                        "start_training": 0, "utd_ratio": 0.1},
           "evaluation": {"interval": 2 + online_env_steps // 100, "episodes": 1, "budgets": [0, 1]},  # at the end
           "resources": {"num_env_runners": 2, "num_cpus_per_env_runner": 0.5,
                         "custom_resources_per_env_runner": {ROLLOUT: 1}},
           "mlflow": {"tracking_uri": None}}
    path = tmp_path / "multinode.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def start_run(config: Path, address: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vgf_ray.cli", "train", str(config), "--quiet", "--address",
                             address], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def rows(folder: Path) -> list[dict]:
    try:
        return json.loads((folder / "history.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def head_node_id(cluster) -> str:
    return cluster.head_node.node_id


def check_finished(proc: subprocess.Popen, folder: Path, online_env_steps: int) -> list[dict]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, (out + err)[-4000:]
    history = rows(folder)
    last = history[-1]
    assert last["online_env_steps"] == online_env_steps
    assert last["online_buffer_size"] == online_env_steps  # every collected transition is in the replay, once
    final = json.loads((folder / "final_evaluation.json").read_text())
    assert {"budget_0", "budget_1"} <= set(final), final
    return history


def test_env_runners_sample_on_the_worker_node_for_the_head_learner(two_nodes, tmp_path, pointmaze_npz):
    cluster, worker = two_nodes
    config = experiment(tmp_path, pointmaze_npz, online_env_steps=300)
    history = check_finished(start_run(config, cluster.address), tmp_path / "run", 300)
    online = [r for r in history if r["phase"] == 1]
    assert online and all(set(r["env_runner_nodes"]) == {worker.node_id} for r in online), online
    assert all(r["env_runner_nodes"][worker.node_id] == 2 for r in online)
    # The learner lives in the driver process on the head: the transitions crossed nodes into its replay.
    assert all(set(r["learner_nodes"]) == {head_node_id(cluster)} for r in online)
    assert [r["online_env_steps"] for r in online] == [100, 200, 300]


def test_run_survives_losing_and_replacing_the_rollout_node(two_nodes, tmp_path, pointmaze_npz):
    cluster, worker = two_nodes
    total = 1500
    config = experiment(tmp_path, pointmaze_npz, online_env_steps=total)
    proc = start_run(config, cluster.address)
    folder = tmp_path / "run"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(r["phase"] == 1 for r in rows(folder)) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    cluster.remove_node(worker)  # both EnvRunners die with their node
    replacement = cluster.add_node(num_cpus=2, resources={ROLLOUT: 2}, object_store_memory=1 << 28)
    history = check_finished(proc, folder, total)
    online = [r for r in history if r["phase"] == 1]
    steps = [r["online_env_steps"] for r in online]
    # A round adds nothing (both EnvRunners lost), one runner's 50 steps (returned before the node went, the other's
    # lost) or the full 100; the totals checked above stay exact either way.
    assert steps == sorted(steps) and all(b - a in (0, 50, 100) for a, b in zip(steps, steps[1:])), steps
    assert {worker.node_id, replacement.node_id} <= {n for r in online for n in r.get("env_runner_nodes", {})}
    assert online[-1]["env_runner_restarts"] >= 2, online[-1]
    assert set(online[-1]["env_runner_nodes"]) == {replacement.node_id}
