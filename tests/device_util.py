"""The device the core numerics tests run on: the CPU, unless ``VGF_TEST_DEVICE`` names another (``cuda``).

CI has no GPU, so every test runs on the CPU there; ``benchmarks/gpu_check.sh`` runs the same tests with
``VGF_TEST_DEVICE=cuda`` on a GPU machine, so the fast paths are checked where they would otherwise never run.
"""

from __future__ import annotations

import os

import torch

TEST_DEVICE_ENV = "VGF_TEST_DEVICE"


def selected_device() -> torch.device:
    """The device ``VGF_TEST_DEVICE`` names (default ``cpu``); an unknown or absent device fails by name rather
    than letting a GPU check pass on the CPU."""
    name = os.environ.get(TEST_DEVICE_ENV, "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise RuntimeError(f"{TEST_DEVICE_ENV}={name!r} is not a torch device ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{TEST_DEVICE_ENV}={name!r} but torch sees no CUDA device here "
                           f"(torch {torch.__version__}, CUDA build: {torch.version.cuda})")
    if device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"{TEST_DEVICE_ENV}={name!r}: the tests know the cpu and cuda devices only")
    return device


DEVICE = selected_device()


def generator(seed: int) -> torch.Generator:
    """A seeded generator on the test device (random draws must come from the device they land on)."""
    return torch.Generator(DEVICE).manual_seed(seed)
