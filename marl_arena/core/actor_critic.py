"""The default policy-gradient module: a policy head and a value head on the default encoder.

PPO's module. The value head has its own trunk unless ``vf_share_layers`` is set.

With ``use_lstm`` the encoder is ``LSTMEncoder`` and the module is stateful: the acting
passes take one step per row plus ``STATE_IN``; ``forward_train`` and ``compute_values``
take zero-padded sequences ``[B, T, ...]`` and each sequence's starting state. A value
trunk of its own has its own LSTM, whose state follows the policy's in the same row.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from marl_arena.core.columns import Columns
from marl_arena.core.distributions import ActionDistribution, distribution_for_space
from marl_arena.core.encoders import build_encoder
from marl_arena.core.models import DefaultModelConfig, init_output_layer, mlp
from marl_arena.core.recurrent import LSTMEncoder
from marl_arena.core.rl_module import RLModule, TensorDict


def apply_action_mask(logits: torch.Tensor, batch: TensorDict) -> torch.Tensor:
    """Give illegal actions the lowest representable logit, so they are never sampled."""
    mask = batch.get(Columns.ACTION_MASK)
    if mask is None:
        return logits
    return logits.masked_fill(mask <= 0, torch.finfo(logits.dtype).min)


class ActorCriticModule(RLModule):
    """Policy and value function on ``build_encoder``'s encoder (an MLP, or a CNN with ``conv_filters``),
    followed by an LSTM with ``use_lstm``."""

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

        self._recurrent = cfg.use_lstm
        trunk = LSTMEncoder if cfg.use_lstm else build_encoder
        self.encoder = trunk(observation_space, cfg)
        hidden = self.encoder.output_dim
        pi_out = dist_width // 2 if (self._continuous and cfg.free_log_std) else dist_width
        self.pi = mlp(hidden, cfg.head_fcnet_hiddens, cfg.fcnet_activation, pi_out)
        init_output_layer(self.pi[-1], 0.01)
        if self._continuous and cfg.free_log_std:
            self.log_std = nn.Parameter(torch.zeros(dist_width // 2))
        if not inference_only:
            self.vf_encoder = None if cfg.vf_share_layers else trunk(observation_space, cfg)
            self.vf = mlp(hidden, cfg.head_fcnet_hiddens, cfg.fcnet_activation, 1)
            init_output_layer(self.vf[-1], 1.0)

    def _dist_inputs(self, features: torch.Tensor, batch: TensorDict) -> torch.Tensor:
        out = self.pi(features)
        if self._continuous and self.model_config.free_log_std:
            return torch.cat([out, self.log_std.expand_as(out)], dim=-1)
        return apply_action_mask(out, batch)

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        if self._recurrent:
            features, _, state_out = self._recurrent_forward(batch[Columns.OBS].unsqueeze(1),
                                                             self._state_in(batch), with_values=False)
            return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(features.squeeze(1), batch),
                    Columns.STATE_OUT: state_out}
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(self.encoder(batch[Columns.OBS]), batch)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return self.forward_inference(batch)

    def forward_train(self, batch: TensorDict) -> TensorDict:
        if self._recurrent:
            features, values, state_out = self._recurrent_forward(batch[Columns.OBS], self._state_in(batch),
                                                                  with_values=True)
            return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(features, batch), Columns.VF_PREDS: values,
                    Columns.STATE_OUT: state_out}
        features = self.encoder(batch[Columns.OBS])
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(features, batch),
            Columns.VF_PREDS: self._value(batch[Columns.OBS], features),
        }

    def compute_values(self, obs: torch.Tensor, state_in: torch.Tensor | None = None) -> torch.Tensor:
        """State values of ``obs``, one per row; for a recurrent module, ``[B, T]`` values of the
        sequences ``obs [B, T, ...]`` started from ``state_in [B, state]``."""
        self._require_value_head()
        if self._recurrent:
            return self._recurrent_forward(obs, self._state_in({Columns.OBS: obs, Columns.STATE_IN: state_in}),
                                           with_values=True)[1]
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

    # ------------------------------------------------------------------ recurrent (use_lstm)
    def get_initial_state(self) -> torch.Tensor | None:
        """Zeros: the policy LSTM's ``[h, c]``, then the value LSTM's when the value trunk is its own.

        The layout depends on the config only, so an ``inference_only`` copy (no value
        trunk) reads and writes the same rows; it passes the value part through.
        """
        if not self._recurrent:
            return None
        width = self.encoder.state_size * (1 if self.model_config.vf_share_layers else 2)
        return torch.zeros(width)

    def _state_in(self, batch: TensorDict) -> torch.Tensor:
        state = batch.get(Columns.STATE_IN)
        if state is None:
            raise ValueError(
                f"This ActorCriticModule has model_config use_lstm=True and needs batch[{Columns.STATE_IN!r}]: "
                "one state row per batch row, get_initial_state() at an episode's start and the forward "
                f"pass's {Columns.STATE_OUT!r} after that. Callers that act without keeping state cannot use it.")
        return state

    def _recurrent_forward(self, obs: torch.Tensor, state: torch.Tensor,
                           with_values: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Policy features ``[B, T, F]``, values ``[B, T]`` (if asked) and the state after the sequences."""
        split = self.encoder.state_size
        features, policy_state = self.encoder(obs, state[:, :split])
        critic_state = state[:, split:]
        vf_encoder = getattr(self, "vf_encoder", None)  # an inference_only module has none
        if vf_encoder is not None:
            # Advanced on acting steps too: the learner starts each sequence from recorded states.
            vf_features, critic_state = vf_encoder(obs, critic_state)
        else:
            vf_features = features
        values = self.vf(vf_features).squeeze(-1) if with_values else None
        return features, values, torch.cat([policy_state, critic_state], dim=-1)
