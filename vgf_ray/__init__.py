"""vgf_ray: Value Gradient Flow as a Ray RLlib algorithm (offline and offline-to-online RL).

``from vgf_ray import VGF, VGFConfig`` gives the RLlib algorithm and its config; Ray is imported only then.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vgf_ray")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["VGF", "VGFConfig", "__version__"]


def __getattr__(name: str):
    if name in ("VGF", "VGFConfig"):
        from vgf_ray import rllib

        return getattr(rllib, name)
    raise AttributeError(f"module 'vgf_ray' has no attribute {name!r}")
