"""Where checkpoints written before ``VGFConfig`` moved to ``vgf_ray.rllib.algorithm`` find it.

An RLlib checkpoint pickles the config's class by its module path, so this path must keep resolving for them.
"""

from vgf_ray.rllib.algorithm import EXTRA_KEYS, HPARAM_KEYS, VGFConfig

__all__ = ["EXTRA_KEYS", "HPARAM_KEYS", "VGFConfig"]
