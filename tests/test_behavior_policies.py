"""The behavior-policy trainer resumes where it stopped, and --publish writes what the dataset generator reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("stable_baselines3", reason="the behavior extra (stable-baselines3) trains the policies")

SETTINGS = {"every": 100, "eval_episodes": 1, "seed": 0, "device": "cpu", "learning_starts": 200}


def curve_steps(workdir) -> list[int]:
    return [json.loads(line)["step"] for line in (workdir / "curve.jsonl").read_text().splitlines()]


def test_training_checkpoints_and_resumes(tmp_path):
    from vgf_ray.behavior_policies.train import load_checkpoint, train

    workdir = tmp_path / "hopper"
    train("hopper", 300, workdir, **SETTINGS)
    assert curve_steps(workdir) == [0, 100, 200, 300]
    saved = np.load(workdir / "checkpoint" / "replay.npz")
    assert len(saved["observations"]) == 300 and int(saved["pos"]) == 300
    (workdir / "snapshots" / "step_0000400.npz").write_bytes(b"left by a run killed after its last checkpoint")
    train("hopper", 500, workdir, **SETTINGS)  # resumes at 300, not from scratch
    assert curve_steps(workdir) == [0, 100, 200, 300, 400, 500]
    assert np.load(workdir / "snapshots" / "step_0000400.npz").files  # measured again, not the stale file
    resumed = np.load(workdir / "checkpoint" / "replay.npz")
    np.testing.assert_array_equal(resumed["observations"][:300], saved["observations"])

    import gymnasium
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", gymnasium.make("Hopper-v5"), learning_starts=200, device="cpu")
    load_checkpoint(model, workdir / "checkpoint")
    assert model.num_timesteps == 500 and model.replay_buffer.pos == 500
    with pytest.raises(SystemExit, match="other settings"):
        train("hopper", 600, workdir, **{**SETTINGS, "seed": 1})


def test_publish_writes_the_files_generation_reads(tmp_path, monkeypatch):
    from vgf_ray.behavior_policies.publish import publish
    from vgf_ray.behavior_policies.train import train
    from vgf_ray.data.mujoco_generate import plan_segments
    from vgf_ray.data.mujoco_names import parse_mujoco_name
    from vgf_ray.data.mujoco_refs import load_behavior_refs

    workdir = tmp_path / "run" / "hopper"
    train("hopper", 600, workdir, **SETTINGS)
    publish("hopper", workdir, tmp_path / "policies" / "hopper", episodes=2)
    refs = load_behavior_refs("hopper", root=tmp_path / "policies")
    assert (tmp_path / "policies" / "hopper" / "curve.png").stat().st_size > 10_000
    assert refs.learning_starts == 200 and 200 < refs.medium_step <= 600
    assert [step for step, _ in refs.snapshots] == list(range(200, refs.medium_step, 100))
    replay = plan_segments(parse_mujoco_name("mujoco/hopper/medium-replay-v0"), refs, None)
    assert sum(s.steps for s in replay) == refs.medium_step
    for path in (tmp_path / "policies" / "hopper").rglob("*.npz"):
        assert path.stat().st_size < 1_000_000, path
