"""SIGTERM stops `vgf-ray train` at the next safe point with a checkpoint and a resume line, and `--resume` continues
(exactly offline; online with every counter and transition kept). Checkpoint writes are atomic. A running train
job listens on loopback only."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vgf_ray.cli import main
from vgf_ray.experiment.runner import save_checkpoint


def write_experiment(tmp_path: Path, pointmaze_npz: Path, name: str, **training) -> Path:
    exp = {
        "name": name, "iterations": 60, "output_dir": str(tmp_path / name),
        "env": {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 15}},
        "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
        "training": {"hidden_dims": [32, 32], "actor_hidden_dims": [32, 32], "num_particles": 4, "bc_flow_steps": 3,
                     "updates_per_iteration": 10, "train_batch_size_per_learner": 32, **training},
        "evaluation": {"interval": 1000, "episodes": 1, "budgets": [0]},
        "mlflow": {"tracking_uri": None},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def history(folder: Path) -> list[dict]:
    return json.loads((folder / "history.json").read_text())


def process_tree(root_pid: int) -> set[int]:
    """``root_pid`` and every descendant."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {root_pid}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return tree


def socket_owners(pids: set[int]) -> dict[str, str]:
    """Socket inode -> name of the process holding it."""
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*") if Path(f"/proc/{pid}/fd").exists() else []:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = Path(f"/proc/{pid}/comm").read_text().strip()
    return owners


