"""Where offline data come from: a dataset spec (YAML/config friendly) resolved to in-memory transitions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from vgf_ray.data.dataset_env import minari_metadata
from vgf_ray.data.minari_load import load_minari_transitions
from vgf_ray.data.mujoco_generate import generate_mujoco_dataset
from vgf_ray.data.mujoco_names import is_mujoco_name
from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset
from vgf_ray.data.ogbench_load import load_ogbench_transitions
from vgf_ray.data.ogbench_names import parse_ogbench_name
from vgf_ray.data.rewards import return_range_scale
from vgf_ray.errors import ConfigError

SOURCES = ("ogbench", "minari")
OGBENCH_DEFAULT_SIZE = 50_000


@dataclass(frozen=True)
class DatasetSpec:
    """``ogbench``: ``name`` is a dataset/singletask name; ``path`` an npz (official or generated), else one is
    generated into the cache. ``minari``: ``name`` is a local dataset id; a MuJoCo locomotion id
    (``mujoco/<env>/<level>-v0``) that is not there yet is generated with the shipped behavior policies."""

    source: str = "ogbench"  # ogbench (an npz, generated here when missing) or minari (a local dataset)
    name: str = "cube-single-play"  # an OGBench dataset or singletask name, or a Minari dataset id
    path: str | None = None  # an OGBench npz to read (official or generated) instead of the cache
    num_transitions: int | None = None  # size of a generated dataset (None: OGBench 50000; MuJoCo as Minari's)
    episode_length: int = 1001  # steps per generated trajectory (OGBench's datasets: 1001)
    seed: int = 0  # seed of a generated dataset (the cache keeps one folder per size and seed)
    cache_dir: str | None = None  # default: $VGF_RAY_DATA_DIR, else ~/.cache/vgf_ray
    generate: bool = True  # generate a missing OGBench or MuJoCo dataset (False: error instead)
    # D4RL locomotion's normalize_r: rewards x 1000 / (max - min episode return), the same factor online
    normalize_rewards: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"dataset.source={self.source!r} is not one of {SOURCES}")
        if self.num_transitions is not None and self.num_transitions < 1:
            raise ConfigError(f"dataset.num_transitions must be >= 1, got {self.num_transitions}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | DatasetSpec) -> DatasetSpec:
        if isinstance(values, DatasetSpec):
            return values
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown dataset key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prepare_dataset(spec: DatasetSpec, progress: bool = True) -> DatasetSpec:
    """Resolve an OGBench spec to a concrete file, generating it once, and generate a missing MuJoCo Minari
    dataset (call on the driver, not per learner)."""
    if spec.source == "minari":
        ensure_mujoco_dataset(spec, progress)
        return spec
    if spec.path is not None:
        return spec

    if not spec.generate:
        raise FileNotFoundError(f"dataset {spec.name!r}: no 'path' given and 'generate' is off")
    parsed = parse_ogbench_name(spec.name)
    path = ensure_ogbench_dataset(parsed.dataset, spec.num_transitions or OGBENCH_DEFAULT_SIZE, spec.cache_dir,
                                  spec.seed, spec.episode_length, progress=progress)
    return replace(spec, path=str(path))


def ensure_mujoco_dataset(spec: DatasetSpec, progress: bool) -> None:
    """Generate a MuJoCo locomotion dataset once where its id is not local yet (other Minari ids: as they are)."""
    if not is_mujoco_name(spec.name) or minari_metadata(spec.name) is not None:
        return
    if not spec.generate:
        raise FileNotFoundError(f"dataset {spec.name!r}: not generated yet and 'generate' is off "
                                f"(vgf-ray make-dataset {spec.name})")

    generate_mujoco_dataset(spec.name, spec.num_transitions, spec.seed, progress=progress)


def load_transitions(spec: DatasetSpec) -> tuple[dict[str, np.ndarray], dict]:
    """Transitions plus ``{"obs_dim", "act_dim", "num_transitions", "source", "reward_scale", ...}``; rewards
    already multiplied by ``reward_scale`` (1 unless ``normalize_rewards``)."""
    if spec.source == "minari":
        data, info = load_minari_transitions(spec.name)
    else:
        if spec.path is None:
            spec = prepare_dataset(spec, progress=False)
        data, info = load_ogbench_transitions(spec.name, spec.path)
    info["reward_scale"] = 1.0
    if spec.normalize_rewards:
        info["reward_scale"] = return_range_scale(data, info["source"])
        data["rewards"] = (data["rewards"] * info["reward_scale"]).astype(np.float32)
    return data, info
