"""Local Minari datasets as offline data: masks from terminations only, clear errors, no downloads."""

import gymnasium
import numpy as np
import pytest
from minari_util import DictObservationEnv, make_minari_dataset

from vgf_ray.data.transitions import DatasetError


@pytest.fixture(scope="module")
def minari_dataset(tmp_path_factory):
    import os

    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path_factory.mktemp("minari"))
    return make_minari_dataset("vgftest/mountaincar/random-v0", gymnasium.make("MountainCarContinuous-v0"),
                               [(30, True), (20, False)])


def test_minari_transitions_and_masks(minari_dataset):
    from vgf_ray.data.spec import DatasetSpec, load_transitions

    data, info = load_transitions(DatasetSpec(source="minari", name=minari_dataset))
    assert info["obs_dim"] == 2 and info["act_dim"] == 1 and info["num_transitions"] == 50
    masks = data["masks"]
    assert masks[29] == 0.0, "a true termination must zero the bootstrap mask"
    assert masks[49] == 1.0, "a time-limit truncation must keep bootstrapping"
    assert masks.sum() == 49
    np.testing.assert_array_equal(data["next_observations"][:29], data["observations"][1:30])


def test_minari_dataset_converts_to_rllib_offline_format(minari_dataset, tmp_path, monkeypatch):
    """A baseline's ``data_pipeline: rllib`` reads a parquet copy, cached against the Minari dataset's identity."""
    import pyarrow.parquet as pq

    from vgf_ray.baselines.offline_format import PARQUET_FILE, ensure_rllib_offline_data

    monkeypatch.setenv("VGF_RAY_DATA_DIR", str(tmp_path / "ogbench"))
    spec = {"source": "minari", "name": minari_dataset}
    folder = ensure_rllib_offline_data(spec, progress=False)
    assert pq.read_table(folder / PARQUET_FILE).num_rows == 50
    assert ensure_rllib_offline_data(spec, progress=False) == folder


def test_missing_minari_dataset_is_a_clear_error(minari_dataset):
    from vgf_ray.data.minari_load import load_minari_transitions

    with pytest.raises(DatasetError, match="minari:vgftest/nothing-v0: not found"):
        load_minari_transitions("vgftest/nothing-v0")


def test_dict_observations_are_flattened_like_the_env(minari_dataset):
    """Dict observations load flattened in gymnasium's order, the order VGFEnv flattens the live env in."""
    from vgf_ray.data.minari_load import load_minari_transitions
    from vgf_ray.envs import VGFEnv

    env = DictObservationEnv()
    dataset_id = make_minari_dataset("vgftest/dictpoint/random-v0", env, [(15, False), (10, True)])
    data, info = load_minari_transitions(dataset_id)
    assert info["obs_dim"] == 4 and info["num_transitions"] == 25
    env.reset(seed=0)  # episode 0's first observation, flattened by gymnasium
    first = gymnasium.spaces.flatten(env.observation_space, env._obs())
    np.testing.assert_allclose(data["observations"][0], first)
    gymnasium.register("VGFTestDictPoint-v0", entry_point=DictObservationEnv, max_episode_steps=20)
    try:
        live = VGFEnv({"gym_id": "VGFTestDictPoint-v0"})
        obs, _ = live.reset(seed=0)
    finally:
        gymnasium.registry.pop("VGFTestDictPoint-v0")
    assert live.observation_space.shape == (4,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs, first)
