"""The one place that touches RLlib's private names.

RLlib keeps no promise about names with a leading underscore, and an upgrade that renames one breaks the code that
uses it silently (an ``AttributeError`` deep in a learner, or a keyword ignored). Every such use in vgf_ray goes
through a function here, each saying why it is needed; ``PRIVATE_ATTRIBUTES`` and ``missing_private_names`` let a
test check the installed Ray still has them all and fail naming the one that is gone. Checked against Ray
``CHECKED_RAY_VERSION``.

Not listed: ``RLModule._forward``, ``_forward_inference`` and ``_forward_exploration``, and ``Encoder._forward``:
RLlib's documented hooks for custom modules, overridden by design.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.checkpoints import Checkpointable

CHECKED_RAY_VERSION = "2.60.0"

# Instance attributes read or written here, by the RLlib class that sets them up.
PRIVATE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "AlgorithmConfig": ("_is_frozen", "_value_error"),
    "LearnerGroup": ("_module_spec",),
    "Learner": ("_update", "_set_optimizer_lr", "_weights_seq_no", "_device"),
    "Catalog": ("_model_config_dict",),
}
SAMPLE_KEYWORD = "_uses_new_env_runners"  # synchronous_parallel_sample's switch to the new-stack EnvRunners
# RLlib's checkpoint layout: the pickle of a component's class and constructor arguments (its keys), and the
# state files of an algorithm, its learner group and its learner.
CTOR_ARGS_FILE = "class_and_ctor_args.pkl"
CTOR_CLASS_KEY = "class"
CTOR_ARGS_KEY = "ctor_args_and_kwargs"
ALGORITHM_STATE_FILE = "algorithm_state.pkl"
STATE_FILES = (ALGORITHM_STATE_FILE, "learner_group/state.pkl", "learner_group/learner/state.pkl")
MODULE_STATE_FILE = "module_state.pkl"


def saved_class(ctor_args: dict) -> Any:
    """The class recorded in a loaded ``CTOR_ARGS_FILE`` (None if the file holds none)."""
    return ctor_args.get(CTOR_CLASS_KEY)


def saved_ctor_args(ctor_args: dict) -> tuple[tuple, dict]:
    """The (args, kwargs) recorded in a loaded ``CTOR_ARGS_FILE``."""
    return ctor_args[CTOR_ARGS_KEY]


def missing_private_names(instances: dict[str, Any]) -> list[str]:
    """``Owner.name`` for every private name used here that the installed Ray no longer has; ``instances`` maps
    each ``PRIVATE_ATTRIBUTES`` owner to a live object of that class (instance attributes exist only there)."""
    missing = [f"{owner}.{name}" for owner, names in PRIVATE_ATTRIBUTES.items() for name in names
               if not hasattr(instances[owner], name)]
    if SAMPLE_KEYWORD not in inspect.signature(synchronous_parallel_sample).parameters:
        missing.append(f"synchronous_parallel_sample({SAMPLE_KEYWORD}=...)")
    if not callable(getattr(Checkpointable, "restore_from_path", None)):
        missing.append("Checkpointable.restore_from_path")
    return missing


@contextlib.contextmanager
def unfrozen(config) -> Iterator[Any]:
    """Change a frozen ``AlgorithmConfig`` in place and freeze it again: the dataset path is settled on the driver
    after RLlib froze the config, and copying the config would detach it from the algorithm holding it."""
    config._is_frozen = False
    try:
        yield config
    finally:
        config.freeze()


def set_despite_freeze(config, name: str, value: Any) -> None:
    """Set one attribute of a frozen config for the span of a parent ``validate()`` (IQL's temperature beside
    MARWIL's bound, see ``BaselineIQLConfig``), bypassing the frozen config's ``__setattr__``."""
    object.__setattr__(config, name, value)


def config_value_error(config, message: str) -> None:
    """Raise the config error RLlib's own ``validate()`` raises (a ``ValueError`` with its wording)."""
    config._value_error(message)


def learner_group_module_spec(group):
    """The module spec a ``LearnerGroup`` was built with, to build a replacement group of the same module."""
    return group._module_spec


def learner_device(learner):
    """The torch device RLlib placed the learner on."""
    return learner._device


def learner_gradient_step(learner, batch: dict) -> dict:
    """One forward, backward and optimizer step on an already-made batch: ``Learner._update``, skipping
    ``update()``'s episodes -> connectors -> minibatch path, which costs more than a step on small nets."""
    return learner._update(batch)


def set_optimizer_lr(learner, optimizer, lr: float) -> None:
    """Put a learning rate in force on one optimizer (a scheduled or restored rate)."""
    learner._set_optimizer_lr(optimizer, lr)


def mark_weights_updated(learner) -> None:
    """Count a weight change, as ``Learner.update`` does: EnvRunners compare this number to skip stale syncs."""
    learner._weights_seq_no += 1


def catalog_model_config(catalog) -> dict:
    """A catalog's model config as a dict (``fcnet_hiddens``, ``fcnet_activation``, ...)."""
    return catalog._model_config_dict


def sample_env_steps(group, max_env_steps: int, timeout_s: float | None) -> list:
    """RLlib's ``synchronous_parallel_sample`` on new-stack EnvRunners (episodes, concatenated)."""
    return synchronous_parallel_sample(worker_set=group, max_env_steps=max_env_steps, concat=True,
                                       sample_timeout_s=timeout_s, **{SAMPLE_KEYWORD: True})


def restore_state_only(algorithm, path, *args, **kwargs) -> None:
    """Restore an algorithm's state without ``Algorithm.restore_from_path``'s weight sync to the training
    EnvRunners, which an offline algorithm does not have."""
    Checkpointable.restore_from_path(algorithm, path, *args, **kwargs)
