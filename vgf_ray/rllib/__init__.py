"""RLlib (new API stack) wiring of the plain-PyTorch VGF core."""

from vgf_ray.rllib.algorithm import VGF, VGFConfig

__all__ = ["VGF", "VGFConfig"]
