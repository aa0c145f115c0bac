"""Check a checkpoint before RLlib loads it, so a wrong one fails with a message instead of inside torch.

A checkpoint folder must be an RLlib checkpoint of a VGF algorithm, complete (an interrupted save leaves files
out), and built for the same task and networks as the run that loads it. RLlib checkpoints are pickles: loading one
runs code, so a checkpoint from outside the run's own folder gets a one-line warning.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

from vgf_ray.errors import InputError
from vgf_ray.metrics import MODULE_ID
from vgf_ray.rllib.algorithm import VGF
from vgf_ray.rllib.compat import CTOR_ARGS_FILE, MODULE_STATE_FILE, STATE_FILES, saved_class, saved_ctor_args
from vgf_ray.rllib.module import VGFTorchRLModule

RLLIB_CHECKPOINT_JSON = "rllib_checkpoint.json"
CTOR_ARGS = CTOR_ARGS_FILE
MODULE_DIR = Path("learner_group") / "learner" / "rl_module" / MODULE_ID
# Everything --resume restores; weights alone need only the module's files.
WEIGHT_FILES = (str(MODULE_DIR / CTOR_ARGS), str(MODULE_DIR / MODULE_STATE_FILE))
RUN_FILES = (CTOR_ARGS, *STATE_FILES, *WEIGHT_FILES)
# Settings that decide the shapes of the saved tensors.
NETWORK_KEYS = ("hidden_dims", "actor_hidden_dims", "num_critics", "critic_layer_norm", "actor_layer_norm",
                "variant")
TASK_KEYS = ("ogbench", "gym_id")


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded into this run; the message says why."""


def load_checkpoint_file(path: Path) -> dict[str, Any]:
    """One of RLlib's pickled checkpoint files (check the folder first: loading a pickle runs code)."""
    with open(path, "rb") as f:
        return pickle.load(f)


def check_checkpoint(path: str | Path, flag: str, config=None, whole_run: bool = True,
                     trusted_root: str | Path | None = None, accept: type | None = None) -> str:
    """The checkpoint's absolute path after checking it; raises ``CheckpointError`` naming the problem.

    ``config`` (a ``VGFConfig``): the run that will load it, whose task and networks must match. ``whole_run``:
    ``--resume`` needs every file, ``--from-checkpoint`` and ``evaluate`` only the module's. ``accept``: the
    algorithm class a checkpoint must be of without ``config`` (VGF; ``serve`` takes the baselines too).
    """
    folder = Path(path).expanduser().resolve()
    where = f"{flag} {path}"
    if not folder.is_dir():
        raise CheckpointError(f"{where}: no such checkpoint folder")
    if not (folder / RLLIB_CHECKPOINT_JSON).exists():
        raise CheckpointError(f"{where}: not an RLlib checkpoint folder (no {RLLIB_CHECKPOINT_JSON})")
    _warn_if_untrusted(folder, flag, path, trusted_root)  # before this check reads any of its pickles
    expected = (accept or VGF) if config is None else config.algo_class  # a baseline's run resumes its own
    algo_class = _saved_algorithm(folder, where, expected)
    missing = [name for name in (RUN_FILES if whole_run else WEIGHT_FILES) if not (folder / name).exists()]
    if missing:
        raise CheckpointError(f"{where}: incomplete checkpoint (missing {', '.join(missing)}); it may come "
                              "from an interrupted save")
    if issubclass(algo_class, VGF):
        _check_vgf_module(folder, where, config)
    return str(folder)


def _saved_algorithm(folder: Path, where: str, expected: type) -> type:
    """The checkpoint's algorithm class, which must be ``expected`` or a subclass (``expected`` itself where the
    folder records none)."""
    if not (folder / CTOR_ARGS).exists():
        return expected
    algo_class = saved_class(load_checkpoint_file(folder / CTOR_ARGS))
    if not (isinstance(algo_class, type) and issubclass(algo_class, expected)):
        raise CheckpointError(f"{where}: a checkpoint of {getattr(algo_class, '__name__', algo_class)}, "
                              f"not of {expected.__name__}")
    return algo_class


def _check_vgf_module(folder: Path, where: str, config) -> None:
    """VGF's module, built with this run's networks and trained on its task (where ``config`` is given)."""
    module = load_checkpoint_file(folder / MODULE_DIR / CTOR_ARGS)
    module_class = saved_class(module)
    if not (isinstance(module_class, type) and issubclass(module_class, VGFTorchRLModule)):
        raise CheckpointError(f"{where}: its module is {module_class}, not VGF's")
    if config is None:
        return
    saved_hp = saved_ctor_args(module)[1]["model_config"]["vgf"]
    wanted = config.hyperparams().to_dict()
    for key in NETWORK_KEYS:
        theirs, ours = _plain(saved_hp.get(key)), _plain(wanted.get(key))
        if theirs != ours:
            raise CheckpointError(f"{where}: its training.{key} is {theirs} but this run's is {ours}; "
                                  "the saved weights do not fit these networks")
    if (folder / CTOR_ARGS).exists():
        saved_env = saved_ctor_args(load_checkpoint_file(folder / CTOR_ARGS))[0][0].get("env_config") or {}
        for key in TASK_KEYS:
            theirs, ours = saved_env.get(key), (config.env_config or {}).get(key)
            if theirs != ours:
                raise CheckpointError(f"{where}: trained on env.{key}={theirs!r} but this run has "
                                      f"env.{key}={ours!r}")


def _warn_if_untrusted(folder: Path, flag: str, path: str | Path, trusted_root: str | Path | None) -> None:
    if trusted_root is not None and not folder.is_relative_to(Path(trusted_root).expanduser().resolve()):
        print(f"warning: {flag} {path}: checkpoints are pickles and loading one runs code; load only checkpoints "
              "you trust", file=sys.stderr)


def _plain(value: Any) -> Any:
    """Lists and tuples of widths compare (and print) alike."""
    return [int(v) for v in value] if isinstance(value, list | tuple) else value
