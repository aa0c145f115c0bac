"""Offline-to-online with 2 remote EnvRunners: data arrive with correct masks, weights reach the runners,
counters and replay survive a checkpoint, and a killed EnvRunner is restarted."""

import copy
import time

import numpy as np
import pytest
import ray
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.test_utils import check_train_results_new_api_stack

from vgf_ray.rllib import VGF, VGFConfig

TINY = dict(hidden_dims=(32, 32), actor_hidden_dims=(32, 32), num_particles=4, bc_flow_steps=3,
            train_batch_size_per_learner=32)


def online_config(pointmaze_npz, **overrides) -> VGFConfig:
    training = {**TINY, "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
                "offline_steps": 10, "updates_per_iteration": 10, "online_env_steps": 4000, "start_training": 40,
                "rollout_steps_per_iteration": 40, **overrides}
    return (
        VGFConfig()
        .environment(env_config={"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 15}})
        .training(**training)
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5, rollout_fragment_length=10)
        .fault_tolerance(restart_failed_env_runners=True)
        .evaluation(evaluation_interval=None)
        .debugging(seed=5)
    )


def runner_actions(algo, obs):
    def act(runner):
        torch.manual_seed(0)
        return runner.module.forward_exploration({"obs": torch.as_tensor(obs)})["actions"].numpy()

    return [r for r in algo.env_runner_group.foreach_env_runner(act, local_env_runner=False)]


@pytest.fixture(scope="module")
def online_algo(ray_session, pointmaze_npz):
    algo = online_config(pointmaze_npz).build_algo()
    yield algo
    algo.stop()


def test_offline_then_online_phases(online_algo):
    first = online_algo.train()
    assert first["phase"] == 0 and first["num_grad_steps_lifetime"] == 10 and first["online_env_steps_lifetime"] == 0
    second = online_algo.train()
    assert second["phase"] == 1 and second["online_env_steps_lifetime"] >= 40
    # The first online round is below start_training (40 steps): no update yet, like the authors' warm-up.
    assert second["num_grad_steps_lifetime"] == 10
    third = online_algo.train()
    added = third["online_env_steps_lifetime"] - second["online_env_steps_lifetime"]
    assert third["num_grad_steps_lifetime"] == 10 + added  # utd_ratio 1 once past start_training
    # RLlib's own layout, offline and online: its checker passes, counters sit where RLlib's learners log theirs.
    for result in (first, second, third):
        check_train_results_new_api_stack({**result, "config": online_algo.config.to_dict()})
        assert result["learners"]["__all_modules__"]["num_grad_steps_lifetime"] == result["num_grad_steps_lifetime"]
        assert result["num_env_steps_trained_lifetime"] == result["num_grad_steps_lifetime"] * TINY[
            "train_batch_size_per_learner"]
    assert first["env_runners"] == {"num_env_steps_sampled_lifetime": 0, "num_episodes_lifetime": 0}
    assert third["env_runners"]["num_env_steps_sampled_lifetime"] == third["online_env_steps_lifetime"]
    assert third["env_runners"]["episode_return_mean"] <= 0  # 15-step episodes completed online (reward -1 / 0)
    learner = online_algo.learner_group._learner
    online = learner.buffer.online.state_dict()["data"]
    assert len(online["observations"]) == third["online_env_steps_lifetime"]
    # 15-step time limit: truncations keep mask 1; only goal terminations (reward 0) may zero it.
    np.testing.assert_array_equal(online["masks"] == 0, online["rewards"] == 0)
    assert np.abs(online["actions"]).max() <= 1.0


def test_learner_weights_reach_runners(online_algo):
    obs = np.zeros((3, 2), np.float32)
    before = runner_actions(online_algo, obs)
    online_algo.train()
    after = runner_actions(online_algo, obs)
    np.testing.assert_array_equal(after[0], after[1])  # both runners hold the same (synced) weights
    assert not np.allclose(before[0], after[0])


def test_killed_env_runner_is_restarted(online_algo):
    steps = online_algo.train()["online_env_steps_lifetime"]
    actor = online_algo.env_runner_group._worker_manager._actors[1]
    ray.kill(actor, no_restart=False)  # a crash: Ray restarts the process, RLlib re-syncs it
    group = online_algo.env_runner_group
    deadline = time.time() + 120
    result = online_algo.train()  # runs on the surviving EnvRunner while the other restarts
    while group.num_healthy_remote_workers() < 2 and time.time() < deadline:
        time.sleep(2)
        result = online_algo.train()
    assert result["online_env_steps_lifetime"] > steps
    assert group.num_healthy_remote_workers() == 2
    assert online_algo.env_runner_group.num_remote_worker_restarts() >= 1


def test_resume_mid_online_restores_replay_and_counters(ray_session, pointmaze_npz, tmp_path):
    algo = online_config(pointmaze_npz).build_algo()
    try:
        for _ in range(3):
            algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "mid_online"))
        saved_counters = copy.deepcopy(algo.vgf_counters)
        saved_replay = algo.learner_group._learner.buffer.online.state_dict()
        nxt = algo.train()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(checkpoint)  # RLlib's base class finds VGF in the checkpoint
    try:
        assert type(restored) is VGF
        assert restored.vgf_counters == saved_counters and restored.phase() == 1
        replay = restored.learner_group._learner.buffer.online.state_dict()
        assert replay["total_added"] == saved_replay["total_added"]
        for key, value in saved_replay["data"].items():
            np.testing.assert_array_equal(replay["data"][key], value)
        got = restored.train()
        for key in ("num_grad_steps_lifetime", "online_env_steps_lifetime", "phase", "num_env_steps_trained_lifetime"):
            assert got[key] == nxt[key], key
    finally:
        restored.stop()


