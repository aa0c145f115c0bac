"""Write the MuJoCo locomotion datasets as real Minari datasets, from the project's own behavior policies.

The levels follow D4RL's definitions, with policies trained here (``vgf_ray/behavior_policies``):
``expert`` and ``medium`` are rollouts of the expert and the medium SAC actor, actions sampled from the actor's
Gaussian as SAC behaves; ``medium-replay`` replays the training run up to the medium policy: its first 10k steps
uniform-random, then each actor snapshot acting for the steps it acted in training; ``medium-expert`` is the
medium and expert data concatenated. Written with ``minari.create_dataset_from_buffers`` under
``MINARI_DATASETS_PATH``, with the measured random and expert returns as Minari's reference scores; never downloads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gymnasium
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer
from minari.storage.datasets_root_dir import get_dataset_path
from tqdm import tqdm

from vgf_ray.data.mujoco_names import MujocoName, parse_mujoco_name
from vgf_ray.data.mujoco_policy import SquashedGaussianActor
from vgf_ray.data.mujoco_refs import BehaviorRefs, load_behavior_refs
from vgf_ray.errors import ConfigError

DEFAULT_SIZE = 1_000_000  # D4RL's and Minari's size for expert and medium (medium-expert: twice; replay: its run)
AUTHOR = "vgf_ray"


@dataclass(frozen=True)
class Segment:
    """``steps`` env steps acted by ``actor`` (None: uniform-random actions)."""

    actor: SquashedGaussianActor | None
    steps: int


def plan_segments(name: MujocoName, refs: BehaviorRefs, size: int | None) -> list[Segment]:
    """What acts for how many steps, in order; ``size`` scales every segment alike (None: the default size)."""
    if name.level in ("expert", "medium"):
        return [Segment(refs.actor(name.level), size or DEFAULT_SIZE)]
    if name.level == "medium-expert":
        half = (size or 2 * DEFAULT_SIZE) // 2
        return [Segment(refs.actor("medium"), half), Segment(refs.actor("expert"), (size or 2 * DEFAULT_SIZE) - half)]
    replay = refs.replay_segments()
    total = sum(steps for _, steps in replay)
    scale = 1.0 if size is None else size / total
    segments = [Segment(actor, max(1, round(steps * scale))) for actor, steps in replay]
    if size is not None:  # rounding: the last segment takes the remainder so the total is exactly ``size``
        segments[-1] = Segment(segments[-1].actor, max(1, size - sum(s.steps for s in segments[:-1])))
    return segments


def rollout_episodes(env, segments: list[Segment], seed: int, progress: bool) -> Iterator[dict[str, np.ndarray]]:
    """Episodes played by the segments in turn; an episode cut by a segment's end is marked truncated."""
    rng = np.random.default_rng(seed)
    total = sum(s.steps for s in segments)
    episode = 0
    with tqdm(total=total, desc="rollouts", unit="step", disable=not progress, mininterval=2.0) as bar:
        for segment in segments:
            left = segment.steps
            while left > 0:
                rows = play_episode(env, segment.actor, left, seed + episode, rng)
                episode += 1
                left -= len(rows["actions"])
                bar.update(len(rows["actions"]))
                yield rows


def play_episode(env, actor: SquashedGaussianActor | None, max_steps: int, seed: int,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    if actor is None:
        env.action_space.seed(int(rng.integers(2**31)))
    rows: dict[str, list] = {"observations": [obs], "actions": [], "rewards": [], "terminations": [],
                             "truncations": []}
    for step in range(max_steps):
        action = env.action_space.sample() if actor is None else actor.act(obs, rng)[0]
        obs, reward, terminated, truncated, _ = env.step(action)
        truncated = truncated or (step == max_steps - 1 and not terminated)
        for key, value in zip(("observations", "actions", "rewards", "terminations", "truncations"),
                              (obs, action, reward, terminated, truncated)):
            rows[key].append(value)
        if terminated or truncated:
            break
    return {"seed": seed, **{k: np.asarray(v) for k, v in rows.items()}}


def generate_mujoco_dataset(dataset_id: str, size: int | None = None, seed: int = 0, overwrite: bool = False,
                            progress: bool = True) -> str:
    """Write the dataset ``dataset_id`` (``mujoco/<env>/<level>-v0``) and return its folder."""
    name = parse_mujoco_name(dataset_id)
    if size is not None and size < 1:
        raise ConfigError(f"--size must be >= 1, got {size}")
    refs = load_behavior_refs(name.env)
    folder = get_dataset_path(dataset_id)
    if dataset_id in minari.list_local_datasets() or folder.exists():
        if not overwrite:
            raise ConfigError(f"dataset '{dataset_id}' already exists at {folder}; pass --overwrite to replace it")
        minari.delete_dataset(dataset_id)
    env = gymnasium.make(name.env_id)
    buffers = [EpisodeBuffer(id=i, seed=int(rows.pop("seed")), **rows)
               for i, rows in enumerate(rollout_episodes(env, plan_segments(name, refs, size), seed, progress))]
    minari.create_dataset_from_buffers(
        dataset_id, buffers, env=name.env_id, algorithm_name=f"SAC ({name.level}), vgf_ray behavior policies",
        author=AUTHOR, ref_min_score=refs.random_return, ref_max_score=refs.expert_return,
        description=f"{name.level} data of {name.env_id} from vgf_ray's own SAC behavior policies (seed {seed}); "
                    "normalized scores are relative to that expert, not to D4RL's.")
    return str(folder)
