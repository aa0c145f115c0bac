"""Load a local Minari dataset (Box observations and actions) as transitions; never downloads.

Masks: 0 only at true terminations; a time-limit truncation keeps mask 1 so the critic still bootstraps.
"""

from __future__ import annotations

import os

import numpy as np

from vgf_ray.data.transitions import DatasetError, finalize_transitions


def load_minari_transitions(dataset_id: str) -> tuple[dict[str, np.ndarray], dict]:
    """Transitions and space dims of the Minari dataset ``dataset_id`` found under ``MINARI_DATASETS_PATH``."""
    import gymnasium
    import minari

    local = minari.list_local_datasets()
    if dataset_id not in local:
        root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        raise DatasetError(f"minari:{dataset_id}: not found under {root} (local datasets: {sorted(local)}); "
                           "vgf_ray never downloads data")
    ds = minari.load_dataset(dataset_id)
    source = f"minari:{dataset_id}"
    for label, space in (("observation", ds.observation_space), ("action", ds.action_space)):
        if not isinstance(space, gymnasium.spaces.Box) or len(space.shape) != 1:
            raise DatasetError(f"{source}: {label} space must be a 1-D Box, got {space}")
    low, high = ds.action_space.low, ds.action_space.high
    if not (np.allclose(low, -1.0) and np.allclose(high, 1.0)):
        raise DatasetError(f"{source}: action space must be the [-1, 1] box, got low={low}, high={high}")
    parts: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "masks")}
    for episode in ds.iterate_episodes():
        obs = np.asarray(episode.observations, np.float32)
        steps = len(episode.actions)
        if len(obs) != steps + 1:
            raise DatasetError(f"{source}: episode {episode.id} has {len(obs)} observations for {steps} actions")
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(np.asarray(episode.actions, np.float32))
        parts["rewards"].append(np.asarray(episode.rewards, np.float32))
        parts["masks"].append(1.0 - np.asarray(episode.terminations, np.float32))
    data = {k: np.concatenate(v) for k, v in parts.items()}
    obs_dim, act_dim = ds.observation_space.shape[0], ds.action_space.shape[0]
    data = finalize_transitions(data, source, obs_dim, act_dim)
    info = {"obs_dim": obs_dim, "act_dim": act_dim, "num_transitions": len(data["observations"]), "source": source}
    return data, info
