"""Scripted modules: fixed behaviour with no parameters to train (league bots, baselines)."""

from __future__ import annotations

import gymnasium as gym
import torch

from marl_arena.core.actor_critic import apply_action_mask
from marl_arena.core.columns import Columns
from marl_arena.core.distributions import ActionDistribution, distribution_for_space
from marl_arena.core.models import DefaultModelConfig
from marl_arena.core.rl_module import RLModule, TensorDict


class RandomModule(RLModule):
    """Uniform over the legal actions of a Discrete space (equal logits, then the mask)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 model_config: DefaultModelConfig | dict | None = None, inference_only: bool = True):
        super().__init__(observation_space, action_space, model_config, inference_only=True)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"RandomModule plays Discrete action spaces only, got {action_space}.")
        self._dist_cls, self._width = distribution_for_space(action_space)

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        logits = torch.zeros(len(batch[Columns.OBS]), self._width)
        return {Columns.ACTION_DIST_INPUTS: apply_action_mask(logits, batch)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return self.forward_inference(batch)

    def forward_train(self, batch: TensorDict) -> TensorDict:
        raise RuntimeError("RandomModule is scripted: it has nothing to train.")

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        # Greedy play from equal logits would always pick the first legal action; a scripted
        # random player stays random when evaluated.
        return _AlwaysSampling(self._dist_cls(dist_inputs))


class _AlwaysSampling(ActionDistribution):
    """Wraps a distribution so that ``deterministic_sample`` samples too."""

    def __init__(self, inner: ActionDistribution):
        self._inner = inner

    @staticmethod
    def required_input_dim(space: gym.Space) -> int:
        return int(space.n)

    def sample(self) -> torch.Tensor:
        return self._inner.sample()

    def deterministic_sample(self) -> torch.Tensor:
        return self._inner.sample()

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        return self._inner.logp(actions)

    def entropy(self) -> torch.Tensor:
        return self._inner.entropy()

    def kl(self, other: ActionDistribution) -> torch.Tensor:
        return self._inner.kl(other)
