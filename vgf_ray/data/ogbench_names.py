"""OGBench dataset and environment names: what can be generated here and which task is the default."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vgf_ray.errors import ConfigError

# FQL's default task per environment family (spec 2.9).
DEFAULT_TASKS = {
    "cube-single": 2, "cube-double": 2, "scene": 2,
    "puzzle-3x3": 4, "puzzle-4x4": 4,
    "antmaze-large": 1, "antmaze-giant": 1, "humanoidmaze-medium": 1, "humanoidmaze-large": 1,
    "antsoccer-arena": 4, "pointmaze-medium": 1, "pointmaze-large": 1, "pointmaze-giant": 1,
}
# Datasets the scripted oracles shipped in the `ogbench` package can regenerate (no ant/humanoid experts).
GENERATABLE = (
    "cube-single-play", "cube-double-play", "scene-play", "puzzle-3x3-play", "puzzle-4x4-play",
    "pointmaze-medium-navigate", "pointmaze-large-navigate", "pointmaze-giant-navigate",
)
_NAME = re.compile(r"^(?P<env>[a-z0-9x]+-[a-z0-9x]+|scene)-(?P<type>play|navigate|noisy|stitch|explore)"
                   r"(?:-singletask(?:-task(?P<task>\d+))?)?(?:-v0)?$")


@dataclass(frozen=True)
class OGBenchName:
    """A parsed OGBench name such as ``cube-single-play-singletask-task2-v0``."""

    env: str  # "cube-single"
    dataset_type: str  # "play"
    task: int  # resolved task id (default task when the name has none)

    @property
    def dataset(self) -> str:
        """Dataset base name, e.g. ``cube-single-play``."""
        return f"{self.env}-{self.dataset_type}"

    @property
    def file_name(self) -> str:
        return f"{self.dataset}-v0.npz"

    @property
    def collection_env_id(self) -> str:
        """The goal-conditioned env the data were collected in, e.g. ``cube-single-v0``."""
        return f"{self.env}-v0"

    @property
    def singletask_dataset_name(self) -> str:
        """Name ``ogbench.make_env_and_datasets`` takes for reward/mask relabelling."""
        return f"{self.dataset}-singletask-task{self.task}-v0"

    @property
    def singletask_env_id(self) -> str:
        return f"{self.env}-singletask-task{self.task}-v0"


def parse_ogbench_name(name: str) -> OGBenchName:
    """Parse a dataset or singletask name; the default task is FQL's when no ``-taskN`` is given."""
    match = _NAME.match(name)
    if match is None:
        raise ConfigError(
            f"not an OGBench dataset name: {name!r}; expected e.g. 'cube-single-play' or "
            "'cube-single-play-singletask-task2-v0'"
        )
    env = match["env"]
    if match["task"] is not None:
        task = int(match["task"])
    elif env in DEFAULT_TASKS:
        task = DEFAULT_TASKS[env]
    else:
        raise ConfigError(f"no default task known for OGBench env {env!r}; name the task (-singletask-taskN-v0)")
    if not 1 <= task <= 5:
        raise ConfigError(f"OGBench singletask ids are 1..5, got task {task} in {name!r}")
    return OGBenchName(env, match["type"], task)
