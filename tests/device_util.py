"""The device the core numerics tests run on: the CPU, unless ``VGF_TEST_DEVICE`` names another (``cuda``).

CI has no GPU, so every test runs on the CPU there; ``benchmarks/gpu_check.sh`` runs the same tests with
``VGF_TEST_DEVICE=cuda`` on a GPU machine, so the fast paths are checked where they would otherwise never run.
"""

from __future__ import annotations

import os

import torch

from vgf_ray.core.devices import resolve_device

TEST_DEVICE_ENV = "VGF_TEST_DEVICE"


def selected_device() -> torch.device:
    """The device ``VGF_TEST_DEVICE`` names (default ``cpu``); an unknown or absent device fails by name rather
    than letting a GPU check pass on the CPU."""
    try:
        return resolve_device(os.environ.get(TEST_DEVICE_ENV, "cpu"))
    except ValueError as err:
        raise RuntimeError(f"{TEST_DEVICE_ENV}={err}") from None


DEVICE = selected_device()


def generator(seed: int) -> torch.Generator:
    """A seeded generator on the test device (random draws must come from the device they land on)."""
    return torch.Generator(DEVICE).manual_seed(seed)
