"""MuJoCo locomotion datasets made here: Minari's own format, the shipped behavior policies, normalized scores,
reward scaling, any bounded action box, and clear errors on bad input."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from vgf_ray.cli import main
from vgf_ray.data.transitions import DatasetError
from vgf_ray.errors import ConfigError, InputError

HOPPER_MEDIUM = "mujoco/hopper/medium-v0"


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def generate(dataset_id: str, size: int, seed: int = 0, overwrite: bool = False) -> str:
    from vgf_ray.data.mujoco_generate import generate_mujoco_dataset

    return generate_mujoco_dataset(dataset_id, size, seed, overwrite=overwrite, progress=False)


def test_a_generated_dataset_is_a_real_minari_dataset(minari_root):
    import minari

    from vgf_ray.data.mujoco_refs import load_behavior_refs
    from vgf_ray.data.spec import DatasetSpec, load_transitions

    generate(HOPPER_MEDIUM, 2000)
    dataset = minari.load_dataset(HOPPER_MEDIUM)
    assert dataset.total_steps == 2000
    assert dataset.recover_environment().spec.id == "Hopper-v5"
    refs = load_behavior_refs("hopper")
    # Minari's own normalizer reads the reference returns written with the data.
    np.testing.assert_allclose(minari.get_normalized_score(dataset, np.array([refs.expert_return])), [1.0])
    data, info = load_transitions(DatasetSpec(source="minari", name=HOPPER_MEDIUM))
    assert info["obs_dim"] == 11 and info["act_dim"] == 3 and info["num_transitions"] == 2000
    assert np.abs(data["actions"]).max() <= 1.0


def test_generation_is_reproducible_per_seed(minari_root):
    from vgf_ray.data.spec import DatasetSpec, load_transitions

    spec = DatasetSpec(source="minari", name=HOPPER_MEDIUM)
    generate(HOPPER_MEDIUM, 600, seed=3)
    first, _ = load_transitions(spec)
    generate(HOPPER_MEDIUM, 600, seed=3, overwrite=True)
    again, _ = load_transitions(spec)
    generate(HOPPER_MEDIUM, 600, seed=4, overwrite=True)
    other, _ = load_transitions(spec)
    np.testing.assert_array_equal(first["actions"], again["actions"])
    assert not np.array_equal(first["actions"], other["actions"])


def test_each_level_plays_its_policies():
    """medium-expert is half medium, half expert; medium-replay starts uniform-random, then replays the training
    snapshots in order; sizes add up exactly."""
    from vgf_ray.data.mujoco_generate import plan_segments
    from vgf_ray.data.mujoco_names import parse_mujoco_name
    from vgf_ray.data.mujoco_refs import load_behavior_refs

    refs = load_behavior_refs("hopper")
    mixed = plan_segments(parse_mujoco_name("mujoco/hopper/medium-expert-v0"), refs, 1001)
    assert [s.steps for s in mixed] == [500, 501]
    np.testing.assert_array_equal(mixed[0].actor.layers["mu.weight"], refs.actor("medium").layers["mu.weight"])
    np.testing.assert_array_equal(mixed[1].actor.layers["mu.weight"], refs.actor("expert").layers["mu.weight"])
    replay = plan_segments(parse_mujoco_name("mujoco/hopper/medium-replay-v0"), refs, None)
    assert replay[0].actor is None and replay[0].steps == refs.learning_starts
    assert sum(s.steps for s in replay) == refs.medium_step
    assert all(s.actor is not None for s in replay[1:])
    scaled = plan_segments(parse_mujoco_name("mujoco/hopper/medium-replay-v0"), refs, 777)
    assert sum(s.steps for s in scaled) == 777


def test_normalized_score_is_d4rls_arithmetic():
    from vgf_ray.data.mujoco_refs import load_behavior_refs, normalized_score

    assert normalized_score(-20.0, -20.0, 180.0) == 0.0
    assert normalized_score(180.0, -20.0, 180.0) == 100.0
    assert normalized_score(80.0, -20.0, 180.0) == 50.0
    refs = load_behavior_refs("hopper")
    assert refs.normalized_score(refs.expert_return) == pytest.approx(100.0)
    assert refs.normalized_score(refs.random_return) == pytest.approx(0.0)
    assert refs.random_return < refs.expert_return / 10


@pytest.mark.parametrize("name, message", [
    ("mujoco/ant/medium-v0", r"unknown environment 'ant'; valid: \['halfcheetah', 'hopper', 'walker2d'\]"),
    ("mujoco/hopper/random-v0", r"unknown level 'random'; valid: \['expert', 'medium', 'medium-replay'"),
    ("mujoco/hopper/medium-v3", "unknown version 'v3'"),
    ("mujoco/hopper", "expected mujoco/<env>/<level>-v0"),
])
def test_unknown_names_list_the_valid_ones(name, message):
    from vgf_ray.data.mujoco_names import parse_mujoco_name

    with pytest.raises(ConfigError, match=message):
        parse_mujoco_name(name)


def test_cli_refuses_an_existing_dataset_without_overwrite(minari_root, capsys):
    assert main(["make-dataset", HOPPER_MEDIUM, "--size", "300"]) == 0
    assert capsys.readouterr().out.strip().endswith("mujoco/hopper/medium-v0")
    assert main(["make-dataset", HOPPER_MEDIUM, "--size", "300"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert main(["make-dataset", HOPPER_MEDIUM, "--size", "400", "--overwrite"]) == 0


def test_a_damaged_dataset_fails_as_other_minari_data(minari_root):
    from vgf_ray.data.minari_load import load_minari_transitions

    folder = generate(HOPPER_MEDIUM, 300)
    data_file = next((minari_root / "mujoco/hopper/medium-v0/data").glob("*.hdf5"))
    data_file.write_bytes(data_file.read_bytes()[:200])
    with pytest.raises(DatasetError, match="cannot be read"):
        load_minari_transitions(HOPPER_MEDIUM)
    assert folder.endswith("medium-v0")


def test_a_policy_file_with_objects_or_missing_layers_is_refused(tmp_path):
    from vgf_ray.data.mujoco_policy import SquashedGaussianActor

    np.savez(tmp_path / "objects.npz", weights=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DatasetError, match="cannot be read as a behavior-policy file"):
        SquashedGaussianActor.load(tmp_path / "objects.npz")
    np.savez(tmp_path / "partial.npz", **{"mu.weight": np.zeros((3, 4))})
    with pytest.raises(DatasetError, match="not a behavior-policy file"):
        SquashedGaussianActor.load(tmp_path / "partial.npz")


def test_the_recorded_env_and_reference_scores_fill_a_silent_env_section(minari_root):
    from vgf_ray.experiment.environment import resolve_env
    from vgf_ray.metrics import SCORE_REFERENCE

    generate(HOPPER_MEDIUM, 300)
    exp = {"env": {}, "dataset": {"source": "minari", "name": HOPPER_MEDIUM}}
    resolve_env(exp)
    assert exp["env"]["gym_id"] == "Hopper-v5"
    random_return, expert_return = exp["env"][SCORE_REFERENCE]
    assert random_return < expert_return
    ogbench = {"env": {}, "dataset": {"name": "puzzle-3x3-play"}}
    resolve_env(ogbench)
    assert ogbench["env"] == {"ogbench": "puzzle-3x3-play", "success_timing": "post"}
    with pytest.raises(InputError, match="names two environments"):
        resolve_env({"env": {"gym_id": "Hopper-v5", "ogbench": "cube-single-play"}, "dataset": {}})


def test_reward_scaling_uses_the_spread_of_episode_returns():
    from vgf_ray.data.rewards import episode_returns, return_range_scale

    obs = np.arange(8, dtype=np.float32)[:, None]
    data = {"observations": obs, "next_observations": obs + 1, "rewards": np.array([1, 1, 1, 5, 5, 0, 2, 2.0]),
            "masks": np.array([1, 1, 0, 1, 1, 1, 1, 1.0])}
    data["next_observations"][4] = 99.0  # the next row does not continue this one: an episode ends here
    np.testing.assert_allclose(episode_returns(data), [3.0, 10.0, 4.0])
    assert return_range_scale(data, "d") == pytest.approx(1000.0 / 7.0)
    flat = {**data, "rewards": np.ones(8)}
    flat["masks"] = np.array([1, 0, 1, 0, 1, 0, 1, 0.0])
    flat["next_observations"] = obs + 1
    with pytest.raises(DatasetError, match="episodes of different returns"):
        return_range_scale(flat, "d")


def test_normalize_rewards_scales_the_loaded_data(minari_root):
    from vgf_ray.data.spec import DatasetSpec, load_transitions

    generate(HOPPER_MEDIUM, 1500)
    raw, raw_info = load_transitions(DatasetSpec(source="minari", name=HOPPER_MEDIUM))
    scaled, info = load_transitions(DatasetSpec(source="minari", name=HOPPER_MEDIUM, normalize_rewards=True))
    assert raw_info["reward_scale"] == 1.0 and info["reward_scale"] != 1.0
    np.testing.assert_allclose(scaled["rewards"], raw["rewards"] * info["reward_scale"], rtol=1e-5)


class WideBoxEnv(gymnasium.Env):
    """A 1-D point whose action box is [-3, 3]: the env records the action it received."""

    observation_space = gymnasium.spaces.Box(-10, 10, (1,), np.float32)
    action_space = gymnasium.spaces.Box(-3, 3, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.received = np.asarray(action, np.float32)
        return np.zeros(1, np.float32), 0.0, False, False, {}


def test_a_bounded_action_box_is_rescaled_for_data_and_env_alike(tmp_path, monkeypatch):
    from minari_util import make_minari_dataset

    from vgf_ray.data.action_box import to_unit_box
    from vgf_ray.data.minari_load import load_minari_transitions
    from vgf_ray.envs import VGFEnv

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    gymnasium.register("VGFTestWideBox-v0", entry_point=WideBoxEnv, max_episode_steps=50)
    try:
        env = gymnasium.make("VGFTestWideBox-v0")
        dataset = make_minari_dataset("vgftest/widebox/random-v0", env, [(40, False)])
        data, _ = load_minari_transitions(dataset)
        assert np.abs(data["actions"]).max() <= 1.0 and np.abs(data["actions"]).max() > 0.5
        wrapped = VGFEnv({"gym_id": "VGFTestWideBox-v0"})
        assert np.allclose(wrapped.action_space.low, -1) and np.allclose(wrapped.action_space.high, 1)
        wrapped.reset(seed=0)
        wrapped.step(np.array([0.5], np.float32))
        assert wrapped.unwrapped.received == pytest.approx([1.5])  # back to the env's own box on the way out
        np.testing.assert_allclose(to_unit_box(np.array([[1.5]]), env.action_space), [[0.5]])
    finally:
        gymnasium.registry.pop("VGFTestWideBox-v0")


def test_an_unbounded_action_box_is_a_clear_error():
    from vgf_ray.data.action_box import unit_box_env

    class Unbounded(WideBoxEnv):
        action_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,), np.float32)

    with pytest.raises(ConfigError, match="must be a bounded Box"):
        unit_box_env(Unbounded(), "env x")
