"""Q-value modules for DQN: an MLP trunk and a Q head, or dueling value/advantage heads.

Acting:

- ``forward_inference``: ``ACTION_DIST_INPUTS`` are the masked Q values, read as Categorical
  logits, whose ``deterministic_sample`` is the greedy (argmax) action.
- ``forward_exploration``: ``ACTION_DIST_INPUTS`` are the log-probabilities of the
  epsilon-greedy policy over the LEGAL actions (1 - eps on the greedy action, eps spread
  evenly over the legal ones), so the EnvRunner's ordinary ``sample()`` acts epsilon-greedily.

The current epsilon is a registered buffer (``epsilon``): the learner sets it from the
schedule and the ordinary weight sync carries it to every runner.
"""

from __future__ import annotations

import gymnasium as gym
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.distributions import ActionDistribution, Categorical
from marl_arena.core.models import DefaultModelConfig, flat_dim, mlp, output_width
from marl_arena.core.rl_module import RLModule, TensorDict


def legal_actions(q_values: torch.Tensor, batch: TensorDict, mask_key: str = Columns.ACTION_MASK) -> torch.Tensor:
    """Boolean legality per action (all True when the batch carries no mask)."""
    mask = batch.get(mask_key)
    if mask is None:
        return torch.ones_like(q_values, dtype=torch.bool)
    return mask > 0


def epsilon_greedy_logits(q_values: torch.Tensor, legal: torch.Tensor, epsilon: float | torch.Tensor) -> torch.Tensor:
    """Log-probabilities of epsilon-greedy over the legal actions; illegal ones get the dtype's minimum."""
    lowest = torch.finfo(q_values.dtype).min
    greedy = q_values.masked_fill(~legal, lowest).argmax(dim=-1, keepdim=True)
    epsilon = torch.as_tensor(epsilon, dtype=q_values.dtype, device=q_values.device)
    num_legal = legal.sum(dim=-1, keepdim=True).clamp_min(1).to(q_values.dtype)
    probs = legal.to(q_values.dtype) * (epsilon / num_legal)
    probs = probs.scatter_add(-1, greedy, (1.0 - epsilon).expand_as(greedy).to(q_values.dtype))
    return torch.where(probs > 0, probs.log(), torch.full_like(probs, lowest))


class QModule(RLModule):
    """Q(s, .) from an MLP over a flat observation; ``Discrete`` actions only."""

    dueling = False

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: DefaultModelConfig | dict | None = None,
        inference_only: bool = False,
    ):
        super().__init__(observation_space, action_space, model_config, inference_only)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"{type(self).__name__} needs a Discrete action space (DQN), got {action_space}.")
        cfg = self.model_config
        in_dim = flat_dim(observation_space)
        num_actions = int(action_space.n)
        hidden = output_width(in_dim, cfg.fcnet_hiddens)
        self.encoder = mlp(in_dim, cfg.fcnet_hiddens, cfg.fcnet_activation)
        if self.dueling:
            self.value_head = mlp(hidden, cfg.head_fcnet_hiddens, cfg.fcnet_activation, 1)
            self.advantage_head = mlp(hidden, cfg.head_fcnet_hiddens, cfg.fcnet_activation, num_actions)
        else:
            self.q_head = mlp(hidden, cfg.head_fcnet_hiddens, cfg.fcnet_activation, num_actions)
        # Exploration rate; a buffer so that weight syncs carry it to the runners.
        self.register_buffer("epsilon", torch.tensor(0.0))

    def compute_q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Unmasked Q values, shape (rows, actions)."""
        features = self.encoder(obs)
        if self.dueling:
            advantages = self.advantage_head(features)
            return self.value_head(features) + advantages - advantages.mean(dim=-1, keepdim=True)
        return self.q_head(features)

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        q_values = self.compute_q_values(batch[Columns.OBS])
        legal = legal_actions(q_values, batch)
        return {Columns.ACTION_DIST_INPUTS: q_values.masked_fill(~legal, torch.finfo(q_values.dtype).min)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        q_values = self.compute_q_values(batch[Columns.OBS])
        legal = legal_actions(q_values, batch)
        return {Columns.ACTION_DIST_INPUTS: epsilon_greedy_logits(q_values, legal, self.epsilon)}

    def forward_train(self, batch: TensorDict) -> TensorDict:
        """Unmasked Q values: the loss reads Q of taken (legal) actions; targets apply next masks."""
        return {Columns.QF_PREDS: self.compute_q_values(batch[Columns.OBS])}

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        return Categorical(dist_inputs)


class DuelingQModule(QModule):
    """Q = V(s) + A(s, a) - mean_a A(s, a) (Wang et al., 2016)."""

    dueling = True
