"""Local Minari datasets as offline data: masks from terminations only, clear errors, no downloads."""

import gymnasium
import numpy as np
import pytest

from vgf_ray.data.transitions import DatasetError


def _episode_buffer(env, seed, steps, terminated):
    from minari.data_collector.episode_buffer import EpisodeBuffer

    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [obs], [], []
    for _ in range(steps):
        action = env.action_space.sample()
        obs, reward, _, _, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
    terminations = [False] * steps
    truncations = [False] * steps
    (terminations if terminated else truncations)[-1] = True
    return EpisodeBuffer(id=seed, observations=np.array(observations), actions=np.array(actions), rewards=rewards,
                         terminations=terminations, truncations=truncations, infos={})


@pytest.fixture(scope="module")
def minari_dataset(tmp_path_factory):
    import os

    import minari

    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path_factory.mktemp("minari"))
    env = gymnasium.make("MountainCarContinuous-v0")
    env.action_space.seed(0)
    buffers = [_episode_buffer(env, 0, 30, terminated=True), _episode_buffer(env, 1, 20, terminated=False)]
    minari.create_dataset_from_buffers("vgftest/mountaincar/random-v0", buffers, env=env, algorithm_name="random")
    return "vgftest/mountaincar/random-v0"


def test_minari_transitions_and_masks(minari_dataset):
    from vgf_ray.data.spec import DatasetSpec, load_transitions

    data, info = load_transitions(DatasetSpec(source="minari", name=minari_dataset))
    assert info["obs_dim"] == 2 and info["act_dim"] == 1 and info["num_transitions"] == 50
    masks = data["masks"]
    assert masks[29] == 0.0, "a true termination must zero the bootstrap mask"
    assert masks[49] == 1.0, "a time-limit truncation must keep bootstrapping"
    assert masks.sum() == 49
    np.testing.assert_array_equal(data["next_observations"][:29], data["observations"][1:30])


def test_missing_minari_dataset_is_a_clear_error(minari_dataset):
    from vgf_ray.data.minari_load import load_minari_transitions

    with pytest.raises(DatasetError, match="minari:vgftest/nothing-v0: not found"):
        load_minari_transitions("vgftest/nothing-v0")