def test_online_settings_are_validated():
    with pytest.raises(ValueError, match="needs offline_steps"):
        VGFConfig().training(online_env_steps=10).validate()
    with pytest.raises(ValueError, match="replay_style"):
        VGFConfig().training(offline_steps=0, online_env_steps=10, replay_style="per").validate()
    with pytest.raises(ValueError, match="utd_ratio"):
        VGFConfig().training(offline_steps=0, online_env_steps=10, utd_ratio=0).validate()


def test_lost_env_runners_that_never_come_back_stop_the_run(ray_session, pointmaze_npz):
    """Empty rounds are made up for under iterations: auto, but not forever: with every EnvRunner gone for
    longer than env_runner_restore_timeout_s the run stops, saying so."""
    config = online_config(pointmaze_npz, start_training=0).fault_tolerance(env_runner_restore_timeout_s=0.0)
    algo = config.build_algo()
    try:
        algo.train()  # offline
        algo.train()  # a first online round: env steps arrive
        for actor in algo.env_runner_group._worker_manager._actors.values():
            ray.kill(actor, no_restart=True)
        with pytest.raises(RuntimeError, match=r"no env step collected for \d+ s .*none of the 2 EnvRunners came back"):
            for _ in range(5):
                algo.train()
    finally:
        algo.stop()


def test_vectorized_collection_with_several_envs_per_runner(ray_session, pointmaze_npz):
    """num_envs_per_env_runner > 1: the module acts for the whole batch of sub-env observations at the
    exploration budget, and every collected transition reaches the online replay with a valid mask."""
    config = online_config(pointmaze_npz, exploration_steps=1).env_runners(
        num_env_runners=0, num_envs_per_env_runner=4, rollout_fragment_length="auto")
    algo = config.build_algo()
    try:
        calls = []
        module = algo.env_runner_group.local_env_runner.module
        original = module._forward_exploration

        def recording(batch, **kwargs):
            calls.append(batch["obs"].shape[0])
            return original(batch, **kwargs)

        module._forward_exploration = recording
        algo.train()  # offline
        result = algo.train()  # the first online round
        assert result["online_env_steps_lifetime"] >= 40
        assert calls and set(calls) == {4}  # one call per vector step, for all 4 sub-envs
        online = algo.learner_group._learner.buffer.online.state_dict()["data"]
        assert len(online["observations"]) == result["online_env_steps_lifetime"]
        np.testing.assert_array_equal(online["masks"] == 0, online["rewards"] == 0)
        assert np.abs(online["actions"]).max() <= 1.0
    finally:
        algo.stop()
