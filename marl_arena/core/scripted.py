"""Scripted modules: fixed behaviour with no parameters to train (league bots, baselines).

A scripted player writes ``scripted_logits(obs)``; masking and sampling come from here.
Its actions are always sampled from those logits, also when evaluated greedily: equal
logits mean "uniformly at random among the legal actions", not "the first legal action".
"""

from __future__ import annotations

import abc

import gymnasium as gym
import torch

from marl_arena.core.actor_critic import apply_action_mask
from marl_arena.core.columns import Columns
from marl_arena.core.distributions import ActionDistribution, Categorical
from marl_arena.core.models import DefaultModelConfig
from marl_arena.core.rl_module import RLModule, TensorDict


class ScriptedModule(RLModule):
    """Base of scripted players over a Discrete action space."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 model_config: DefaultModelConfig | dict | None = None, inference_only: bool = True):
        super().__init__(observation_space, action_space, model_config, inference_only=True)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"{type(self).__name__} plays Discrete action spaces only, got {action_space}.")
        self.num_actions = int(action_space.n)

    @abc.abstractmethod
    def scripted_logits(self, obs: torch.Tensor) -> torch.Tensor:
        """Unmasked logits, one row per observation."""

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        return {Columns.ACTION_DIST_INPUTS: apply_action_mask(self.scripted_logits(batch[Columns.OBS]), batch)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return self.forward_inference(batch)

    def forward_train(self, batch: TensorDict) -> TensorDict:
        raise RuntimeError(f"{type(self).__name__} is scripted: it has nothing to train.")

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        return _AlwaysSampling(dist_inputs)


class RandomModule(ScriptedModule):
    """Uniform over the legal actions."""

    def scripted_logits(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(obs), self.num_actions)


class _AlwaysSampling(Categorical):
    """A categorical whose greedy choice is a sample too (scripted players stay as scripted)."""

    def deterministic_sample(self) -> torch.Tensor:
        return self.sample()
