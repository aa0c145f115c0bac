"""Bounded Box actions in [-1, 1] inside: the behavior model and the transport are clipped to that box.

A dataset's actions and the live env's actions go through the same affine map, ``a' = 2 (a - low) / (high - low)
- 1``, so data and env agree; ``RescaleAction`` maps the agent's actions back on the way out.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from vgf_ray.errors import ConfigError


def is_unit_box(space: Any) -> bool:
    return bool(np.allclose(space.low, -1.0) and np.allclose(space.high, 1.0))


def check_bounded(space: Any, what: str) -> None:
    """A clear error for action boxes no affine map can bring to [-1, 1]."""
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()) or not (high > low).all():
        raise ConfigError(f"{what}: action space must be a bounded Box (finite low < high in every coordinate), "
                          f"got low={space.low}, high={space.high}")


def to_unit_box(actions: np.ndarray, space: Any) -> np.ndarray:
    """Actions of ``space``'s box mapped to [-1, 1] (unchanged where the box already is [-1, 1])."""
    if is_unit_box(space):
        return actions
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    return (2.0 * (np.asarray(actions, np.float64) - low) / (high - low) - 1.0).astype(np.float32)


def unit_box_env(env: Any, what: str) -> Any:
    """``env`` acting in [-1, 1]: wrapped in ``RescaleAction`` where its box is another bounded one."""
    space = env.action_space
    if not isinstance(space, gymnasium.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"{what}: action space must be a 1-D Box, got {space}")
    if is_unit_box(space):
        return env
    check_bounded(space, what)
    return gymnasium.wrappers.RescaleAction(env, -1.0, 1.0)
