"""The shipped behavior policies of one locomotion environment, and the normalized score they define.

``vgf_ray/behavior_policies/<env>/refs.json`` names the expert and medium actors, the snapshots that replay the
training run, and the random and expert returns measured here. The normalized score is D4RL's arithmetic,
``100 * (R - R_random) / (R_expert - R_random)``, relative to this project's expert, not to D4RL's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgf_ray.data.mujoco_names import MUJOCO_ENVS
from vgf_ray.data.mujoco_policy import SquashedGaussianActor
from vgf_ray.errors import ConfigError

POLICY_ROOT = Path(__file__).resolve().parent.parent / "behavior_policies"
REFS_FILE = "refs.json"


@dataclass(frozen=True)
class BehaviorRefs:
    env: str
    folder: Path
    random_return: float
    expert_return: float
    medium_step: int
    learning_starts: int
    snapshots: tuple[tuple[int, str], ...]  # (training step, file) from the first update up to the medium policy
    files: dict[str, str]  # level -> actor file

    def actor(self, level: str) -> SquashedGaussianActor:
        return SquashedGaussianActor.load(self.folder / self.files[level])

    def replay_segments(self) -> list[tuple[SquashedGaussianActor | None, int]]:
        """(actor, steps) in training order: uniform-random steps first, then each snapshot until the next one."""
        segments: list[tuple[SquashedGaussianActor | None, int]] = [(None, self.learning_starts)]
        steps = [step for step, _ in self.snapshots] + [self.medium_step]
        for (step, file), following in zip(self.snapshots, steps[1:]):
            segments.append((SquashedGaussianActor.load(self.folder / file), following - step))
        return segments

    def normalized_score(self, returns: Any) -> Any:
        return normalized_score(returns, self.random_return, self.expert_return)


def normalized_score(returns: Any, random_return: float, expert_return: float) -> Any:
    """D4RL's normalized score: 0 is the random policy's return, 100 the expert's."""
    return 100.0 * (returns - random_return) / (expert_return - random_return)


def load_behavior_refs(env: str, root: Path = POLICY_ROOT) -> BehaviorRefs:
    """The shipped policies and reference returns of ``env``; a clear error where none are shipped."""
    if env not in MUJOCO_ENVS:
        raise ConfigError(f"unknown MuJoCo environment '{env}'; valid: {sorted(MUJOCO_ENVS)}")
    path = root / env / REFS_FILE
    if not path.is_file():
        raise ConfigError(f"no behavior policies for '{env}' in this installation ({path} is missing); they are "
                          f"trained by python -m vgf_ray.behavior_policies.train --env {env}, then --publish")
    refs = json.loads(path.read_text())
    return BehaviorRefs(env=env, folder=path.parent, random_return=float(refs["random"]["return_mean"]),
                        expert_return=float(refs["expert"]["return_mean"]), medium_step=int(refs["medium"]["step"]),
                        learning_starts=int(refs["learning_starts"]),
                        snapshots=tuple((int(s), f) for s, f in refs["replay_snapshots"]),
                        files={level: refs[level]["file"] for level in ("expert", "medium")})


def shipped_envs(root: Path = POLICY_ROOT) -> list[str]:
    return [env for env in MUJOCO_ENVS if (root / env / REFS_FILE).is_file()]
