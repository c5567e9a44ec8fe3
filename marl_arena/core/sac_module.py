"""SAC's module: a stochastic policy, one or two Q critics and the entropy temperature.

Everything SAC learns lives in one RLModule, so the ordinary weight sync, league
snapshots and checkpoints carry all of it, and data-parallel learners average the
temperature's gradient like any other:

- ``Box`` actions: a tanh-squashed Gaussian policy scaled to the Box bounds; critics
  Q(s, a) over the observation and the action.
- ``Discrete`` actions (discrete SAC, Christodoulou 2019): a categorical policy whose
  illegal actions (``ACTION_MASK``) get probability 0; critics output Q(s, .) for every
  action, so the losses take exact expectations over the policy instead of samples.

``log_alpha`` is the log of the temperature; the learner sets it from ``initial_alpha``.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from marl_arena.core.actor_critic import apply_action_mask
from marl_arena.core.columns import Columns
from marl_arena.core.distributions import ActionDistribution, distribution_for_space
from marl_arena.core.encoders import build_encoder
from marl_arena.core.models import DefaultModelConfig, flat_dim, init_output_layer, mlp
from marl_arena.core.rl_module import RLModule, TensorDict


class SACCritic(nn.Module):
    """``num_q`` independent Q networks over the same inputs, evaluated together.

    With ``action_dim > 0`` each network is Q(s, a) and the output has shape
    ``(num_q, rows)``; with ``action_dim == 0`` each is Q(s, .) with ``num_outputs``
    values and the output has shape ``(num_q, rows, num_outputs)``.
    """

    def __init__(self, obs_dim: int, action_dim: int, num_outputs: int, num_q: int, cfg: DefaultModelConfig):
        super().__init__()
        self.action_dim = action_dim
        hiddens = [*cfg.fcnet_hiddens, *cfg.head_fcnet_hiddens]
        self.q_nets = nn.ModuleList(mlp(obs_dim + action_dim, hiddens, cfg.fcnet_activation, num_outputs)
                                    for _ in range(num_q))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        obs = obs.flatten(1)  # image-like observations arrive in their shape; the critics are MLPs
        inputs = torch.cat([obs, actions.reshape(len(obs), -1).to(obs.dtype)], dim=-1) if self.action_dim else obs
        q_values = torch.stack([q_net(inputs) for q_net in self.q_nets])
        return q_values.squeeze(-1) if self.action_dim else q_values


class SACModule(RLModule):
    """Policy, twin critics and temperature for ``Box`` or ``Discrete`` actions.

    ``conv_filters`` shapes the policy's encoder; the critics stay MLPs over the flattened
    observation (and the action).
    """

    twin_q = True

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: DefaultModelConfig | dict | None = None,
        inference_only: bool = False,
    ):
        super().__init__(observation_space, action_space, model_config, inference_only)
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if not (self.discrete or isinstance(action_space, gym.spaces.Box)):
            raise ValueError(f"{type(self).__name__} needs a Discrete or a bounded float Box action space, "
                             f"got {action_space}.")
        self._dist_cls, dist_width = distribution_for_space(action_space, squashed=True)
        cfg = self.model_config
        obs_dim = flat_dim(observation_space)
        self.pi_encoder = build_encoder(observation_space, cfg)
        self.pi = mlp(self.pi_encoder.output_dim, cfg.head_fcnet_hiddens, cfg.fcnet_activation, dist_width)
        init_output_layer(self.pi[-1], 0.01)
        if self.discrete:
            self.critic = SACCritic(obs_dim, 0, int(action_space.n), 2 if self.twin_q else 1, cfg)
        else:
            self.critic = SACCritic(obs_dim, flat_dim(action_space), 1, 2 if self.twin_q else 1, cfg)
        self.log_alpha = nn.Parameter(torch.zeros(()))

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """What each of SAC's optimizers trains: the policy, the critics, the temperature."""
        return {
            "actor": [*self.pi_encoder.parameters(), *self.pi.parameters()],
            "critic": list(self.critic.parameters()),
            "alpha": [self.log_alpha],
        }

    def policy_inputs(self, batch: TensorDict) -> torch.Tensor:
        """Action distribution inputs for ``batch[OBS]``; illegal discrete actions masked out."""
        out = self.pi(self.pi_encoder(batch[Columns.OBS]))
        return apply_action_mask(out, batch) if self.discrete else out

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        return {Columns.ACTION_DIST_INPUTS: self.policy_inputs(batch)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return self.forward_inference(batch)

    def forward_train(self, batch: TensorDict) -> TensorDict:
        """Policy inputs, and the critics' Q of the taken actions (Box) or of every action (Discrete)."""
        actions = None if self.discrete else batch[Columns.ACTIONS]
        q_values = self.critic(batch[Columns.OBS], actions)
        out = {Columns.ACTION_DIST_INPUTS: self.policy_inputs(batch), Columns.QF_PREDS: q_values[0]}
        if self.twin_q:
            out[Columns.QF_TWIN_PREDS] = q_values[1]
        return out

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        return self._dist_cls(dist_inputs)


class SingleQSACModule(SACModule):
    """SAC with one critic (``twin_q=False``)."""

    twin_q = False
