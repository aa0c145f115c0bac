"""A real two-node Ray cluster on 127.0.0.1 with its dashboard and token authentication on (Ray's own
`ray.cluster_utils.Cluster`): the Jobs API refuses a request without the token (401) or with a wrong one (403),
`vgf-ray submit` sends the token and runs a train experiment there through the Jobs API to success, a submit or a
`train --address` without the token ends in a one-line error that says how to give it, and `vgf-ray train
--address` joins the existing cluster instead of starting one."""

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
from vgf_ray.cluster_auth import authorization_headers, find_token
from vgf_ray.local_cluster import start_local_cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head_with_dashboard(tmp_path_factory):
    """``(gcs address, jobs url)`` of a head and one worker node whose processes find `vgf-ray` on PATH, as on a
    real cluster; token auth is on (conftest: RAY_AUTH_MODE=token, the test run's token file)."""
    from ray.job_submission import JobSubmissionClient

    assert os.environ["RAY_AUTH_MODE"] == "token"
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="vgfray")  # short: Ray's socket paths must fit in 107 bytes
    cluster = start_local_cluster({
        "num_cpus": 4, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": port,
        # The job agent's HTTP port is fixed (52365) by default, and the test session's own Ray holds it already.
        "dashboard_agent_listen_port": free_port(),
        "object_store_memory": 1 << 29, "temp_dir": temp})
    # The worker's own temp folder: two nodes on one machine that share a session folder garbage-collect each
    # other's unpacked job working directories, and the job's driver loses its cwd.
    worker_temp = tempfile.mkdtemp(prefix="vgfrayw")
    cluster.add_node(num_cpus=1, object_store_memory=1 << 28, dashboard_agent_listen_port=free_port(),
                     temp_dir=worker_temp)
    cluster.wait_for_nodes()
    assert len(cluster.list_all_nodes()) == 2
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
    for folder in (temp, worker_temp):
        shutil.rmtree(folder, ignore_errors=True)


def without_token(tmp_path: Path) -> dict:
    """A process environment with no token anywhere Ray looks (no variables, an empty home) and no chosen mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")}
    (tmp_path / "home").mkdir(exist_ok=True)
    return {**env, "HOME": str(tmp_path / "home")}


def test_jobs_api_refuses_requests_without_the_token(head_with_dashboard):
    """The lock itself: no token, 401; a wrong token, 403; the cluster's token, 200."""
    import requests

    _, url = head_with_dashboard
    assert requests.get(f"{url}/api/jobs/", timeout=10).status_code == 401
    wrong = authorization_headers("0" * 64)
    assert requests.get(f"{url}/api/jobs/", headers=wrong, timeout=10).status_code == 403
    right = authorization_headers(find_token())  # the test run's token, found where Ray looks
    assert requests.get(f"{url}/api/jobs/", headers=right, timeout=10).status_code == 200


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
    token_file = os.environ["RAY_AUTH_TOKEN_PATH"]  # given as --token-file to a process that has no other token
    done = subprocess.run([sys.executable, "-m", "vgf_ray.cli", "train", str(config), "--quiet", "--address", address,
                           "--token-file", token_file], capture_output=True, text=True, timeout=300,
                          env=without_token(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Connecting to existing Ray cluster at address: {address}" in done.stderr
    drivers = [job for job in JobSubmissionClient(url).list_jobs() if str(job.type).endswith("DRIVER")]
    assert any("vgf_ray.cli train" in (job.entrypoint or "") for job in drivers), drivers


def test_submit_and_join_without_the_token_fail_in_one_line(head_with_dashboard, tmp_path, pointmaze_npz):
    address, url = head_with_dashboard
    config = tiny_experiment(tmp_path / "job", pointmaze_npz, "refused")
    env = without_token(tmp_path)
    wrong = tmp_path / "wrong_token"
    wrong.write_text("0" * 64)
    cases = {"no token": [sys.executable, "-m", "vgf_ray.cli", "submit", str(config), "--address", url],
             "wrong token": [sys.executable, "-m", "vgf_ray.cli", "submit", str(config), "--address", url,
                             "--token-file", str(wrong)],
             "join, no token": [sys.executable, "-m", "vgf_ray.cli", "train", str(config), "--quiet",
                                "--address", address]}
    for case, command in cases.items():
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
        lines = [line for line in done.stderr.splitlines() if line.startswith("vgf-ray ")]
        assert done.returncode == 2, (case, done.stderr[-2000:])
        assert len(lines) == 1 and "Traceback" not in done.stderr, (case, done.stderr[-2000:])
        found = "refused the token given" if case == "wrong token" else "no token was found here"
        assert f"requires its auth token, and {found}" in lines[0] and "--token-file" in lines[0], (case, lines[0])
    missing = subprocess.run(cases["no token"] + ["--token-file", str(tmp_path / "nope")], capture_output=True,
                             text=True, timeout=60, env=env)
    assert missing.returncode == 2 and "--token-file" in missing.stderr and "cannot read the token" in missing.stderr
