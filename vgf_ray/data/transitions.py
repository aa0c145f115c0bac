"""The in-memory transition format every loader returns, and the checks that guard it."""

from __future__ import annotations

import numpy as np

from vgf_ray.errors import InputError

TRANSITION_KEYS = ("observations", "actions", "rewards", "next_observations", "masks")
ACTION_CLIP = 1.0 - 1e-5  # the authors clip dataset actions to [-1+1e-5, 1-1e-5] (spec 2.9)


class DatasetError(InputError):
    """Offline data that cannot be trained on; the message names the source and the problem."""


def check_numeric_array(array: np.ndarray, what: str) -> None:
    """Real numbers (or booleans) with one row per step; strings, objects, complex numbers and scalars are not."""
    if not isinstance(array, np.ndarray):
        raise DatasetError(f"{what} is a {type(array).__name__}, expected an array")
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating):
        if array.ndim == 0:
            raise DatasetError(f"{what} is a single value, expected one row per step")
        return
    raise DatasetError(f"{what} has dtype {array.dtype}, expected real numbers")


def _check_rows(data: dict[str, np.ndarray], source: str) -> None:
    """Every transition key there, numeric, finite, and as long as the observations (at least one row)."""
    missing = [k for k in TRANSITION_KEYS if k not in data]
    if missing:
        raise DatasetError(f"{source}: missing key(s) {missing}")
    for key in TRANSITION_KEYS:
        check_numeric_array(data[key], f"{source}: '{key}'")
    n = len(data["observations"])
    if n == 0:
        raise DatasetError(f"{source}: no transitions")
    for key in TRANSITION_KEYS:
        if len(data[key]) != n:
            raise DatasetError(f"{source}: '{key}' has {len(data[key])} rows but 'observations' has {n}")
        if not np.all(np.isfinite(data[key])):
            bad = int(np.sum(~np.isfinite(data[key])))
            raise DatasetError(f"{source}: '{key}' contains {bad} NaN/inf value(s)")


def validate_transitions(
    data: dict[str, np.ndarray],
    source: str,
    obs_dim: int | None = None,
    act_dim: int | None = None,
) -> None:
    """Raise ``DatasetError`` for missing keys, ragged lengths, wrong ranks, non-finite values or dim mismatch."""
    _check_rows(data, source)
    for key in ("observations", "next_observations", "actions"):
        if data[key].ndim != 2:
            raise DatasetError(f"{source}: '{key}' must be 2-D [N, dim], got shape {data[key].shape}")
    for key in ("rewards", "masks"):
        if data[key].ndim != 1:
            raise DatasetError(f"{source}: '{key}' must be 1-D [N], got shape {data[key].shape}")
    if data["next_observations"].shape[1] != data["observations"].shape[1]:
        raise DatasetError(f"{source}: next_observations width {data['next_observations'].shape[1]} != "
                           f"observations width {data['observations'].shape[1]}")
    if obs_dim is not None and data["observations"].shape[1] != obs_dim:
        raise DatasetError(f"{source}: observation dim {data['observations'].shape[1]} does not match the "
                           f"environment's {obs_dim}")
    if act_dim is not None and data["actions"].shape[1] != act_dim:
        raise DatasetError(
            f"{source}: action dim {data['actions'].shape[1]} does not match the environment's {act_dim}"
        )


def check_action_box(actions: np.ndarray, source: str, tol: float = 1e-4) -> None:
    """Actions must lie in the [-1, 1] box the behavior model and transport are clipped to."""
    worst = float(np.max(np.abs(actions))) if actions.size else 0.0
    if worst > 1.0 + tol:
        n_out = int(np.sum(np.any(np.abs(actions) > 1.0 + tol, axis=-1)))
        raise DatasetError(f"{source}: {n_out} action(s) outside the [-1, 1] box (max |a| = {worst:.4g}); "
                           "rescale the actions to [-1, 1] first")


def finalize_transitions(data: dict[str, np.ndarray], source: str, obs_dim=None, act_dim=None) -> dict:
    """Cast to float32, check everything, clip actions like the authors' code; returns a new dict."""
    for key in TRANSITION_KEYS:
        if key in data:
            check_numeric_array(np.asarray(data[key]), f"{source}: '{key}'")
    out = {k: np.asarray(data[k], dtype=np.float32) for k in TRANSITION_KEYS if k in data}
    validate_transitions(out, source, obs_dim, act_dim)
    check_action_box(out["actions"], source)
    out["actions"] = np.clip(out["actions"], -ACTION_CLIP, ACTION_CLIP)
    return out
