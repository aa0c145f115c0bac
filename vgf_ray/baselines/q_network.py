"""The critic architecture of the IQL and CQL baselines: one MLP over the concatenated state and action.

RLlib's SAC catalog (which its IQL and CQL modules use) builds each Q-network as a multi-stream encoder: an MLP per
input (observation, action), then tanh fusion layers with skip connections over both embeddings. At 2x256 that is
about 660k multiply-adds per (state, action) row against 74k for the plain MLP the IQL, CQL and FQL authors train
(``Q(s, a) = MLP([s, a])``), and CQL scores 3 x ``num_actions`` extra rows per state through both critics: RLlib's
CQL ran 1.4 updates/s here with it and the study could not afford 20k steps (docs: Baselines).
``q_network: mlp`` (the default) swaps in the authors' architecture; ``multi_stream`` keeps RLlib's.
Only the Q encoders change: losses, policy, heads, targets and optimizers stay RLlib's.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import Encoder
from ray.rllib.core.models.configs import MLPEncoderConfig
from ray.rllib.core.models.torch.encoder import TorchMLPEncoder
from ray.rllib.utils.annotations import override

from vgf_ray.rllib.compat import catalog_model_config


class ConcatMLPEncoder(TorchMLPEncoder):
    """An MLP encoder whose input is ``[obs, action]``, the batch layout RLlib's SAC-family Q forward passes."""

    @override(TorchMLPEncoder)
    def _forward(self, inputs: dict, **kwargs) -> dict[str, Any]:
        joint = torch.cat([inputs[Columns.OBS], inputs[Columns.ACTIONS]], dim=-1)
        return super()._forward({Columns.OBS: joint}, **kwargs)


class ConcatQCatalog(SACCatalog):
    """SAC's catalog with ``Q(s, a) = MLP([s, a])`` (``fcnet_hiddens`` / ``fcnet_activation``) for Box actions."""

    @override(SACCatalog)
    def _build_qf_encoder_continuous(self, framework: str) -> Encoder:
        if len(self.observation_space.shape) != 1 or not isinstance(self.action_space, gym.spaces.Box):
            raise ValueError(f"training.<iql|cql>.q_network: mlp needs flat Box observations and Box actions, got "
                             f"{self.observation_space} and {self.action_space}; set it to multi_stream")
        hiddens = list(catalog_model_config(self)["fcnet_hiddens"])
        activation = catalog_model_config(self)["fcnet_activation"]
        self.qf_encoder_config = MLPEncoderConfig(
            input_dims=[self.observation_space.shape[0] + self.action_space.shape[0]],
            hidden_layer_dims=hiddens[:-1],
            hidden_layer_activation=activation,
            output_layer_dim=self.latent_dims[0],
            output_layer_activation=activation,
        )
        return ConcatMLPEncoder(self.qf_encoder_config)


# training.<iql|cql>.q_network -> the catalog that builds the module's critics
Q_NETWORK_CATALOGS: dict[str, type[SACCatalog]] = {"mlp": ConcatQCatalog, "multi_stream": SACCatalog}
