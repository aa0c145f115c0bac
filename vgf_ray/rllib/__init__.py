"""RLlib (new API stack) wiring of the plain-PyTorch VGF core."""

from vgf_ray.rllib.algorithm import VGF
from vgf_ray.rllib.config import VGFConfig

__all__ = ["VGF", "VGFConfig"]
