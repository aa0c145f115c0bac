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


# How far the fused fp32 transport may land from the autograd reference after a few Adam steps on the particles
# (Adam divides by the gradient's own size, so summation-order rounding in the critic's matmuls carries through).
# On the CPU 1e-5 holds; on a GPU cuBLAS sums in other orders than the fused path's batched matmuls, and an H200
# (torch 2.11, CUDA 13) measured 1.02e-5 at one coordinate of 288.
FP32_TRANSPORT_ATOL = 1e-5 if DEVICE.type == "cpu" else 3e-5
