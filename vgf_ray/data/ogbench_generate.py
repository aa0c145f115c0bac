"""Regenerate OGBench datasets locally with the scripted oracles shipped in the ``ogbench`` package.

The official datasets cannot be downloaded here. The manipulation 'play' sets were made by the plan oracles
in ``ogbench.manipspace.oracles.plan`` (noise 0.1, smoothing 0.5) in ``mode='data_collection'``, switching
to a new random target whenever the oracle finishes; the maze 'navigate' sets by a BFS-subgoal expert with
Gaussian action noise. Output is OGBench's own npz layout, so ``ogbench.load_dataset`` reads it unchanged.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import gymnasium
import numpy as np
import ogbench  # noqa: F401 (registers the envs)
from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle
from tqdm import trange

from vgf_ray.data.ogbench_names import GENERATABLE, parse_ogbench_name
from vgf_ray.errors import ConfigError

PLAN_NOISE, PLAN_NOISE_SMOOTHING = 0.1, 0.5
MAZE_ACTION_NOISE = 0.2
OFFICIAL_EPISODE_LENGTH = 1001


def default_cache_dir() -> Path:
    return Path(os.environ.get("VGF_RAY_DATA_DIR", Path.home() / ".cache" / "vgf_ray" / "ogbench"))


def _stack_probability(env_name: str, rng: np.random.Generator) -> float:
    ranges = {"cube-single": (0.0, 0.0), "cube-double": (0.0, 0.25), "cube-triple": (0.05, 0.35),
              "cube-quadruple": (0.1, 0.5), "cube-octuple": (0.0, 0.35)}
    low, high = ranges.get(env_name, (0.5, 0.5))
    return float(rng.uniform(low, high))


def _make_oracles(env, puzzle: bool) -> dict:
    kwargs = dict(env=env, noise=PLAN_NOISE, noise_smoothing=PLAN_NOISE_SMOOTHING)
    return {
        "cube": CubePlanOracle(**kwargs),
        "button": ButtonPlanOracle(gripper_always_closed=puzzle, **kwargs),
        "drawer": DrawerPlanOracle(**kwargs),
        "window": WindowPlanOracle(**kwargs),
    }


def _manipulation_episode(env, oracles, env_name: str, length: int, seed: int, rng) -> dict[str, list]:
    ob, info = env.reset(seed=seed)
    p_stack = _stack_probability(env_name, rng)
    agent = oracles[info["privileged/target_task"]]
    agent.reset(ob, info)
    rows: dict[str, list] = {"observations": [], "actions": [], "qpos": [], "qvel": [], "button_states": []}
    for _ in range(length):
        rows["observations"].append(ob)
        rows["qpos"].append(info["qpos"])
        rows["qvel"].append(info["qvel"])
        if "button_states" in info:
            rows["button_states"].append(info["button_states"])
        action = np.clip(np.asarray(agent.select_action(ob, info)), -1.0, 1.0)
        rows["actions"].append(action)
        ob, _, _, _, info = env.step(action)
        if agent.done:
            agent_ob, agent_info = env.unwrapped.set_new_target(p_stack=p_stack)
            agent = oracles[agent_info["privileged/target_task"]]
            agent.reset(agent_ob, agent_info)
    return rows


def _maze_episode(env, length: int, seed: int, rng) -> dict[str, list]:
    ob, _ = env.reset(seed=seed)
    maze = env.unwrapped
    free_cells = np.argwhere(maze.maze_map == 0)

    def new_goal() -> np.ndarray:
        return np.asarray(maze.ij_to_xy(tuple(free_cells[rng.integers(len(free_cells))])))

    goal = new_goal()
    rows: dict[str, list] = {"observations": [], "actions": [], "qpos": [], "qvel": []}
    for _ in range(length):
        xy = maze.get_xy()
        if np.linalg.norm(xy - goal) <= maze._goal_tol:
            goal = new_goal()
        subgoal, _ = maze.get_oracle_subgoal(xy, goal)
        direction = subgoal - xy
        direction = direction / (np.linalg.norm(direction) + 1e-6)
        action = np.clip(direction + rng.normal(0.0, MAZE_ACTION_NOISE, 2), -1.0, 1.0)
        rows["observations"].append(ob)
        rows["qpos"].append(maze.data.qpos.copy())
        rows["qvel"].append(maze.data.qvel.copy())
        rows["actions"].append(action)
        ob, _, _, _, _ = env.step(action)
    return rows


def _collect(dataset: str, num_episodes: int, length: int, seed: int, progress: bool, desc: str) -> dict:
    name = parse_ogbench_name(dataset)
    is_maze = "maze" in name.env
    kwargs = {"terminate_at_goal": False} if is_maze else {"terminate_at_goal": False, "mode": "data_collection"}
    env = gymnasium.make(name.collection_env_id, max_episode_steps=length + 1, **kwargs)
    rng = np.random.default_rng(seed)
    oracles = None if is_maze else _make_oracles(env, puzzle="puzzle" in name.env)
    episodes = []
    for _ in trange(num_episodes, desc=desc, disable=not progress, unit="ep"):
        ep_seed = int(rng.integers(2**31))
        if is_maze:
            episodes.append(_maze_episode(env, length, ep_seed, rng))
        else:
            episodes.append(_manipulation_episode(env, oracles, name.env, length, ep_seed, rng))
    env.close()
    out: dict[str, np.ndarray] = {}
    for key, dtype in (("observations", np.float32), ("actions", np.float32), ("qpos", np.float32),
                       ("qvel", np.float32), ("button_states", np.int64)):
        if episodes[0].get(key):
            out[key] = np.concatenate([np.asarray(ep[key], dtype=dtype) for ep in episodes])
    terminals = np.zeros((num_episodes, length), bool)
    terminals[:, -1] = True
    out["terminals"] = terminals.reshape(-1)
    return out


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: a crash mid-write never leaves a truncated file that the cache would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, **arrays)
    os.replace(tmp.name, path)


def generate_ogbench_dataset(
    dataset: str,
    num_transitions: int,
    out_dir: str | Path,
    seed: int = 0,
    episode_length: int = OFFICIAL_EPISODE_LENGTH,
    val_fraction: float = 0.1,
    progress: bool = True,
) -> Path:
    """Generate ``<dataset>-v0.npz`` and ``<dataset>-v0-val.npz`` (about ``num_transitions`` loaded transitions)."""
    name = parse_ogbench_name(dataset)
    if name.dataset not in GENERATABLE:
        raise ConfigError(f"cannot generate {name.dataset!r} here (no shipped oracle); generatable: {GENERATABLE}")
    if episode_length < 2:
        raise ConfigError(f"episode_length must be >= 2, got {episode_length}")
    if num_transitions < 1:
        raise ConfigError(f"num_transitions must be >= 1, got {num_transitions}")
    per_episode = episode_length - 1  # the loader drops each trajectory's last step
    train_eps = max(1, math.ceil(num_transitions / per_episode))
    val_eps = max(1, math.ceil(train_eps * val_fraction))
    out_dir = Path(out_dir)
    train_path = out_dir / name.file_name
    train = _collect(name.dataset, train_eps, episode_length, seed, progress, f"{name.dataset} train")
    val = _collect(name.dataset, val_eps, episode_length, seed + 10_000, progress, f"{name.dataset} val")
    _save_npz(train_path.with_name(name.file_name.replace(".npz", "-val.npz")), val)
    _save_npz(train_path, train)
    meta = {"dataset": name.dataset, "num_transitions": num_transitions, "seed": seed,
            "episode_length": episode_length, "train_episodes": train_eps, "val_episodes": val_eps}
    (out_dir / "generation.json").write_text(json.dumps(meta, indent=2))
    return train_path


def ensure_ogbench_dataset(
    dataset: str,
    num_transitions: int,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    episode_length: int = OFFICIAL_EPISODE_LENGTH,
    progress: bool = True,
) -> Path:
    """Path of a cached generated dataset, generating it on first use (one folder per size/seed/length)."""
    name = parse_ogbench_name(dataset)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f"{name.dataset}-n{num_transitions}-s{seed}-len{episode_length}"
    path = folder / name.file_name
    if path.exists() and path.with_name(name.file_name.replace(".npz", "-val.npz")).exists():
        return path
    return generate_ogbench_dataset(name.dataset, num_transitions, folder, seed, episode_length, progress=progress)
