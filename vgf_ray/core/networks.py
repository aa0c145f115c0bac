"""MLPs used by VGF: a plain MLP (behavior flow) and a batched ensemble MLP (critic).

Layer order follows the authors' code: Dense -> LayerNorm (optional) -> ReLU on hidden layers, linear head.
Kernels use Xavier-uniform init with zero bias, the FQL/VGF ``default_init``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-6  # flax.linen.LayerNorm default


class MLP(nn.Module):
    """Dense -> [LayerNorm] -> ReLU stack with a linear output layer."""

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], out_dim: int, layer_norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_dim
        for width in hidden_dims:
            linear = nn.Linear(prev, width)
            layers.append(linear)
            if layer_norm:
                layers.append(nn.LayerNorm(width, eps=LAYER_NORM_EPS))
            layers.append(nn.ReLU())
            prev = width
        layers.append(nn.Linear(prev, out_dim))
        self.net = nn.Sequential(*layers)
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EnsembleMLP(nn.Module):
    """``num_members`` independent MLPs evaluated as one batched module (one bmm per layer, no Python loop).

    Input ``[..., in_dim]`` is shared by all members; output is ``[num_members, ..., out_dim]``.
    """

    def __init__(
        self,
        num_members: int,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        layer_norm: bool = True,
    ):
        super().__init__()
        self.num_members = num_members
        self.layer_norm = layer_norm
        dims = [in_dim, *hidden_dims, out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.ln_weights = nn.ParameterList()
        self.ln_biases = nn.ParameterList()
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            weight = torch.empty(num_members, fan_in, fan_out)
            for member in range(num_members):
                nn.init.xavier_uniform_(weight[member].T)
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(num_members, 1, fan_out)))
            is_hidden = i < len(dims) - 2
            if layer_norm and is_hidden:
                self.ln_weights.append(nn.Parameter(torch.ones(num_members, 1, fan_out)))
                self.ln_biases.append(nn.Parameter(torch.zeros(num_members, 1, fan_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Under bf16/fp16 autocast the whole stack runs in that dtype, layer norm included (it accumulates in
        fp32 inside): autocast would run layer norm, its affine and ReLU in fp32 and cast every activation back and
        forth, which costs more than the matmuls on CPU. Output dtype as autocast would give it."""
        device = x.device.type
        if torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            with torch.autocast(device, enabled=False):
                return self._forward(x.to(dtype), dtype)
        return self._forward(x, None)

    def _forward(self, x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
        def cast(t: torch.Tensor) -> torch.Tensor:
            return t if dtype is None else t.to(dtype)

        lead_shape = x.shape[:-1]
        h = x.reshape(1, -1, x.shape[-1]).expand(self.num_members, -1, -1)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(cast(bias), h, cast(weight))
            if i < last:
                if self.layer_norm:
                    h = F.layer_norm(h, h.shape[-1:], eps=LAYER_NORM_EPS)
                    h = torch.addcmul(cast(self.ln_biases[i]), h, cast(self.ln_weights[i]))  # one pass, not two
                h = torch.relu_(h)  # in place: neither producer saved its output for backward
        return h.reshape(self.num_members, *lead_shape, h.shape[-1])
