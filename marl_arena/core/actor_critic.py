"""The default policy-gradient module: a policy head and a value head on the default encoder.

PPO's module. The value head has its own trunk unless ``vf_share_layers`` is set.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from marl_arena.core.columns import Columns
from marl_arena.core.distributions import ActionDistribution, distribution_for_space
from marl_arena.core.encoders import build_encoder
from marl_arena.core.models import DefaultModelConfig, init_output_layer, mlp
from marl_arena.core.rl_module import RLModule, TensorDict


def apply_action_mask(logits: torch.Tensor, batch: TensorDict) -> torch.Tensor:
    """Give illegal actions the lowest representable logit, so they are never sampled."""
    mask = batch.get(Columns.ACTION_MASK)
    if mask is None:
        return logits
    return logits.masked_fill(mask <= 0, torch.finfo(logits.dtype).min)


class ActorCriticModule(RLModule):
    """Policy and value function on ``build_encoder``'s encoder (an MLP, or a CNN with ``conv_filters``)."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: DefaultModelConfig | dict | None = None,
        inference_only: bool = False,
    ):
        super().__init__(observation_space, action_space, model_config, inference_only)
        cfg = self.model_config
        self._dist_cls, dist_width = distribution_for_space(action_space)
        self._continuous = isinstance(action_space, gym.spaces.Box)

        self.encoder = build_encoder(observation_space, cfg)
        hidden = self.encoder.output_dim
        pi_out = dist_width // 2 if (self._continuous and cfg.free_log_std) else dist_width
        self.pi = mlp(hidden, cfg.head_fcnet_hiddens, cfg.fcnet_activation, pi_out)
        init_output_layer(self.pi[-1], 0.01)
        if self._continuous and cfg.free_log_std:
            self.log_std = nn.Parameter(torch.zeros(dist_width // 2))
        if not inference_only:
            self.vf_encoder = None if cfg.vf_share_layers else build_encoder(observation_space, cfg)
            self.vf = mlp(hidden, cfg.head_fcnet_hiddens, cfg.fcnet_activation, 1)
            init_output_layer(self.vf[-1], 1.0)

    def _dist_inputs(self, features: torch.Tensor, batch: TensorDict) -> torch.Tensor:
        out = self.pi(features)
        if self._continuous and self.model_config.free_log_std:
            return torch.cat([out, self.log_std.expand_as(out)], dim=-1)
        return apply_action_mask(out, batch)

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(self.encoder(batch[Columns.OBS]), batch)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return self.forward_inference(batch)

    def forward_train(self, batch: TensorDict) -> TensorDict:
        features = self.encoder(batch[Columns.OBS])
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(features, batch),
            Columns.VF_PREDS: self._value(batch[Columns.OBS], features),
        }

    def compute_values(self, obs: torch.Tensor) -> torch.Tensor:
        """State values of ``obs``, one per row."""
        self._require_value_head()
        features = self.encoder(obs) if self.vf_encoder is None else None
        return self._value(obs, features)

    def _require_value_head(self) -> None:
        if self.inference_only:
            raise RuntimeError("This ActorCriticModule was built inference_only and has no value head.")

    def _value(self, obs: torch.Tensor, shared_features: torch.Tensor | None) -> torch.Tensor:
        self._require_value_head()
        features = shared_features if self.vf_encoder is None else self.vf_encoder(obs)
        return self.vf(features).squeeze(-1)

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        return self._dist_cls(dist_inputs)
