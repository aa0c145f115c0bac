"""The experiment's dataset in RLlib's offline format: one parquet row per transition, RLlib's column names.

RLlib's offline pipeline (``OfflinePreLearner``) reads rows with ``obs, actions, rewards, new_obs, terminateds,
truncateds, eps_id`` and turns each into a one-step episode; BC, IQL and CQL then train on exactly the transitions
(rewards relabelled for the task, actions clipped) that VGF trains on. The conversion runs once per dataset: the
parquet folder is cached beside the npz (Minari: in vgf_ray's data cache), keyed by the source file's size and
modification time and by the dataset spec, and rewritten when either changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vgf_ray.data.minari_load import minari_metadata_file
from vgf_ray.data.ogbench_generate import default_cache_dir
from vgf_ray.data.spec import DatasetSpec, load_transitions, prepare_dataset

PARQUET_FILE = "transitions.parquet"
SOURCE_JSON = "source.json"  # what the cached conversion was made from
# RLlib's offline column names (ray.rllib.core.columns.Columns; a test checks they match).
OBS, ACTIONS, REWARDS, NEXT_OBS = "obs", "actions", "rewards", "new_obs"
TERMINATEDS, TRUNCATEDS, EPS_ID = "terminateds", "truncateds", "eps_id"


def _source_file(spec: DatasetSpec) -> Path:
    if spec.source == "minari":
        return minari_metadata_file(spec.name)
    return Path(spec.path)


def _fingerprint(spec: DatasetSpec) -> dict:
    """What decides the converted rows: the spec and the source file's identity (size, mtime)."""
    source = _source_file(spec)
    stat = source.stat()
    return {"spec": spec.to_dict(), "source": str(source.resolve()), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns}


def cache_folder(spec: DatasetSpec) -> Path:
    """Beside the npz: ``<file>.rllib/<hash of the spec>``; for Minari, under vgf_ray's data cache."""
    key = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    if spec.source == "minari":
        return default_cache_dir().parent / "rllib_offline" / spec.name.replace("/", "__") / key
    return Path(f"{spec.path}.rllib") / key


def write_parquet(data: dict[str, np.ndarray], path: Path) -> None:
    """One row per transition; observations as fixed-size float32 lists. Written to a temporary name first, so
    an interrupted conversion never leaves a file the cache would trust."""
    def vectors(array: np.ndarray) -> pa.Array:
        array = np.ascontiguousarray(array, dtype=np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1)), array.shape[1])

    n = len(data["observations"])
    table = pa.table({
        OBS: vectors(data["observations"]),
        ACTIONS: vectors(data["actions"]),
        REWARDS: pa.array(np.asarray(data["rewards"], np.float32)),
        NEXT_OBS: vectors(data["next_observations"]),
        TERMINATEDS: pa.array(np.asarray(data["masks"]) == 0),
        TRUNCATEDS: pa.array(np.zeros(n, dtype=bool)),
        EPS_ID: pa.array(np.arange(n, dtype=np.int64)),  # one-step episodes: RLlib needs an id per row
    })
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial)
    os.replace(partial, path)


def ensure_rllib_offline_data(spec: DatasetSpec | dict, progress: bool = True) -> Path:
    """The folder of the dataset's parquet conversion, converting (or re-converting a stale copy) first."""
    spec = prepare_dataset(DatasetSpec.from_dict(spec), progress=progress)
    folder = cache_folder(spec)
    fingerprint = _fingerprint(spec)
    marker = folder / SOURCE_JSON
    if marker.exists() and (folder / PARQUET_FILE).exists():
        if json.loads(marker.read_text()) == fingerprint:
            return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    data, _ = load_transitions(spec)
    if progress:
        print(f"converting {len(data['observations'])} transitions of {spec.name} to RLlib's offline format "
              f"in {folder}", flush=True)
    write_parquet(data, folder / PARQUET_FILE)
    marker.write_text(json.dumps(fingerprint))
    return folder
