"""A behavior-policy training run's folder and the returns measured on it: shared by training and publishing.

Returns are measured from seeded episodes, so the curve written while training and the references written when
publishing are reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium
import numpy as np

from vgf_ray.data.mujoco_policy import SquashedGaussianActor

LEARNING_STARTS = 10_000  # uniform-random env steps before SAC's first update
RUN_FILE = "run.json"  # the run's settings, checked on resume and read when publishing
CURVE_FILE = "curve.jsonl"  # one measured return per snapshot, appended while training


def read_curve(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / CURVE_FILE).read_text().splitlines() if line.strip()]


def evaluate(actor: SquashedGaussianActor, env_id: str, episodes: int, seed: int) -> dict[str, float]:
    """Mean and std of the return of ``episodes`` stochastic episodes, seeded."""

    env = gymnasium.make(env_id)
    rng = np.random.default_rng(seed)
    returns, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(actor.act(obs, rng)[0])
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
    env.close()
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
            "length_mean": float(np.mean(lengths))}


def random_return(env_id: str, episodes: int, seed: int) -> dict[str, float]:

    env = gymnasium.make(env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)), "episodes": episodes}
