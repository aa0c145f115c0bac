"""A real Ray head on 127.0.0.1 with its dashboard (Ray's own `ray.cluster_utils.Cluster`): `vgf-ray submit` runs a
train experiment there through the Jobs API and follows it to success, and `vgf-ray train --address` joins the
existing cluster instead of starting one."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from vgf_ray.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head_with_dashboard(tmp_path_factory):
    """``(gcs address, jobs url)`` of a one-node cluster whose processes find `vgf-ray` on PATH, as on a real head."""
    from ray.cluster_utils import Cluster
    from ray.job_submission import JobSubmissionClient

    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="vgfray")  # short: Ray's socket paths must fit in 107 bytes
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 4, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": port,
        # The job agent's HTTP port is fixed (52365) by default, and the test session's own Ray holds it already.
        "dashboard_agent_listen_port": free_port(),
        "object_store_memory": 1 << 29, "temp_dir": temp})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # the dashboard's HTTP server comes up a moment after the node
        try:
            JobSubmissionClient(url)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    yield cluster.address, url
    cluster.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def tiny_experiment(folder: Path, pointmaze_npz: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exp = {"name": name, "iterations": 2, "output_dir": str(folder / "runs" / name),
           "env": {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 10}},
           "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
           "training": {"hidden_dims": [16], "actor_hidden_dims": [16], "num_particles": 2, "bc_flow_steps": 2,
                        "updates_per_iteration": 5, "train_batch_size_per_learner": 16},
           "evaluation": {"interval": 2, "episodes": 1, "budgets": [0, 1]}, "mlflow": {"tracking_uri": None}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def test_submit_runs_a_train_job_and_follows_it(head_with_dashboard, tmp_path, pointmaze_npz, capsys):
    _, url = head_with_dashboard
    config = tiny_experiment(tmp_path / "job", pointmaze_npz, "submitted")
    assert main(["submit", str(config), "--address", url, "--set", "training.num_particles=3"]) == 0
    printed = capsys.readouterr().out
    assert "submitted train job" in printed and "ray.address=auto" in printed and "SUCCEEDED" in printed
    assert "[submitted] it 2" in printed  # the job's own progress lines, followed
    out = tmp_path / "job" / "runs" / "submitted"
    assert (out / "checkpoint" / "rllib_checkpoint.json").exists() and (out / "final_evaluation.json").exists()
    assert yaml.safe_load((out / "experiment.yaml").read_text())["training"]["num_particles"] == 3


def test_submit_errors_are_clear(head_with_dashboard, tmp_path, pointmaze_npz, capsys):
    _, url = head_with_dashboard
    config = tiny_experiment(tmp_path / "job", pointmaze_npz, "bad")
    assert main(["submit", str(tmp_path / "missing.yaml"), "--address", url]) == 2
    assert main(["submit", str(config), "--address", url, "--working-dir", str(tmp_path / "elsewhere")]) == 2
    (tmp_path / "other").mkdir()
    assert main(["submit", str(config), "--address", url, "--working-dir", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml: no such experiment file" in err and "not a folder" in err
    assert "is not inside the working directory" in err


def test_train_joins_an_existing_cluster(head_with_dashboard, tmp_path, pointmaze_npz):
    from ray.job_submission import JobSubmissionClient

    address, url = head_with_dashboard
    config = tiny_experiment(tmp_path, pointmaze_npz, "joined")
    done = subprocess.run([sys.executable, "-m", "vgf_ray.cli", "train", str(config), "--quiet", "--address", address],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Connecting to existing Ray cluster at address: {address}" in done.stderr
    drivers = [job for job in JobSubmissionClient(url).list_jobs() if str(job.type).endswith("DRIVER")]
    assert any("vgf_ray.cli train" in (job.entrypoint or "") for job in drivers), drivers
