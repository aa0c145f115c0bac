"""Load a local Minari dataset as transitions; never downloads.

Actions of any bounded Box are mapped to [-1, 1] (``action_box``), as the live env's are.

Masks: 0 only at true terminations; a time-limit truncation (or an episode that simply stops) keeps mask 1 so the
critic still bootstraps. Dict and Tuple observations of Boxes are flattened in gymnasium's ``flatten`` order, the
same order ``VGFEnv`` flattens the live env's observations in, so data and env agree.

Minari's reader fails on damaged files with whatever its layers raise (h5py's ``OSError``/``KeyError``, bare
``AssertionError``s, ``json`` errors): those become one ``DatasetError`` naming the dataset folder and the problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium
import minari
import numpy as np
from minari.storage.datasets_root_dir import get_dataset_path

from vgf_ray.data.action_box import check_bounded, to_unit_box
from vgf_ray.data.transitions import DatasetError, check_numeric_array, finalize_transitions
from vgf_ray.errors import ConfigError

# What Minari's hdf5/arrow readers raise on a damaged dataset folder (never our own code: only its calls are wrapped).
MINARI_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, AssertionError, IndexError, AttributeError,
                      json.JSONDecodeError)
EPISODE_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")


def minari_metadata_file(dataset_id: str) -> Path:
    """The metadata file Minari writes with a dataset: its identity for caches of data derived from it."""
    return Path(get_dataset_path(dataset_id)) / "data" / "metadata.json"


def load_minari_transitions(dataset_id: str) -> tuple[dict[str, np.ndarray], dict]:
    """Transitions and space dims of the Minari dataset ``dataset_id`` found under ``MINARI_DATASETS_PATH``."""
    folder = Path(get_dataset_path(dataset_id))
    source = f"minari:{dataset_id} ({folder})"
    if not (folder / "data").is_dir():
        try:
            local = sorted(minari.list_local_datasets())
        except MINARI_READ_ERRORS:  # another damaged dataset beside it: the listing is only a hint
            local = "unreadable"
        raise DatasetError(f"minari:{dataset_id}: not found under {folder.parent} (local datasets: {local}); "
                           "vgf_ray never downloads data")
    try:
        ds = minari.load_dataset(dataset_id)
        obs_space, action_space = ds.observation_space, ds.action_space
    except MINARI_READ_ERRORS as err:
        raise DatasetError(f"{source}: cannot be read as a Minari dataset ({describe(err)})") from err
    obs_dim = observation_width(obs_space, source)
    if not isinstance(action_space, gymnasium.spaces.Box) or len(action_space.shape) != 1:
        raise DatasetError(f"{source}: action space must be a 1-D Box, got {action_space}")
    try:
        check_bounded(action_space, source)
    except ConfigError as err:
        raise DatasetError(str(err)) from err
    act_dim = action_space.shape[0]
    parts: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "masks")}
    for episode_id, episode in read_episodes(ds, source):
        what = f"{source}: episode {episode_id}"
        obs = flatten_batch(obs_space, episode["observations"], f"{what} 'observations'")
        steps = episode_steps(episode, obs, act_dim, what)
        if steps == 0:
            continue  # a reset with no step holds no transition
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(to_unit_box(episode["actions"], action_space))
        parts["rewards"].append(episode["rewards"])
        parts["masks"].append(1.0 - episode["terminations"].astype(np.float32))
    if not parts["observations"]:
        raise DatasetError(f"{source}: no transitions (every episode is empty)")
    data = {k: np.concatenate(v) for k, v in parts.items()}
    data = finalize_transitions(data, source, obs_dim, act_dim)
    info = {"obs_dim": obs_dim, "act_dim": act_dim, "num_transitions": len(data["observations"]), "source": source}
    return data, info


def read_episodes(ds: Any, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(id, fields)`` per episode, Minari's read errors turned into a ``DatasetError`` naming the episode."""
    indices = iter(ds.episode_indices)
    episodes = ds.iterate_episodes()
    while True:
        episode_id = next(indices, "?")
        try:
            episode = next(episodes)
        except StopIteration:
            return
        except MINARI_READ_ERRORS as err:
            raise DatasetError(f"{source}: episode {episode_id} cannot be read ({describe(err)})") from err
        yield episode.id, {key: getattr(episode, key) for key in EPISODE_KEYS}


