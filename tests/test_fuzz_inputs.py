"""Fuzzed inputs: corrupted OGBench npz files, experiment files with `--set` overrides, and sweep sections. Every
case either loads or fails with vgf_ray's own error naming the file or key; no raw numpy/torch/Ray traceback.

The corpus is made here by hypothesis, not shipped. ``HYPOTHESIS_PROFILE=deep`` tries many more cases (profiles:
conftest.py). Minari datasets: test_fuzz_minari.py.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from vgf_ray.data.ogbench_load import load_ogbench_transitions
from vgf_ray.errors import InputError

KEYS = ("observations", "actions", "terminals", "qpos", "next_observations", "rewards", "masks")
FILE_MUTATIONS = ("none", "truncate", "garbage", "empty_file", "no_val_split", "not_zip_member")


def mutate_array(arrays: dict[str, np.ndarray], key: str, how: str, rng: np.random.Generator) -> None:
    try:
        _mutate_array(arrays, key, how, rng)
    except (TypeError, ValueError):  # e.g. complex numbers from an object array: this mutation does not apply
        pass


DROP = object()  # a mutation's result: delete the key


def _nonfinite(a: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray | None:
    if not (np.issubdtype(a.dtype, np.floating) and a.size):
        return None
    b = a.copy()
    b.flat[int(rng.integers(0, b.size))] = np.nan if how == "nan" else -np.inf
    return b


# how -> (array, key, rows, rng) -> the replacement (None: the mutation does not apply to this key)
ARRAY_MUTATORS = {
    "drop": lambda a, key, n, rng: DROP,
    "strings": lambda a, key, n, rng: a.astype(str),
    "objects": lambda a, key, n, rng: np.array([object()] * n, dtype=object),
    "complex": lambda a, key, n, rng: a.astype(np.complex64),
    "bools": lambda a, key, n, rng: a.astype(bool),
    "ints": lambda a, key, n, rng: a.astype(np.int64),
    "scalar": lambda a, key, n, rng: np.asarray(a.ravel()[0] if a.size else 0.0),
    "empty": lambda a, key, n, rng: a[:0],
    "extra_dim": lambda a, key, n, rng: a[..., None],
    "transpose": lambda a, key, n, rng: a.T.copy() if a.ndim == 2 else None,
    "fewer_rows": lambda a, key, n, rng: a[: max(n - 1 - int(rng.integers(0, 5)), 0)],
    "nan": lambda a, key, n, rng: _nonfinite(a, "nan", rng),
    "inf": lambda a, key, n, rng: _nonfinite(a, "inf", rng),
    "huge": lambda a, key, n, rng: a * 1e6 if np.issubdtype(a.dtype, np.floating) else None,
    "wrong_width": lambda a, key, n, rng: np.concatenate([a, a[:, :1]], axis=1) if a.ndim == 2 else None,
    "all_terminal": lambda a, key, n, rng: np.ones_like(a) if key == "terminals" else None,
    "no_terminal": lambda a, key, n, rng: np.zeros_like(a) if key == "terminals" else None,
}
ARRAY_MUTATIONS = tuple(ARRAY_MUTATORS)


def _mutate_array(arrays: dict[str, np.ndarray], key: str, how: str, rng: np.random.Generator) -> None:
    if key == "extra":  # an extra key: must be ignored
        arrays[f"extra_{len(arrays)}"] = rng.normal(size=(700, 3))
        return
    if key not in arrays:  # dropped by an earlier mutation
        return
    a = arrays[key]
    out = ARRAY_MUTATORS[how](a, key, len(a) if a.ndim else 1, rng)
    if out is DROP:
        del arrays[key]
    elif out is not None:
        arrays[key] = out


def write_npz(path: Path, arrays: dict[str, np.ndarray], how: str, rng: np.random.Generator) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # object arrays are written (pickled), never loaded with allow_pickle
    data = buffer.getvalue()
    if how == "truncate":
        data = data[: int(len(data) * rng.uniform(0.05, 0.95))]
    elif how == "garbage":
        data = rng.integers(0, 256, size=len(data) // 4, dtype=np.uint8).tobytes()
    elif how == "empty_file":
        data = b""
    elif how == "not_zip_member":
        with zipfile.ZipFile(io.BytesIO(data)) as z, zipfile.ZipFile(buf := io.BytesIO(), "w") as out:
            for name in z.namelist():
                out.writestr(name, b"not an npy array")
        data = buf.getvalue()
    path.write_bytes(data)


@pytest.fixture(scope="module")
def clean_arrays(pointmaze_npz) -> tuple[dict, dict]:
    val = Path(str(pointmaze_npz).replace(".npz", "-val.npz"))
    with np.load(pointmaze_npz) as f, np.load(val) as g:
        return {k: f[k] for k in f.files}, {k: g[k] for k in g.files}


def assert_clear_error(err: InputError, *names: str) -> None:
    message = str(err)
    assert "\n" not in message.strip(), message
    assert any(name in message for name in names), message


@given(mutations=st.lists(st.tuples(st.sampled_from(KEYS + ("extra",)), st.sampled_from(ARRAY_MUTATIONS)),
                          min_size=0, max_size=3),
       file_mutation=st.sampled_from(FILE_MUTATIONS), corrupt_val=st.booleans(), seed=st.integers(0, 2**16))
def test_corrupted_ogbench_npz_loads_or_fails_clearly(clean_arrays, tmp_path_factory, mutations, file_mutation,
                                                       corrupt_val, seed):
    rng = np.random.default_rng(seed)
    folder = tmp_path_factory.mktemp("npz")
    train, val = ({k: v.copy() for k, v in arrays.items()} for arrays in clean_arrays)
    for key, how in mutations:
        mutate_array(val if corrupt_val else train, key, how, rng)
    path, val_path = folder / "data.npz", folder / "data-val.npz"
    write_npz(path, train, file_mutation if not corrupt_val else "none", rng)
    if file_mutation != "no_val_split":
        write_npz(val_path, val, file_mutation if corrupt_val else "none", rng)
    try:
        data, info = load_ogbench_transitions("pointmaze-medium-navigate", path)
    except InputError as err:
        assert_clear_error(err, str(path), str(val_path))
        event("clear error")
        return
    event("loaded")
    # Loaded: then it is trainable data, never silently broken.
    n = len(data["observations"])
    assert n > 0 and all(len(data[k]) == n for k in data)
    assert all(np.isfinite(v).all() for v in data.values())
    assert np.abs(data["actions"]).max() <= 1.0
    assert data["observations"].shape[1] == info["obs_dim"] and data["actions"].shape[1] == info["act_dim"]


EXPERIMENT_KEYS = ("iterations", "seed", "checkpoint_every", "training.num_particles", "training.vgf_lr",
                   "training.hidden_dims", "training.budget_schedule", "training.replay_style", "training.utd_ratio",
                   "training.offline_steps", "training.acting", "evaluation.budgets", "evaluation.interval",
                   "evaluation.episodes", "dataset.num_transitions", "dataset.name", "env.ogbench", "resources",
                   "mlflow.tracking_uri", "nosuch.key", "training.nosuch", "training")
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**7), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=12), st.lists(st.integers(-3, 600), max_size=4),
                   st.dictionaries(st.sampled_from(["vgf_lr", "train_vgf_steps", "x"]),
                                   st.lists(st.lists(st.integers(-10, 100), max_size=3), max_size=3), max_size=2),
                   st.just("{unclosed: [yaml"))


@given(overrides=st.lists(st.tuples(st.sampled_from(EXPERIMENT_KEYS), VALUES), max_size=3))
def test_fuzzed_experiment_overrides_load_or_fail_clearly(tmp_path_factory, pointmaze_npz, overrides):
    from vgf_ray.experiment import load_experiment
    from vgf_ray.experiment.build import build_config, resolve_iterations

    folder = tmp_path_factory.mktemp("exp")
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(folder / "out"), "env": {"ogbench": "pointmaze-medium-navigate"},
        "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
        "training": {"hidden_dims": [16], "actor_hidden_dims": [16]}, "mlflow": {"tracking_uri": None}}))
    sets = [f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
            if not (isinstance(value, str) and value.startswith("{unclosed")) else f"{key}={value}"
            for key, value in overrides]
    try:
        exp = load_experiment(path, sets)
        config = build_config(exp)
        resolve_iterations(exp, config)
    except InputError as err:
        keys = [key.split(".")[-1] for key, _ in overrides] + [key.split(".")[0] for key, _ in overrides]
        assert_clear_error(err, *keys, "budget_schedule", "dataset", "env", str(path))
        event("clear error")
        return
    event("loaded")


SWEEP_KEYS_FUZZ = ("metric", "mode", "num_samples", "max_concurrent_trials", "stop", "search_space", "grid",
                   "scheduler", "searcher", "checkpoint_interval", "start_from", "bogus")
SPACE_VALUES = st.one_of(
    VALUES,
    st.dictionaries(st.sampled_from(["training.vgf_lr", "training.train_vgf_steps", "training.nope", "vgf_lr",
                                     "evaluation.episodes"]),
                    st.one_of(VALUES, st.dictionaries(st.sampled_from(["choice", "uniform", "loguniform", "randint",
                                                                       "grid", "bogus"]),
                                                      st.one_of(VALUES, st.lists(st.floats(-1, 1), max_size=3)),
                                                      max_size=2)), max_size=2),
    st.fixed_dictionaries({"type": st.sampled_from(["pbt", "pb2", "asha", "fifo", "x"])},
                          optional={"perturbation_interval": VALUES, "grace_period": VALUES,
                                    "hyperparam_mutations": VALUES, "hyperparam_bounds": VALUES}))


@given(sweep=st.dictionaries(st.sampled_from(SWEEP_KEYS_FUZZ), SPACE_VALUES, max_size=4),
       schedule=st.one_of(st.none(), st.dictionaries(
           st.sampled_from(["train_vgf_steps", "vgf_lr", "exploration_steps", "value_lr", "nope"]),
           st.one_of(VALUES, st.lists(st.lists(st.one_of(st.integers(-5, 50), st.floats(-1, 2)), max_size=3),
                                      max_size=3)), max_size=2)))
def test_fuzzed_sweeps_and_schedules_fail_clearly(tmp_path_factory, pointmaze_npz, sweep, schedule):
    from vgf_ray.experiment import load_experiment
    from vgf_ray.tuning import prepare_sweep

    folder = tmp_path_factory.mktemp("sweep")
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "iterations": 4, "output_dir": str(folder / "out"), "env": {"ogbench": "pointmaze-medium-navigate"},
        "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
        "training": {"hidden_dims": [16], "actor_hidden_dims": [16], "budget_schedule": schedule},
        "evaluation": {"interval": 2}, "mlflow": {"tracking_uri": None}, "sweep": sweep}))
    try:
        prepare_sweep(load_experiment(path))
    except InputError as err:
        assert_clear_error(err, "sweep", "budget_schedule", "training", str(path))
        event("clear error")
        return
    event("accepted")
