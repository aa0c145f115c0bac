"""In-memory transition buffer: the whole offline dataset lives as tensors on the learner's device.

Uniform sampling from preallocated tensors costs microseconds per batch, unlike a ray.data pipeline.
"""

from __future__ import annotations

import numpy as np
import torch

from vgf_ray.data.transitions import TRANSITION_KEYS


class TransitionBuffer:
    """Fixed set of transitions with uniform minibatch sampling driven by an explicit generator."""

    def __init__(self, data: dict[str, np.ndarray], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.tensors = {k: torch.as_tensor(np.asarray(data[k], np.float32), device=self.device)
                        for k in TRANSITION_KEYS}
        self.size = len(self.tensors["observations"])

    def __len__(self) -> int:
        return self.size

    @property
    def obs_dim(self) -> int:
        return self.tensors["observations"].shape[1]

    @property
    def act_dim(self) -> int:
        return self.tensors["actions"].shape[1]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        idx = torch.randint(self.size, (batch_size,), generator=generator, device=self.device)
        return {k: v[idx] for k, v in self.tensors.items()}
