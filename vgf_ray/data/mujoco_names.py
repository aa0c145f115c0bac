"""Names of the MuJoCo locomotion datasets, as Minari names its own: ``mujoco/<env>/<level>-v0``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vgf_ray.errors import ConfigError

MUJOCO_ENVS = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5"}
MUJOCO_LEVELS = ("expert", "medium", "medium-replay", "medium-expert")
DATASET_VERSION = "v0"
_PATTERN = re.compile(r"^mujoco/(?P<env>[a-z0-9]+)/(?P<level>[a-z-]+)-(?P<version>v\d+)$")


@dataclass(frozen=True)
class MujocoName:
    env: str
    level: str

    @property
    def dataset_id(self) -> str:
        return f"mujoco/{self.env}/{self.level}-{DATASET_VERSION}"

    @property
    def env_id(self) -> str:
        return MUJOCO_ENVS[self.env]


def valid_dataset_ids() -> list[str]:
    return [MujocoName(env, level).dataset_id for env in MUJOCO_ENVS for level in MUJOCO_LEVELS]


def is_mujoco_name(name: str) -> bool:
    return name.startswith("mujoco/")


def parse_mujoco_name(name: str) -> MujocoName:
    """``mujoco/hopper/medium-v0`` -> ``MujocoName('hopper', 'medium')``; anything else names the valid ids."""
    match = _PATTERN.match(name)
    if match is None:
        raise ConfigError(f"dataset '{name}': expected mujoco/<env>/<level>-{DATASET_VERSION}, "
                          f"one of {valid_dataset_ids()}")
    env, level, version = match["env"], match["level"], match["version"]
    if env not in MUJOCO_ENVS:
        raise ConfigError(f"dataset '{name}': unknown environment '{env}'; valid: {sorted(MUJOCO_ENVS)}")
    if level not in MUJOCO_LEVELS:
        raise ConfigError(f"dataset '{name}': unknown level '{level}'; valid: {list(MUJOCO_LEVELS)}")
    if version != DATASET_VERSION:
        raise ConfigError(f"dataset '{name}': unknown version '{version}'; valid: {DATASET_VERSION}")
    return MujocoName(env, level)
