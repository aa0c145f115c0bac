"""OGBench datasets generated here: official npz layout, singletask relabelling, caching and clear errors."""

import os

import numpy as np
import pytest

from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset, generate_ogbench_dataset
from vgf_ray.data.ogbench_load import load_ogbench_transitions
from vgf_ray.data.ogbench_names import parse_ogbench_name
from vgf_ray.data.transitions import DatasetError


def test_generated_file_has_ogbench_layout(pointmaze_npz):
    with np.load(pointmaze_npz) as f:
        assert set(f.files) == {"observations", "actions", "terminals", "qpos", "qvel"}
        assert f["observations"].dtype == np.float32 and f["actions"].dtype == np.float32
        assert f["terminals"].dtype == bool
        terminals = f["terminals"]
        assert len(terminals) % 201 == 0
        ends = np.flatnonzero(terminals)
        np.testing.assert_array_equal(ends, np.arange(200, len(terminals), 201))  # one 201-step trajectory each
        assert np.abs(f["actions"]).max() <= 1.0
        np.testing.assert_allclose(f["qpos"][:, :2], f["observations"][:, :2], atol=1e-5)  # point: obs = xy
    assert pointmaze_npz.with_name("pointmaze-medium-navigate-v0-val.npz").exists()


def test_ogbench_loader_reads_generated_file_like_official_data(pointmaze_npz):
    import ogbench

    data, info = load_ogbench_transitions("pointmaze-medium-navigate", pointmaze_npz)
    assert info["env_id"] == "pointmaze-medium-singletask-task1-v0" and info["obs_dim"] == 2
    _, train, _ = ogbench.make_env_and_datasets("pointmaze-medium-navigate-singletask-task1-v0",
                                                dataset_path=str(pointmaze_npz))
    np.testing.assert_array_equal(data["masks"], train["masks"])
    np.testing.assert_array_equal(data["rewards"], train["rewards"])
    np.testing.assert_array_equal(data["next_observations"], train["next_observations"])
    assert len(data["observations"]) == 3 * 200  # the last step of each trajectory is dropped
    assert set(np.unique(data["rewards"])) <= {-1.0, 0.0}
    np.testing.assert_array_equal(data["masks"], -data["rewards"])  # mask 0 exactly at success (reward 0)
    assert np.abs(data["actions"]).max() <= 1.0 - 1e-5  # authors' action clip


def test_cube_dataset_generation_and_relabelling(data_dir):
    path = generate_ogbench_dataset("cube-single-play", 100, data_dir / "cube", episode_length=51, progress=False)
    with np.load(path) as f:
        assert f["observations"].shape[1] == 28 and f["actions"].shape[1] == 5 and f["qpos"].shape[1] == 21
    data, info = load_ogbench_transitions("cube-single-play-singletask-task2-v0", path)
    assert info["env_id"] == "cube-single-singletask-task2-v0"
    assert len(data["observations"]) == 2 * 50
    assert set(np.unique(data["rewards"])) <= {-1.0, 0.0}


def test_cache_generates_once(data_dir):
    first = ensure_ogbench_dataset("pointmaze-medium-navigate", 50, data_dir, episode_length=26, progress=False)
    stamp = os.path.getmtime(first)
    again = ensure_ogbench_dataset("pointmaze-medium-navigate", 50, data_dir, episode_length=26, progress=False)
    assert again == first and os.path.getmtime(again) == stamp
    other = ensure_ogbench_dataset("pointmaze-medium-navigate", 60, data_dir, episode_length=26, progress=False)
    assert other != first


@pytest.mark.parametrize(
    "name, env, task",
    [("cube-single-play", "cube-single", 2), ("puzzle-3x3-play-singletask-v0", "puzzle-3x3", 4),
     ("scene-play-singletask-task5-v0", "scene", 5), ("pointmaze-medium-navigate", "pointmaze-medium", 1)],
)
def test_names_resolve_default_tasks(name, env, task):
    parsed = parse_ogbench_name(name)
    assert (parsed.env, parsed.task) == (env, task)