def listening_sockets(root_pid: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP socket of ``root_pid`` and its descendants."""
    owners = socket_owners(process_tree(root_pid))
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] != "0A" or parts[9] not in owners:  # 0A: LISTEN
                continue
            address, port = parts[1].split(":")
            raw = bytes.fromhex(address)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # /proc prints 32-bit words host order
            found.append((socket.inet_ntop(family, raw), int(port, 16), owners[parts[9]]))
    return found


def train_and_terminate(config: Path, folder: Path, after_iteration: int,
                        while_running=None) -> tuple[int, str]:
    """Run `vgf-ray train` in a subprocess and send it SIGTERM once it has finished ``after_iteration``
    (calling ``while_running(pid)`` first)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vgf_ray.cli", "train", str(config), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(history(folder)) >= after_iteration:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.communicate()[1][-2000:]}"
    if while_running is not None:
        while_running(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    return proc.returncode, err


def test_sigterm_mid_offline_saves_and_resumes_exactly(ray_session, tmp_path, pointmaze_npz):
    config = write_experiment(tmp_path, pointmaze_npz, "offline")
    listeners = []
    code, err = train_and_terminate(config, tmp_path / "offline", after_iteration=2,
                                    while_running=lambda pid: listeners.extend(listening_sockets(pid)))
    # Nothing of a running train job (driver, GCS, raylet, workers) listens beyond loopback.
    assert any(name == "gcs_server" for _, _, name in listeners), listeners
    assert all(address in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for address, _, _ in listeners), listeners
    assert code == 128 + signal.SIGTERM, err[-3000:]
    assert "SIGTERM: stopped after iteration" in err and "continue with: vgf-ray train" in err
    stopped_at = len(history(tmp_path / "offline"))
    assert 2 <= stopped_at < 60
    resume_line = err.split("continue with: ")[1].split("\n")[0].split()
    assert main([*resume_line[1:], "--quiet"]) == 0  # the printed command, as printed

    straight = write_experiment(tmp_path, pointmaze_npz, "straight")
    assert main(["train", str(straight), "--quiet"]) == 0
    got, want = history(tmp_path / "offline"), history(tmp_path / "straight")
    assert [r["iteration"] for r in got] == list(range(1, 61))
    for key in ("grad_steps", "critic/loss", "bc/loss", "critic/q_mean"):
        assert [r[key] for r in got] == [r[key] for r in want], key


def test_sigterm_mid_online_keeps_every_counter_and_transition(ray_session, tmp_path, pointmaze_npz):
    config = write_experiment(tmp_path, pointmaze_npz, "online", offline_steps=20, online_env_steps=3000,
                              rollout_steps_per_iteration=50, start_training=0)
    code, err = train_and_terminate(config, tmp_path / "online", after_iteration=4)
    assert code == 128 + signal.SIGTERM, err[-3000:]
    before = history(tmp_path / "online")
    stopped_at = len(before)
    assert before[-1]["phase"] == 1 and stopped_at < 60
    checkpoint = str(tmp_path / "online" / "checkpoint")
    assert main(["train", str(config), "--quiet", "--resume", checkpoint, "--set", f"iterations={stopped_at + 2}"]) == 0
    after = history(tmp_path / "online")
    assert after[:stopped_at] == before
    assert [r["iteration"] for r in after] == list(range(1, stopped_at + 3))
    for key, per_iteration in (("online_env_steps", 50), ("grad_steps", 50)):
        steps = [r[key] for r in after[stopped_at - 1:]]
        assert steps == [steps[0] + per_iteration * k for k in range(3)], (key, steps)
    assert after[-1]["online_buffer_size"] == after[-1]["online_env_steps"]  # no transition lost or doubled


class FakeAlgorithm:
    """Writes a checkpoint file by file; ``fail_after`` files it raises, like a crash mid-save."""

    def __init__(self, tag: str, fail_after: int | None = None):
        self.tag, self.fail_after = tag, fail_after

    def save_to_path(self, path: str) -> str:
        folder = Path(path)
        folder.mkdir(parents=True)
        for i in range(4):
            if self.fail_after is not None and i == self.fail_after:
                raise OSError("disk full")
            (folder / f"part{i}.pkl").write_text(self.tag)
        return str(folder)


def test_checkpoint_writes_are_atomic(tmp_path):
    target = tmp_path / "checkpoint"
    save_checkpoint(FakeAlgorithm("first"), target, [{"iteration": 1}], [])
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(FakeAlgorithm("second", fail_after=2), target, [{"iteration": 2}], [])
    assert {p.read_text() for p in target.glob("part*.pkl")} == {"first"} and len(list(target.glob("*.pkl"))) == 4
    assert json.loads((target / "history.json").read_text()) == [{"iteration": 1}]
    save_checkpoint(FakeAlgorithm("third"), target, [{"iteration": 3}], [])  # a later save replaces it whole
    assert {p.read_text() for p in target.glob("part*.pkl")} == {"third"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # no staging folders left behind


def test_sigterm_mid_sweep_checkpoints_running_trials_and_resumes_exactly(tmp_path, pointmaze_npz):
    """SIGTERM to `vgf-ray tune`: every running trial checkpoints at its next iteration boundary (there are no
    periodic checkpoints here), MLflow marks the runs KILLED, the exit code is 128 + 15 with a resume line, and the
    printed `--resume` finishes each trial with the same losses as an uninterrupted run of its experiment."""
    import mlflow

    # 40 updates per iteration (about 0.3 s): long enough that the stop flag reaches both trials mid-sweep even on
    # a loaded machine (at 10, both once ran all 60 iterations before it arrived).
    config = write_experiment(tmp_path, pointmaze_npz, "sweep", updates_per_iteration=40)
    exp = yaml.safe_load(config.read_text())
    exp["mlflow"] = {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "interrupted"}
    exp["evaluation"]["interval"] = 60  # trials are compared on their last evaluation
    exp["sweep"] = {"metric": "bc/loss", "mode": "min", "max_concurrent_trials": 2, "checkpoint_interval": 0,
                    "grid": {"training.vgf_lr": [0.05, 0.1]}}
    config.write_text(yaml.safe_dump(exp))
    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vgf_ray.cli", "tune", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300

    def trial_folders() -> list[Path]:
        return sorted(d for d in sweep_dir.glob("*") if d.is_dir() and (d / "history.json").exists())

    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(trial_folders()) == 2 and all(len(history(d)) >= 2 for d in trial_folders()):
                break
        except json.JSONDecodeError:
            pass
        time.sleep(0.2)
    assert proc.poll() is None, f"the sweep ended before it could be interrupted: {proc.communicate()[1][-3000:]}"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, (out + err)[-4000:]
    assert "SIGTERM: every running trial saved a checkpoint" in err, err[-3000:]
    for folder in trial_folders():  # each trial's newest checkpoint holds every iteration it had run
        newest = max(folder.glob("checkpoint_*"), key=lambda p: p.name)
        saved = json.loads((newest / "history.json").read_text())
        assert 2 <= len(saved) < 60 and len(saved) == len(history(folder)), folder
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["interrupted"])
    assert sorted(runs["status"]) == ["KILLED"] * 3, runs[["status", "tags.mlflow.runName"]]

    resume_line = err.split("continue with: ")[1].split("\n")[0].split()
    assert resume_line[-1] == "--resume"
    assert main(resume_line[1:]) == 0  # the printed command, as printed
    runs = mlflow.search_runs(experiment_names=["interrupted"])
    assert sorted(runs["status"]) == ["FINISHED"] * 3, runs[["status", "tags.mlflow.runName"]]
    for folder in trial_folders():
        assert [r["iteration"] for r in history(folder)] == list(range(1, 61)), folder
    for folder in trial_folders()[:1]:  # one trial against an uninterrupted run of its experiment
        got = history(folder)
        straight = yaml.safe_load((folder / "experiment.yaml").read_text())
        straight["output_dir"] = str(tmp_path / f"straight-{folder.name}")
        path = tmp_path / f"straight-{folder.name}.yaml"
        path.write_text(yaml.safe_dump(straight))
        assert main(["train", str(path), "--quiet"]) == 0
        want = history(Path(straight["output_dir"]))
        for key in ("grad_steps", "critic/loss", "bc/loss"):
            assert [r[key] for r in got] == [r[key] for r in want], (folder.name, key)