def describe(err: BaseException) -> str:
    """One line for a reader error; Minari's bare asserts carry no text."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else f"{type(err).__name__} in Minari's reader: damaged file?"


def observation_width(space: Any, source: str) -> int:
    """Width of the flattened observation; only Boxes (alone or inside Dict/Tuple spaces) carry real numbers."""
    boxes = list(leaf_spaces(space))
    if not boxes or not all(isinstance(box, gymnasium.spaces.Box) for _, box in boxes):
        raise DatasetError(f"{source}: observation space must be a Box or a Dict/Tuple of Boxes, got {space}")
    return int(gymnasium.spaces.flatdim(space))


def leaf_spaces(space: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, space)`` of every leaf in gymnasium's flatten order."""
    if isinstance(space, gymnasium.spaces.Dict):
        for key, sub in space.spaces.items():
            yield from leaf_spaces(sub, f"{path}/{key}")
    elif isinstance(space, gymnasium.spaces.Tuple):
        for i, sub in enumerate(space.spaces):
            yield from leaf_spaces(sub, f"{path}/{i}")
    else:
        yield path, space


def flatten_batch(space: Any, value: Any, what: str) -> np.ndarray:
    """[T, flatdim] float32 from a batch of (possibly nested) observations, checking every leaf's shape."""
    columns = []
    for path, box in leaf_spaces(space):
        leaf = value
        for part in filter(None, path.split("/")):
            try:
                leaf = leaf[part] if isinstance(leaf, dict) else leaf[int(part)]
            except (KeyError, IndexError, TypeError, ValueError) as err:
                raise DatasetError(f"{what}: missing the observation part {path!r}") from err
        name = f"{what}{path}"
        leaf = np.asarray(leaf)
        check_numeric_array(leaf, name)
        if leaf.shape[1:] != box.shape:
            raise DatasetError(f"{name} has rows of shape {leaf.shape[1:]}, the observation space says {box.shape}")
        columns.append(leaf.reshape(len(leaf), int(np.prod(box.shape))).astype(np.float32))
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise DatasetError(f"{what}: observation parts have different lengths {sorted(lengths)}")
    return np.concatenate(columns, axis=1)


def episode_steps(episode: dict[str, Any], obs: np.ndarray, act_dim: int, what: str) -> int:
    """Check one episode's arrays and boundaries in place (as arrays); returns its number of steps."""
    for key in ("actions", "rewards", "terminations", "truncations"):
        episode[key] = np.asarray(episode[key])
        check_numeric_array(episode[key], f"{what} '{key}'")
    actions = episode["actions"]
    if actions.ndim != 2 or actions.shape[1] != act_dim:
        raise DatasetError(f"{what} 'actions' has shape {actions.shape}, expected [steps, {act_dim}]")
    steps = len(actions)
    if len(obs) != steps + 1:
        raise DatasetError(f"{what} has {len(obs)} observations for {steps} actions (expected {steps + 1})")
    for key in ("rewards", "terminations", "truncations"):
        if episode[key].shape != (steps,):
            raise DatasetError(f"{what} '{key}' has shape {episode[key].shape}, expected ({steps},)")
    for key in ("terminations", "truncations"):
        flags = episode[key]
        if not np.isin(flags, (0, 1)).all():
            raise DatasetError(f"{what} '{key}' holds values other than 0/1")
        early = np.flatnonzero(flags[:-1])
        if early.size:
            raise DatasetError(f"{what} '{key}' ends the episode at step {int(early[0])} of {steps}; "
                               "only the last step may end an episode")
    return steps
