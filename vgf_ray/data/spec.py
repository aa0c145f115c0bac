"""Where offline data come from: a dataset spec (YAML/config friendly) resolved to in-memory transitions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from vgf_ray.errors import ConfigError

SOURCES = ("ogbench", "minari")


@dataclass(frozen=True)
class DatasetSpec:
    """``ogbench``: ``name`` is a dataset/singletask name; ``path`` an npz (official or generated), else one is
    generated into the cache. ``minari``: ``name`` is a local dataset id."""

    source: str = "ogbench"  # ogbench (an npz, generated here when missing) or minari (a local dataset)
    name: str = "cube-single-play"  # an OGBench dataset or singletask name, or a Minari dataset id
    path: str | None = None  # an OGBench npz to read (official or generated) instead of the cache
    num_transitions: int = 50_000  # size of a generated dataset
    episode_length: int = 1001  # steps per generated trajectory (OGBench's datasets: 1001)
    seed: int = 0  # seed of a generated dataset (the cache keeps one folder per size and seed)
    cache_dir: str | None = None  # default: $VGF_RAY_DATA_DIR, else ~/.cache/vgf_ray
    generate: bool = True  # generate a missing OGBench dataset (False: error instead)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"dataset.source={self.source!r} is not one of {SOURCES}")
        if self.num_transitions < 1:
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
    """Resolve an OGBench spec to a concrete file, generating it once (call on the driver, not per learner)."""
    if spec.source != "ogbench" or spec.path is not None:
        return spec
    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset
    from vgf_ray.data.ogbench_names import parse_ogbench_name

    if not spec.generate:
        raise FileNotFoundError(f"dataset {spec.name!r}: no 'path' given and 'generate' is off")
    parsed = parse_ogbench_name(spec.name)
    path = ensure_ogbench_dataset(parsed.dataset, spec.num_transitions, spec.cache_dir, spec.seed,
                                  spec.episode_length, progress=progress)
    return replace(spec, path=str(path))


def load_transitions(spec: DatasetSpec) -> tuple[dict[str, np.ndarray], dict]:
    """Transitions plus ``{"obs_dim", "act_dim", "num_transitions", "source", ...}``."""
    if spec.source == "minari":
        from vgf_ray.data.minari_load import load_minari_transitions

        return load_minari_transitions(spec.name)
    from vgf_ray.data.ogbench_load import load_ogbench_transitions

    if spec.path is None:
        spec = prepare_dataset(spec, progress=False)
    return load_ogbench_transitions(spec.name, spec.path)