def test_bad_names_are_rejected():
    with pytest.raises(ValueError, match="not an OGBench dataset name"):
        parse_ogbench_name("cube_single")
    with pytest.raises(ValueError, match="task 7"):
        parse_ogbench_name("cube-single-play-singletask-task7-v0")
    with pytest.raises(ValueError, match="cannot generate"):
        generate_ogbench_dataset("antmaze-large-navigate", 10, "/tmp/unused")


def _corrupt(src, dst, edit):
    with np.load(src) as f:
        arrays = {k: f[k].copy() for k in f.files}
    edit(arrays)
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, **arrays)
    val_src = src.with_name(src.name.replace(".npz", "-val.npz"))
    with np.load(val_src) as f:
        np.savez(dst.with_name(dst.name.replace(".npz", "-val.npz")), **{k: f[k] for k in f.files})
    return dst


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a.pop("actions"), r"missing key\(s\) \['actions'\]"),
        (lambda a: a.pop("qpos"), r"missing key\(s\) \['qpos'\]"),
        (lambda a: a.__setitem__("actions", a["actions"][:-5]), "'actions' has"),
        (lambda a: a["observations"].__setitem__((3, 0), np.nan), "'observations' contains 1 NaN/inf"),
        (lambda a: a["actions"].__setitem__((4, 1), 3.0), "outside the \\[-1, 1\\] box"),
        (lambda a: a.__setitem__("observations", a["observations"][:, :, None]), "must be 2-D"),
        (lambda a: a["terminals"].__setitem__(-1, False), "terminals"),
    ],
)
def test_corrupt_files_get_clear_errors(pointmaze_npz, tmp_path, edit, message):
    bad = _corrupt(pointmaze_npz, tmp_path / "bad" / "pointmaze-medium-navigate-v0.npz", edit)
    with pytest.raises(DatasetError, match=message) as err:
        load_ogbench_transitions("pointmaze-medium-navigate", bad)
    assert str(bad) in str(err.value)


def test_dimension_mismatch_with_env_is_reported(pointmaze_npz, tmp_path):
    bad = _corrupt(pointmaze_npz, tmp_path / "dims" / "cube-single-play-v0.npz",
                   lambda a: a.update(qpos=np.zeros((len(a["qpos"]), 21), np.float32)))
    with pytest.raises(DatasetError, match="observation dim 2 does not match the environment's 28"):
        load_ogbench_transitions("cube-single-play", bad)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match="file not found"):
        load_ogbench_transitions("cube-single-play", tmp_path / "nope.npz")
    junk = tmp_path / "cube-single-play-v0.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable npz") as err:
        load_ogbench_transitions("cube-single-play", junk)
    assert "pickle" not in str(err.value)  # numpy's own error would suggest allow_pickle=True


def test_object_arrays_are_refused_without_advice_to_unpickle(tmp_path):
    path = tmp_path / "cube-single-play-v0.npz"
    np.savez(path, observations=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DatasetError, match="Python object arrays") as err:
        load_ogbench_transitions("cube-single-play", path)
    assert "allow_pickle" not in str(err.value)


def test_a_file_without_its_val_split_loads(pointmaze_npz, tmp_path):
    """The ``-val`` file beside a dataset is optional for training; asking for the missing split names it."""
    import shutil

    lone = tmp_path / "lone" / pointmaze_npz.name
    lone.parent.mkdir()
    shutil.copyfile(pointmaze_npz, lone)
    data, info = load_ogbench_transitions("pointmaze-medium-navigate", lone)
    reference, _ = load_ogbench_transitions("pointmaze-medium-navigate", pointmaze_npz)
    for key in reference:
        np.testing.assert_array_equal(data[key], reference[key])
    with pytest.raises(DatasetError, match=r"-val.npz: file not found \(the 'val' split"):
        load_ogbench_transitions("pointmaze-medium-navigate", lone, split="val")
