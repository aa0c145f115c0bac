"""Which torch device a name means, checked here, so a GPU run asked for on a machine without one fails by name
instead of running on the CPU under the GPU's label (the test device, the benchmarks' ``--device``)."""

from __future__ import annotations

import torch

KNOWN_DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)`` for a cpu or cuda device torch can use here; ``ValueError`` naming the problem else."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"{name!r} is not a torch device ({err})") from None
    if device.type not in KNOWN_DEVICE_TYPES:
        raise ValueError(f"{name!r}: vgf_ray knows the cpu and cuda devices only")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name!r}: torch sees no CUDA device here (torch {torch.__version__}, CUDA build: "
                         f"{torch.version.cuda})")
    return device
