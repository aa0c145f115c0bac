"""D4RL locomotion's reward scaling (the authors' ``normalize_r``, as IQL does it).

Rewards are multiplied by ``1000 / (max episode return - min episode return)`` of the dataset, episodes being cut
at terminals, where the next row does not continue the previous one, and every 1000 steps. The same factor
scales the rewards collected online, so offline and online targets share one scale; evaluation returns and
normalized scores stay in the env's own units.
"""

from __future__ import annotations

import numpy as np

from vgf_ray.data.transitions import DatasetError

SEGMENT_STEPS = 1000
RETURN_RANGE_TARGET = 1000.0


def episode_returns(data: dict[str, np.ndarray]) -> np.ndarray:
    """Return of every episode in the flat transitions."""
    rewards = np.asarray(data["rewards"], np.float64)
    n = len(rewards)
    ends = np.asarray(data["masks"]) == 0
    if n > 1:
        jumps = np.any(np.abs(data["observations"][1:] - data["next_observations"][:-1]) > 1e-6, axis=1)
        ends[:-1] |= jumps
    returns, total, length = [], 0.0, 0
    for i in range(n):
        total, length = total + rewards[i], length + 1
        if ends[i] or length == SEGMENT_STEPS or i == n - 1:
            returns.append(total)
            total, length = 0.0, 0
    return np.asarray(returns)


def return_range_scale(data: dict[str, np.ndarray], source: str) -> float:
    """``1000 / (max return - min return)``; a clear error when every episode returns the same."""
    returns = episode_returns(data)
    spread = float(returns.max() - returns.min()) if len(returns) else 0.0
    if not spread > 0:
        raise DatasetError(f"{source}: dataset.normalize_rewards needs episodes of different returns "
                           f"(every one of the {len(returns)} episodes returns {returns[:1]})")
    return RETURN_RANGE_TARGET / spread
