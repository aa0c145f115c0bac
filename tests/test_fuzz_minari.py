"""Fuzzed Minari datasets: a clean local dataset (Box or Dict observations) copied and damaged the ways a real one
can be (episode arrays with other dtypes, shapes, NaN/inf, endings in the middle, missing or extra episodes, a
truncated or garbage hdf5 file, broken metadata). Every case loads into trainable transitions or fails with
vgf_ray's one-line ``DatasetError`` naming the dataset; never a raw h5py/numpy/Minari traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from minari_util import DictObservationEnv, make_minari_dataset

from vgf_ray.data.minari_load import load_minari_transitions
from vgf_ray.errors import InputError

EPISODE_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")
ARRAY_MUTATIONS = ("drop", "strings", "complex", "ints", "bools", "floats", "scalar", "empty", "extra_dim",
                   "fewer_rows", "more_rows", "nan", "inf", "huge", "wrong_width", "end_in_middle", "end_twice",
                   "no_end", "flag_two")
EPISODE_MUTATIONS = ("none", "drop_episode", "extra_episode", "episode_is_array")
FILE_MUTATIONS = ("none", "truncate", "garbage", "empty_file", "no_data_file", "metadata_not_json",
                  "metadata_no_space", "metadata_bad_space", "metadata_more_episodes", "no_metadata")
DATASET_ID = "fuzz/point/clean-v0"


@pytest.fixture(scope="module")
def clean_datasets(tmp_path_factory) -> dict[str, Path]:
    """A Box-observation and a Dict-observation dataset, each built once and copied per case."""
    root = tmp_path_factory.mktemp("minari-clean")
    before = os.environ.get("MINARI_DATASETS_PATH")
    folders = {}
    try:
        for kind, env in (("box", gymnasium.make("MountainCarContinuous-v0")), ("dict", DictObservationEnv())):
            os.environ["MINARI_DATASETS_PATH"] = str(root / kind)
            make_minari_dataset(DATASET_ID, env, [(12, True), (9, False), (7, False)])
            folders[kind] = root / kind / DATASET_ID
    finally:
        os.environ.pop("MINARI_DATASETS_PATH") if before is None else os.environ.update(MINARI_DATASETS_PATH=before)
    return folders


def _nonfinite(a, how: str, rng: np.random.Generator):
    if not (np.issubdtype(np.asarray(a).dtype, np.floating) and np.size(a)):
        return None
    out = np.array(a, copy=True)
    if how == "huge":
        return out * 1e6
    out.flat[int(rng.integers(0, out.size))] = np.nan if how == "nan" else np.inf
    return out


def _episode_ends(a, key: str, how: str, n: int, rng: np.random.Generator):
    """Termination or truncation flags that end an episode in the middle, twice, never, or with a 2."""
    if key not in ("terminations", "truncations"):
        return None
    out = np.array(a, copy=True)
    if how == "end_in_middle" and n > 2:
        out[int(rng.integers(0, n - 1))] = True
    elif how == "end_twice":
        out[:] = True
    elif how == "no_end":
        out[:] = False
    elif how == "flag_two":
        out = out.astype(np.int64)
        out[-1] = 2
    return out


# how -> (array, key, rows, rng) -> the replacement (None: the mutation does not apply to this key)
LEAF_MUTATORS = {
    "strings": lambda a, key, n, rng: np.asarray(a).astype("S8"),
    "complex": lambda a, key, n, rng: np.asarray(a).astype(np.complex64),
    "ints": lambda a, key, n, rng: np.asarray(a).astype(np.int64),
    "bools": lambda a, key, n, rng: np.asarray(a).astype(bool),
    "floats": lambda a, key, n, rng: np.asarray(a).astype(np.float64) + 0.5,
    "scalar": lambda a, key, n, rng: np.asarray(np.ravel(a)[0] if np.size(a) else 0.0),
    "empty": lambda a, key, n, rng: np.asarray(a)[:0],
    "extra_dim": lambda a, key, n, rng: np.asarray(a)[..., None],
    "fewer_rows": lambda a, key, n, rng: np.asarray(a)[: max(n - 1 - int(rng.integers(0, 3)), 0)],
    "more_rows": lambda a, key, n, rng: np.concatenate([a, a[-1:]]) if np.ndim(a) else None,
    "nan": lambda a, key, n, rng: _nonfinite(a, "nan", rng),
    "inf": lambda a, key, n, rng: _nonfinite(a, "inf", rng),
    "huge": lambda a, key, n, rng: _nonfinite(a, "huge", rng),
    "wrong_width": lambda a, key, n, rng: np.concatenate([a, a[:, :1]], axis=1) if np.ndim(a) == 2 else None,
    **{how: (lambda a, key, n, rng, how=how: _episode_ends(a, key, how, n, rng))
       for how in ("end_in_middle", "end_twice", "no_end", "flag_two")},
}


def mutate_leaf(group, key: str, how: str, rng: np.random.Generator) -> None:
    """Replace dataset ``key`` of an hdf5 group (observations may be a group of parts: one part is hit)."""
    import h5py

    if key not in group:
        return
    if isinstance(group[key], h5py.Group):  # Dict observations: damage one part or the whole group
        parts = sorted(group[key].keys())
        if how == "drop" or not parts:
            del group[key]
            return
        return mutate_leaf(group[key], parts[int(rng.integers(len(parts)))], how, rng)
    if how == "drop":
        del group[key]
        return
    a = group[key][()]
    out = LEAF_MUTATORS[how](a, key, len(a) if np.ndim(a) else 1, rng) if how in LEAF_MUTATORS else None
    if out is not None:
        del group[key]
        group.create_dataset(key, data=out)


def _damage_metadata(metadata: Path, how: str) -> None:
    meta = json.loads(metadata.read_text())
    if how == "metadata_not_json":
        metadata.write_text(json.dumps(meta)[:40])
        return
    if how == "metadata_no_space":
        meta.pop("observation_space", None)
    elif how == "metadata_bad_space":
        meta["observation_space"] = '{"type": "Box", "dtype": "float32", "shape": [3]}'
    elif how == "metadata_more_episodes":
        meta["total_episodes"] = int(meta["total_episodes"]) + 2
    metadata.write_text(json.dumps(meta))


def mutate_file(folder: Path, how: str, rng: np.random.Generator) -> None:
    main, metadata = folder / "data" / "main_data.hdf5", folder / "data" / "metadata.json"
    if how == "truncate":
        main.write_bytes(main.read_bytes()[: int(main.stat().st_size * rng.uniform(0.05, 0.95))])
    elif how == "garbage":
        main.write_bytes(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    elif how == "empty_file":
        main.write_bytes(b"")
    elif how == "no_data_file":
        main.unlink()
    elif how == "no_metadata":
        metadata.unlink()
    elif how.startswith("metadata"):
        _damage_metadata(metadata, how)


def mutate_episodes(main: Path, mutations, episode_mutation: str, rng: np.random.Generator) -> None:
    import h5py

    with h5py.File(main, "a") as f:
        names = sorted(f.keys())
        for index, key, how in mutations:
            mutate_leaf(f[names[index % len(names)]], key, how, rng)
        if episode_mutation == "drop_episode":
            del f[names[1]]
        elif episode_mutation == "extra_episode":
            f.create_group(f"episode_{len(names)}").create_dataset("actions", data=np.zeros((3, 1)))
        elif episode_mutation == "episode_is_array":
            del f[names[0]]
            f.create_dataset(names[0], data=np.arange(5.0))


@given(kind=st.sampled_from(["box", "dict"]),
       mutations=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(EPISODE_KEYS), st.sampled_from(ARRAY_MUTATIONS)),
                          max_size=3),
       episode_mutation=st.one_of(st.just("none"), st.sampled_from(EPISODE_MUTATIONS)),  # intact half the time,
       file_mutation=st.one_of(st.just("none"), st.sampled_from(FILE_MUTATIONS)),  # so the arrays get read
       seed=st.integers(0, 2**16))
def test_corrupted_minari_dataset_loads_or_fails_clearly(clean_datasets, tmp_path_factory, kind, mutations,
                                                         episode_mutation, file_mutation, seed):
    rng = np.random.default_rng(seed)
    root = tmp_path_factory.mktemp("minari")
    folder = root / DATASET_ID
    shutil.copytree(clean_datasets[kind], folder)
    mutate_episodes(folder / "data" / "main_data.hdf5", mutations, episode_mutation, rng)
    mutate_file(folder, file_mutation, rng)
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        data, info = load_minari_transitions(DATASET_ID)
    except InputError as err:
        message = str(err)
        assert "\n" not in message.strip(), message
        assert DATASET_ID in message, message
        event("clear error: " + re.sub(r"[\d.]+", "N", message.rsplit("): ", 1)[-1])[:70])
        return
    finally:
        os.environ.pop("MINARI_DATASETS_PATH") if before is None else os.environ.update(MINARI_DATASETS_PATH=before)
    event("loaded")
    n = len(data["observations"])
    assert n > 0 and all(len(data[k]) == n for k in data)
    assert all(np.isfinite(v).all() for v in data.values())
    assert np.abs(data["actions"]).max() <= 1.0
    assert set(np.unique(data["masks"])) <= {0.0, 1.0}
    assert data["observations"].shape[1] == info["obs_dim"] == data["next_observations"].shape[1]
    assert data["actions"].shape[1] == info["act_dim"]
