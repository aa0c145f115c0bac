"""Load OGBench npz files (official or generated here) as singletask transitions.

Loading and reward/mask relabelling are OGBench's own (``ogbench.make_env_and_datasets`` with a local
``dataset_path``), so official files give the same transitions as in the authors' code. Before that, the
raw file is checked so that corrupt data fail with a message naming the file and the problem.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import ogbench
from ogbench.utils import load_dataset, relabel_dataset

from vgf_ray.data.ogbench_names import parse_ogbench_name
from vgf_ray.data.transitions import DatasetError, check_action_box, check_numeric_array, finalize_transitions
from vgf_ray.errors import ConfigError

RAW_KEYS = ("observations", "actions", "terminals")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DatasetError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):  # numpy would try it as a pickle, and its error suggests allowing that
        raise DatasetError(f"{path}: not a readable npz file (not a zip archive of numpy arrays)")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        if "pickle" in str(err):  # numpy's advice would be to unpickle untrusted data: never repeat it
            raise DatasetError(f"{path}: holds Python object arrays (pickled data); vgf_ray reads numeric arrays "
                               "only, since unpickling a file can run code") from err
        raise DatasetError(f"{path}: not a readable npz file ({type(err).__name__}: {err})") from err


def validate_raw_ogbench_file(path: Path, need_info: tuple[str, ...], obs_dim: int, act_dim: int) -> None:
    """Check keys, lengths, ranks, finiteness, action box, env dims and trajectory ends of a raw OGBench npz."""
    raw = _read_npz(path)
    _check_raw_keys(raw, path, need_info)
    n = len(raw["observations"])
    for key in ("observations", "actions"):
        if raw[key].ndim != 2:
            raise DatasetError(f"{path}: '{key}' must be 2-D [N, dim], got shape {raw[key].shape}")
        if not np.all(np.isfinite(raw[key])):
            raise DatasetError(f"{path}: '{key}' contains {int(np.sum(~np.isfinite(raw[key])))} NaN/inf value(s)")
    if raw["observations"].shape[1] != obs_dim:
        raise DatasetError(f"{path}: observation dim {raw['observations'].shape[1]} does not match the "
                           f"environment's {obs_dim}")
    if raw["actions"].shape[1] != act_dim:
        raise DatasetError(f"{path}: action dim {raw['actions'].shape[1]} does not match the environment's {act_dim}")
    check_action_box(raw["actions"], str(path))
    terminals = raw["terminals"].astype(bool)
    if n < 2 or not terminals[-1]:
        raise DatasetError(f"{path}: 'terminals' must mark the last step of every trajectory (the final row is 0)")


def _check_raw_keys(raw: dict[str, np.ndarray], path: Path, need_info: tuple[str, ...]) -> None:
    """Every key OGBench's loader reads is there, numeric, and as long as the observations."""
    missing = [k for k in (*RAW_KEYS, *need_info) if k not in raw]
    if missing:
        raise DatasetError(f"{path}: missing key(s) {missing} (OGBench npz needs {list(RAW_KEYS)} + {list(need_info)})")
    for key in (*RAW_KEYS, *need_info):
        check_numeric_array(raw[key], f"{path}: '{key}'")
    n = len(raw["observations"])
    for key in (*RAW_KEYS, *need_info):
        if len(raw[key]) != n:
            raise DatasetError(f"{path}: '{key}' has {len(raw[key])} rows but 'observations' has {n}")


def read_singletask_split(parsed, path: Path, env) -> dict[str, np.ndarray]:
    """One npz file as OGBench's ``make_env_and_datasets`` reads it (its own loader and singletask reward
    relabelling), without needing the other split beside it."""
    data = load_dataset(str(path), ob_dtype=np.float32, action_dtype=np.float32, compact_dataset=False,
                        add_info=True)
    relabel_dataset(parsed.singletask_env_id, env, data)
    for key in ("qpos", "qvel", "button_states"):
        data.pop(key, None)
    return data


def load_ogbench_transitions(
    name: str,
    dataset_path: str | Path,
    split: str = "train",
) -> tuple[dict[str, np.ndarray], dict]:
    """Transitions of a singletask OGBench problem from a local npz and the env spaces' dims.

    ``name`` is a dataset or singletask name (``cube-single-play`` uses FQL's default task).
    ``split`` is ``train`` or ``val`` (``...-val.npz`` beside the file; optional for ``train``).
    """
    if split not in ("train", "val"):
        raise ConfigError(f"split must be 'train' or 'val', got {split!r}")
    parsed = parse_ogbench_name(name)
    path = Path(dataset_path)
    val_path = path.with_name(path.name.replace(".npz", "-val.npz"))
    if split == "val" and not val_path.exists():
        raise DatasetError(f"{val_path}: file not found (the 'val' split of {path})")
    need_info = ("qpos",) + (("button_states",) if parsed.env.startswith(("puzzle", "scene")) else ())
    env = ogbench.make_env_and_datasets(parsed.singletask_dataset_name, env_only=True)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    chosen_path = path if split == "train" else val_path
    validate_raw_ogbench_file(chosen_path, need_info, obs_dim, act_dim)
    chosen = read_singletask_split(parsed, chosen_path, env)
    env.close()
    source = str(chosen_path)
    data = finalize_transitions(chosen, source, obs_dim, act_dim)
    info = {"obs_dim": obs_dim, "act_dim": act_dim, "env_id": parsed.singletask_env_id,
            "num_transitions": len(data["observations"]), "source": source}
    return data, info
