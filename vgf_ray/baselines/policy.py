"""The IQL baseline's policy distribution: FQL's unit-variance Gaussian, or RLlib's tanh-squashed Gaussian.

RLlib's SAC catalog, which its IQL module uses, gives the actor a tanh-squashed Gaussian. IQL's actor loss is the
advantage-weighted log-likelihood of dataset actions, and OGBench's manipulation data put many actions on the box's
edge (about a fifth of one arm coordinate of cube-single-play at exactly +-1). A squashed Gaussian's log-likelihood
there is that of atanh(1 - 1e-6) = 7.25 pre-squash units away, so those rows dominate the loss. The IQL, FQL and
OGBench authors train a Gaussian without squashing, with a constant unit standard deviation (advantage-weighted
regression of the mean), evaluate its mean and clip it to the box. ``policy: gaussian`` (the default) is that;
``policy: squashed`` keeps RLlib's. Everything else (losses, critics, optimizers) stays RLlib's.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.core.distribution.distribution import Distribution
from ray.rllib.core.distribution.torch.torch_distribution import TorchDiagGaussian
from ray.rllib.utils.annotations import override

from vgf_ray.baselines.q_network import Q_NETWORK_CATALOGS, ConcatQCatalog


class TorchUnitGaussian(TorchDiagGaussian):
    """A diagonal Gaussian with standard deviation 1 whose logits are its mean alone (OGBench's ``const_std``):
    its log-likelihood is minus half the squared error, plus a constant. Deterministic acting takes the mean."""

    @staticmethod
    @override(TorchDiagGaussian)
    def required_input_dim(space: gym.Space, **kwargs) -> int:  # a Box: UnitGaussianPolicy picks it for no other
        return int(np.prod(space.shape, dtype=np.int64))

    @classmethod
    @override(TorchDiagGaussian)
    def from_logits(cls, logits: torch.Tensor, **kwargs) -> TorchUnitGaussian:
        return cls(loc=logits, scale=torch.ones_like(logits))


class UnitGaussianPolicy(SACCatalog):
    """SAC's catalog with ``TorchUnitGaussian`` as the policy distribution for Box actions."""

    @override(SACCatalog)
    def get_action_dist_cls(self, framework: str) -> type[Distribution]:
        if isinstance(self.action_space, gym.spaces.Box):
            return TorchUnitGaussian
        return super().get_action_dist_cls(framework)


class UnitGaussianPolicyConcatQCatalog(UnitGaussianPolicy, ConcatQCatalog):
    """FQL's IQL networks: a unit-variance Gaussian policy and ``Q(s, a) = MLP([s, a])`` critics."""


# training.iql.policy values (GAUSSIAN the default); unset, a module keeps RLlib's squashed policy.
GAUSSIAN, SQUASHED = "gaussian", "squashed"
POLICIES = (GAUSSIAN, SQUASHED)
# training.<algo>.q_network -> the catalog of that critic with the unit-variance Gaussian policy
GAUSSIAN_POLICY_CATALOGS: dict[str, type[SACCatalog]] = {
    "mlp": UnitGaussianPolicyConcatQCatalog, "multi_stream": UnitGaussianPolicy}


def baseline_catalog(q_network: str | None, policy: str | None) -> type[SACCatalog]:
    """The catalog that builds an IQL/CQL module; an unset key keeps RLlib's choice (multi-stream, squashed)."""
    q_network = q_network or "multi_stream"
    return GAUSSIAN_POLICY_CATALOGS[q_network] if policy == GAUSSIAN else Q_NETWORK_CATALOGS[q_network]
