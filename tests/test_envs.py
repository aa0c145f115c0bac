"""The RLlib env class and module reject what VGF cannot handle, naming the problem."""

import gymnasium
import numpy as np
import pytest

from vgf_ray.envs import VGFEnv


def test_ogbench_env_casts_observations_and_reports_success():
    env = VGFEnv({"ogbench": "pointmaze-medium-navigate", "success_timing": "pre",
                  "env_kwargs": {"max_episode_steps": 5}})
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.dtype == np.float32
    _, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert "success" in info and isinstance(reward, float)
    env.close()


def test_env_config_errors_name_the_key():
    with pytest.raises(ValueError, match="needs 'ogbench' or 'gym_id'"):
        VGFEnv({"name": "cube-single-play"})
    with pytest.raises(ValueError, match="success_timing='during'"):
        VGFEnv({"ogbench": "cube-single-play", "success_timing": "during"})


def test_module_rejects_action_boxes_other_than_unit():
    from vgf_ray.rllib.module import VGFTorchRLModule

    obs_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
    with pytest.raises(ValueError, match=r"\[-1, 1\] action box"):
        VGFTorchRLModule(observation_space=obs_space, action_space=gymnasium.spaces.Box(-2.0, 2.0, (1,), np.float32),
                         model_config={"vgf": {"hidden_dims": [8], "actor_hidden_dims": [8]}})
