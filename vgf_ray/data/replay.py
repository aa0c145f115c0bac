"""Offline dataset plus online transitions in one store, sampled in the reference code's three styles.

- ``iql``: one uniform buffer over dataset and online data (the authors' default ``off2on_style``).
- ``rlpd``: half of every batch from the dataset, half from online data.
- ``wsrl``: online data only.
``online_fraction`` overrides the style's share of online samples. Online data live in a FIFO ring of
``capacity`` transitions; only online data are ever evicted, the dataset is kept whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vgf_ray.data.transitions import TRANSITION_KEYS
from vgf_ray.errors import ConfigError

REPLAY_STYLES = ("iql", "rlpd", "wsrl")


class OnlineRing:
    """Preallocated FIFO ring of online transitions (tensors on the learner's device)."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device: torch.device):
        if capacity < 1:
            raise ConfigError(f"online buffer capacity must be >= 1, got {capacity}")
        self.capacity, self.device = capacity, device
        widths = {"observations": obs_dim, "next_observations": obs_dim, "actions": act_dim}
        self.tensors = {k: torch.zeros((capacity, widths[k]) if k in widths else (capacity,), device=device)
                        for k in TRANSITION_KEYS}
        self.size = 0
        self.next_index = 0
        self.total_added = 0

    def add(self, data: dict[str, np.ndarray]) -> None:
        n = len(data["observations"])
        if n > self.capacity:  # only the newest `capacity` survive anyway
            data = {k: v[-self.capacity:] for k, v in data.items()}
            self.total_added += n - self.capacity
            n = self.capacity
        idx = (self.next_index + torch.arange(n, device=self.device)) % self.capacity
        for key in TRANSITION_KEYS:
            # torch.tensor copies: arrays from the object store are read-only
            self.tensors[key][idx] = torch.tensor(np.asarray(data[key], np.float32), device=self.device)
        self.next_index = int((self.next_index + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        self.total_added += n

    def sample_indices(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randint(self.size, (n,), generator=generator, device=self.device)

    def state_dict(self) -> dict[str, Any]:
        """Contents in insertion order (oldest first), plus counters."""
        order = (torch.arange(self.size, device=self.device) + (self.next_index - self.size)) % self.capacity
        return {"data": {k: v[order].cpu().numpy() for k, v in self.tensors.items()},
                "total_added": self.total_added}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = self.next_index = 0
        if len(state["data"]["observations"]):
            self.add(state["data"])
        self.total_added = int(state["total_added"])


class OfflineOnlineReplay:
    """The learner's store: a fixed offline dataset and an online FIFO ring, sampled by ``style``."""

    def __init__(self, offline: dict[str, np.ndarray], device: torch.device | str = "cpu", capacity: int = 1_000_000,
                 style: str = "iql", online_fraction: float | None = None):
        if style not in REPLAY_STYLES:
            raise ConfigError(f"replay_style={style!r} is not one of {REPLAY_STYLES}")
        if online_fraction is not None and not 0.0 <= online_fraction <= 1.0:
            raise ConfigError(f"online_fraction must be in [0, 1], got {online_fraction}")
        self.device = torch.device(device)
        self.offline = {k: torch.as_tensor(np.asarray(offline[k], np.float32), device=self.device)
                        for k in TRANSITION_KEYS}
        self.offline_size = len(self.offline["observations"])
        self.online = OnlineRing(self.offline["observations"].shape[1], self.offline["actions"].shape[1], capacity,
                                 self.device)
        self.style, self.online_fraction = style, online_fraction

    def __len__(self) -> int:
        return self.offline_size + self.online.size

    def add_online(self, data: dict[str, np.ndarray]) -> None:
        self.online.add(data)

    def online_share(self) -> float:
        """Expected fraction of a batch drawn from online data."""
        if self.online.size == 0:
            return 0.0
        if self.online_fraction is not None:
            return self.online_fraction
        if self.style == "iql":
            return self.online.size / (self.offline_size + self.online.size)
        return 0.5 if self.style == "rlpd" else 1.0

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        share = self.online_share()
        if self.style == "iql" and self.online_fraction is None:
            # One uniform draw over the union, exactly like a single buffer holding both.
            idx = torch.randint(len(self), (batch_size,), generator=generator, device=self.device)
            from_online = idx >= self.offline_size
            n_online = int(from_online.sum())
        else:
            n_online = int(round(batch_size * share))
        off_idx = torch.randint(self.offline_size, (batch_size - n_online,), generator=generator, device=self.device)
        on_idx = self.online.sample_indices(n_online, generator) if n_online else None
        batch = {}
        for key in TRANSITION_KEYS:
            parts = [self.offline[key][off_idx]]
            if on_idx is not None:
                parts.append(self.online.tensors[key][on_idx])
            batch[key] = torch.cat(parts)
        return batch


def episodes_to_transitions(episodes) -> dict[str, np.ndarray]:
    """RLlib single-agent episodes (or chunks) -> transitions; mask 0 only on a true termination."""
    parts: dict[str, list] = {k: [] for k in TRANSITION_KEYS}
    for episode in episodes:
        n = len(episode)
        if n == 0:
            continue
        obs = np.asarray(episode.get_observations(), np.float32)
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(np.asarray(episode.get_actions(), np.float32).reshape(n, -1))
        parts["rewards"].append(np.asarray(episode.get_rewards(), np.float32))
        masks = np.ones(n, np.float32)
        if episode.is_terminated:  # a time-limit truncation keeps bootstrapping
            masks[-1] = 0.0
        parts["masks"].append(masks)
    if not parts["observations"]:
        return {k: np.zeros((0,), np.float32) for k in TRANSITION_KEYS}
    return {k: np.concatenate(v) for k, v in parts.items()}
