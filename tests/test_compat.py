"""RLlib's private names: all behind ``vgf_ray.rllib.compat``, and all still present in the installed Ray."""

import re
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from test_budget_schedule import config_for

from vgf_ray.rllib import compat

PACKAGE = Path(compat.__file__).resolve().parents[1]


def live_instances(algo) -> dict:
    """One live object per owner in ``compat.PRIVATE_ATTRIBUTES``."""
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    catalog = SACCatalog(box, box, model_config_dict={"fcnet_hiddens": [8, 8], "fcnet_activation": "relu"})
    return {"AlgorithmConfig": algo.config, "LearnerGroup": algo.learner_group,
            "Learner": algo.learner_group._learner, "Catalog": catalog}


def test_installed_ray_has_every_private_name_vgf_ray_uses(ray_session, pointmaze_npz):
    algo = config_for(pointmaze_npz).build_algo()
    try:
        instances = live_instances(algo)
        assert compat.missing_private_names(instances) == []
        assert compat.catalog_model_config(instances["Catalog"])["fcnet_hiddens"] == [8, 8]
    finally:
        algo.stop()


def test_a_renamed_private_name_is_reported_by_name():
    stripped = {owner: SimpleNamespace(**dict.fromkeys(names)) for owner, names in compat.PRIVATE_ATTRIBUTES.items()}
    del stripped["Learner"]._update
    assert compat.missing_private_names(stripped) == ["Learner._update"]


def test_no_module_but_compat_touches_a_private_rllib_name():
    attributes = {"." + name for names in compat.PRIVATE_ATTRIBUTES.values() for name in names}
    uses = attributes | {compat.SAMPLE_KEYWORD, "Checkpointable.restore_from_path", "object.__setattr__"}
    pattern = re.compile("|".join(r"(?<![\w.])" * (not use.startswith(".")) + re.escape(use) + r"\b"
                                  for use in sorted(uses)))
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path.name != "compat.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_checkpoints_that_name_the_config_s_former_module_still_load():
    """A checkpoint from before ``VGFConfig`` moved pickles it as ``vgf_ray.rllib.config.VGFConfig``."""
    import pickle

    from vgf_ray.rllib import VGFConfig

    assert pickle.loads(b"cvgf_ray.rllib.config\nVGFConfig\n.") is VGFConfig
